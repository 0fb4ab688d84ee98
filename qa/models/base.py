"""What every QA table shares: immutable rows, the user model, enum check constraints."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

USER = settings.AUTH_USER_MODEL


class ImmutableError(Exception):
    """An attempt to change an immutable QA row."""


class ImmutableModel(models.Model):
    """A row written once: ``save()`` on an existing row raises :class:`ImmutableError`."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError(
                f"{type(self).__name__} {self.pk} is immutable; new evidence makes a new row"
            )
        super().save(*args, **kwargs)


def valid_choice(field: str, enum) -> Q:
    """A check constraint condition: ``field`` holds one of ``enum``'s values."""
    return Q(**{f"{field}__in": [m.value for m in enum]})
