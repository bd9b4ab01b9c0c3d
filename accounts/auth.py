"""Who is knocking: the client address that login lock-outs count."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind our own reverse proxy the address it appended to X-Forwarded-For.

    Only the last entry is trusted: anything before it was written by the client itself.
    """
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    if settings.WEBMAIL_BEHIND_PROXY and forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))
