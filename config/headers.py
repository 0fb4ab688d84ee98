"""Response headers every page carries: the Content-Security-Policy.

The policy (``CELLCURATE_CONTENT_SECURITY_POLICY`` in settings) allows scripts only from
our own origin -- no inline script, no ``eval`` -- so pages read their configuration from
``json_script`` elements and load ES modules from ``static/``. It is set on every
response that does not set its own, JSON and downloads included (a downloaded file
opened in the browser is then inert as well).
"""

from __future__ import annotations

from django.conf import settings

__all__ = ["ContentSecurityPolicyMiddleware"]


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "; ".join(
            f"{directive} {' '.join(sources)}".strip()
            for directive, sources in settings.CELLCURATE_CONTENT_SECURITY_POLICY.items()
        )

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
