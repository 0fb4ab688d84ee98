"""Files written to Django storage during a transaction, removed again if it fails.

Django has no "on rollback" hook, so a service that stores files opens
:func:`staged_files` as its outermost block: it runs the body in a transaction and, if
anything raises, deletes every file the body saved before re-raising. No row and no
file is left behind by a refused upload.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

logger = logging.getLogger(__name__)


class StagedFiles:
    """Names saved to default storage by one service call."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def save(self, name: str, data: bytes) -> str:
        """Save ``data`` under (a free variant of) ``name``; return the stored name."""
        stored = default_storage.save(name, ContentFile(data))
        self.names.append(stored)
        return stored

    def discard(self, name: str) -> None:
        """Delete one staged file now (e.g. a duplicate that lost a race)."""
        default_storage.delete(name)
        self.names.remove(name)

    def discard_all(self) -> None:
        for name in reversed(self.names):
            try:
                default_storage.delete(name)
            except OSError:
                # The original error matters more than a cleanup failure; log and go on.
                logger.exception("could not delete staged file %s", name)
        self.names.clear()


@contextmanager
def staged_files() -> Iterator[StagedFiles]:
    """A transaction whose saved files are deleted if the block raises."""
    staged = StagedFiles()
    try:
        with transaction.atomic():
            yield staged
    except BaseException:
        staged.discard_all()
        raise
