"""API plumbing shared by all apps: the one place domain errors become HTTP responses."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError


def exception_handler(exc, context):
    """Map :class:`DomainError` and Django ``ValidationError`` to JSON; defer to DRF otherwise."""
    if isinstance(exc, DomainError):
        return Response(exc.as_payload(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            payload = {field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}
        else:
            payload = {"detail": " ".join(str(m) for m in exc.messages)}
        return Response(payload, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
