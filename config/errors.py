"""Domain error types shared by every app's services.

Services raise these; ``config.api.exception_handler`` maps them to HTTP in one place,
and management commands print their message. Each carries an HTTP status, a stable
machine code, and optionally the request field the problem belongs to.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error a service raises on purpose."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def as_payload(self) -> dict:
        if self.field:
            return {self.field: [self.message], "code": self.code}
        return {"detail": self.message, "code": self.code}


class InvalidInput(DomainError):
    """The request's data is wrong: bad file, bad shape, bad value (HTTP 400)."""


class PermissionDenied(DomainError):
    """The user may see the object but not do this to it (HTTP 403)."""

    status_code = 403
    code = "permission_denied"


class NotFound(DomainError):
    """The object does not exist or the user may not know it exists (HTTP 404)."""

    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The write conflicts with the current state, e.g. a stale revision (HTTP 409)."""

    status_code = 409
    code = "conflict"


class PreconditionFailed(DomainError):
    """A precondition the client sent (If-Match / base revision) no longer holds (HTTP 412)."""

    status_code = 412
    code = "precondition_failed"
