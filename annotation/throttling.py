"""Failed-login lockouts and failure counters, kept in the cache (local memory or Redis).

Every login path -- the site's ``/accounts/login/``, the admin's and the browsable API's
-- is a URL named ``login``; :class:`LoginThrottleMiddleware` counts failed POSTs to any of
them per (user name, client address). After ``CELLCURATE_LOGIN_FAILURE_LIMIT`` failures
within ``CELLCURATE_LOGIN_LOCKOUT_S`` seconds, further attempts for that pair answer 429
with ``Retry-After`` before the password is even checked; a successful login clears the
count. Keying on the pair means an attacker cannot lock a colleague out from another
address. Invalid API tokens are counted the same way per address
(:mod:`annotation.api.tokens`). Request rates of well-behaved clients are DRF's anon and
user throttles (``REST_FRAMEWORK`` in settings), far above what a page or a folder upload
sends.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

__all__ = [
    "LoginThrottleMiddleware", "client_address", "failure_clear", "failure_count",
    "failure_record", "retry_after",
]


def client_address(request) -> str:
    """The client's IP address: ``REMOTE_ADDR``, or behind ``CELLCURATE_TRUSTED_PROXIES``
    proxies the address the outermost trusted proxy saw (X-Forwarded-For, from the right)."""
    proxies = settings.CELLCURATE_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(scope: tuple[str, ...]) -> str:
    return "cc-fail:" + hashlib.sha256("\x1f".join(scope).encode()).hexdigest()


def failure_count(scope: tuple[str, ...]) -> int:
    """Failures recorded for ``scope`` within its current window."""
    return int(cache.get(_key(scope), 0))


def failure_record(scope: tuple[str, ...], window_s: int) -> int:
    """Count one failure; the window starts at the first failure. Returns the new count."""
    key = _key(scope)
    if cache.add(key, 1, timeout=window_s):
        cache.set(key + ":t", time.time(), timeout=window_s)
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window_s)
        cache.set(key + ":t", time.time(), timeout=window_s)
        return 1


def failure_clear(scope: tuple[str, ...]) -> None:
    key = _key(scope)
    cache.delete_many([key, key + ":t"])


def retry_after(scope: tuple[str, ...], window_s: int) -> int:
    """Whole seconds until the window of ``scope`` ends (at least 1)."""
    started = cache.get(_key(scope) + ":t")
    if started is None:
        return window_s
    return max(1, int(window_s - (time.time() - float(started))) + 1)


def _is_login_post(request) -> bool:
    if request.method != "POST":
        return False
    try:
        return resolve(request.path_info).url_name == "login"
    except Resolver404:
        return False


class LoginThrottleMiddleware:
    """Lock out (user name, address) pairs after repeated failed logins (module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not _is_login_post(request):
            return self.get_response(request)
        username = str(request.POST.get("username", "")).strip().casefold()[:150]
        scope = ("login", username, client_address(request))
        window = settings.CELLCURATE_LOGIN_LOCKOUT_S
        if failure_count(scope) >= settings.CELLCURATE_LOGIN_FAILURE_LIMIT:
            return self._locked(request, retry_after(scope, window))
        response = self.get_response(request)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            failure_clear(scope)
        else:
            failure_record(scope, window)
        return response

    @staticmethod
    def _locked(request, wait: int) -> HttpResponse:
        message = (
            f"Too many failed logins for this user from this address; try again in {wait} s."
        )
        if "json" in request.headers.get("Accept", "") or request.path.startswith("/api/"):
            response = JsonResponse({"detail": message, "code": "throttled"}, status=429)
        else:
            response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(wait)
        return response
