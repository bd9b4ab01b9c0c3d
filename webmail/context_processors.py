from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    return {"site_name": settings.WEBMAIL_SITE_NAME, "allow_signup": settings.ALLOW_SIGNUP}
