"""API plumbing shared by all apps: the one place domain errors become HTTP responses."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from config.errors import DomainError

#: Seconds a client is asked to wait before retrying a request refused for contention.
DB_BUSY_RETRY_AFTER_S = 1


def is_database_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's lock contention ("database is locked"), not a real fault."""
    return isinstance(exc, OperationalError) and (
        "database is locked" in str(exc) or "database table is locked" in str(exc)
    )


def exception_handler(exc, context):
    """Map :class:`DomainError`, Django ``ValidationError`` and SQLite lock contention to JSON;
    defer to DRF otherwise."""
    if is_database_busy(exc):
        set_rollback()
        response = Response(
            {"detail": "The database is busy with other writes; retry in a moment.",
             "code": "database_busy"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = str(DB_BUSY_RETRY_AFTER_S)
        return response
    if isinstance(exc, DomainError):
        return Response(exc.as_payload(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            payload = {field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}
        else:
            payload = {"detail": " ".join(str(m) for m in exc.messages)}
        return Response(payload, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
