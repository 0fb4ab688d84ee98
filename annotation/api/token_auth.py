"""DRF authentication by API token (``Authorization: Token <key>`` or ``Bearer <key>``).

Failed token checks are counted per client address: past ``CELLCURATE_BAD_TOKEN_LIMIT``
within ``CELLCURATE_BAD_TOKEN_WINDOW_S``, further invalid tokens from that address answer
429 with ``Retry-After`` instead of 401 (DRF's throttles run after authentication, so they
never see a request whose token was refused). A valid token is never refused for what
others at the same address did. Kept apart from the token views:
DRF's settings import this class while ``rest_framework.views`` is still loading.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from annotation.services import tokens as token_services
from annotation.throttling import client_address, failure_record, retry_after


class TokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` / ``Bearer <key>`` against hashed, expiring tokens."""

    keywords = (b"token", b"bearer")

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: expected 'Token <key>' with no spaces in the key."
            )
        key_scope = ("bad-token", client_address(request))
        window = settings.CELLCURATE_BAD_TOKEN_WINDOW_S
        try:
            return token_services.token_authenticate(header[1].decode("ascii"))
        except (UnicodeDecodeError, token_services.TokenRejected) as exc:
            # A valid token always passes (colleagues behind the same NAT are not locked
            # out); guesses past the limit are answered 429 instead of 401.
            if failure_record(key_scope, window) > settings.CELLCURATE_BAD_TOKEN_LIMIT:
                raise exceptions.Throttled(
                    wait=retry_after(key_scope, window),
                    detail="Too many requests with invalid tokens from this address.",
                ) from None
            message = str(exc) if isinstance(exc, token_services.TokenRejected) else "Invalid token."
            raise exceptions.AuthenticationFailed(message) from None

    def authenticate_header(self, request):
        return "Token"
