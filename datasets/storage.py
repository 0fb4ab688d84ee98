"""Where exports are written: the ``exports`` storage, atomic on a local disk.

Exports go through Django's storage API, so the same code writes to a local folder or to
S3-compatible object storage (``STORAGES["exports"]``, see ``config/settings.py``). An
S3 PUT is atomic by itself: an object is visible whole or not at all. On a local disk
:class:`AtomicFileSystemStorage` gives the same guarantee: each file is written to a
hidden temporary file beside its target, fsync'ed, then renamed over the target (and the
folder fsync'ed), so a worker killed mid-write never leaves a half file under a real
name, and a retry overwrites rather than piling up ``name_x7Gq2.tif`` variants.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.files.storage import (
    FileSystemStorage,
    InvalidStorageError,
    default_storage,
    storages,
)

__all__ = ["AtomicFileSystemStorage", "TEMP_MARKER", "export_storage", "temp_files_under"]

TEMP_MARKER = ".partial-"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicFileSystemStorage(FileSystemStorage):
    """A file-system storage whose saves are atomic and overwrite (same name in, same name out)."""

    def __init__(self, *args, fsync: bool = True, **kwargs):
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(*args, **kwargs)
        self.fsync = fsync

    def _save(self, name, content):
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, exist_ok=True)
        temp = os.path.join(directory, f".{os.path.basename(full_path)}{TEMP_MARKER}{secrets.token_hex(6)}")
        try:
            with open(temp, "xb") as fh:
                for chunk in content.chunks():
                    fh.write(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            if self.file_permissions_mode is not None:
                os.chmod(temp, self.file_permissions_mode)
            os.replace(temp, full_path)
            if self.fsync:
                _fsync_dir(directory)
        except BaseException:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            raise
        return str(Path(os.path.relpath(full_path, self.location)).as_posix())


def export_storage():
    """The storage exports are written to (``STORAGES["exports"]``, else the default one)."""
    try:
        return storages["exports"]
    except InvalidStorageError:
        return default_storage


def temp_files_under(storage, prefix: str) -> list[str]:
    """Temporary files a killed writer left under ``prefix`` (local storages only)."""
    if not isinstance(storage, FileSystemStorage):
        return []
    root = Path(storage.path(prefix))
    if not root.exists():
        return []
    return sorted(str(p.relative_to(storage.path(""))) for p in root.rglob(f"*{TEMP_MARKER}*"))
