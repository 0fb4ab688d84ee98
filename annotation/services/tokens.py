"""Use cases for API tokens: create, list, revoke, and check one presented by a client.

A token is ``cc_<prefix>_<secret>``: the prefix (8 characters) finds the row, the
SHA-256 of the whole token must match the stored digest (compared in constant time).
The secret has 256 bits of entropy, so a fast hash is enough: there is nothing to
brute-force that a slow hash would protect. Tokens expire (``CELLCURATE_TOKEN_TTL_DAYS``,
at most ``CELLCURATE_TOKEN_MAX_TTL_DAYS``), die with a password change (the row keeps
the user's session auth hash at creation) and are deleted when their user leaves their
last project role (:func:`tokens_revoke_for_user`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotation.models import ApiToken
from config.errors import InvalidInput, NotFound

__all__ = [
    "CreatedToken", "TokenRejected", "token_authenticate", "token_create", "token_list",
    "token_revoke", "tokens_revoke_for_user",
]

_PREFIX_CHARS = 8
_NAME_LIMIT = 100
#: last_used_at is written at most this often per token, not on every request.
_TOUCH_EVERY = timedelta(minutes=5)


class TokenRejected(Exception):
    """A presented token is unknown, expired or revoked (the message says which)."""


@dataclass(frozen=True)
class CreatedToken:
    """A new token row and the token itself, which is never stored and shown only once."""

    token: ApiToken
    key: str


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _fingerprint(user) -> str:
    return user.get_session_auth_hash()


def token_create(*, user, name: str, expires_in_days: int | None = None) -> CreatedToken:
    """Create a named token for ``user`` (active users only); the key is in the result only."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name the token (e.g. 'laptop script')", field="name")
    if len(name) > _NAME_LIMIT:
        raise InvalidInput(f"name is longer than {_NAME_LIMIT} characters", field="name")
    max_days = settings.CELLCURATE_TOKEN_MAX_TTL_DAYS
    days = settings.CELLCURATE_TOKEN_TTL_DAYS if expires_in_days is None else expires_in_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= max_days:
        raise InvalidInput(
            f"expires_in_days must be a whole number of days within 1..{max_days}",
            field="expires_in_days",
        )
    if not user.is_active:
        raise InvalidInput(f"user {user.username!r} is not active", field="user")
    while True:
        prefix = secrets.token_hex(_PREFIX_CHARS // 2)
        if not ApiToken.objects.filter(prefix=prefix).exists():
            break
    key = f"cc_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, digest=_digest(key),
        password_fingerprint=_fingerprint(user),
        expires_at=timezone.now() + timedelta(days=days),
    )
    return CreatedToken(token=token, key=key)


def token_list(*, user) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first (expired ones included until they are revoked)."""
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def token_revoke(*, user, token_id: int) -> None:
    """Delete one of the user's own tokens (404 for anyone else's)."""
    deleted, _ = ApiToken.objects.filter(user_id=user.pk, pk=token_id).delete()
    if not deleted:
        raise NotFound(f"token {token_id} not found")


def tokens_revoke_for_user(*, user) -> int:
    """Delete every token of ``user`` (on leaving their last project role); the count."""
    deleted, _ = ApiToken.objects.filter(user_id=user.pk).delete()
    return deleted


def token_authenticate(key: str):
    """The active user a presented token belongs to, or :class:`TokenRejected`.

    An expired token, or one created under a password the user has since changed, is
    deleted when presented.
    """
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "cc" or len(parts[1]) != _PREFIX_CHARS:
        raise TokenRejected("Invalid token.")
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.digest, _digest(key)):
        raise TokenRejected("Invalid token.")
    now = timezone.now()
    if token.expires_at <= now:
        token.delete()
        raise TokenRejected("Token expired; create a new one.")
    user = token.user
    if not hmac.compare_digest(token.password_fingerprint, _fingerprint(user)):
        token.delete()
        raise TokenRejected("Token revoked: the password changed since it was created.")
    if not user.is_active:
        raise TokenRejected("User inactive or deleted.")
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        with transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return user, token
