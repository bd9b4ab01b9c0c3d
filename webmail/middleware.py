"""Request middleware of the browser UI."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

TIME_ZONE_COOKIE = "tz"


class BrowserTimeZoneMiddleware:
    """Dates in the reader's time zone: the browser names it in a cookie (static/js/timezone.js).

    An unknown or missing name leaves the site's TIME_ZONE in force.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = request.COOKIES.get(TIME_ZONE_COOKIE, "")[:64]
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return self.get_response(request)


class RememberLanguageMiddleware:
    """Keep the language a signed-in person reads in on their account (one UPDATE when it changes):
    the workers, which see no browser, read mail in an undeclared charset by it (windows-1254 for
    Turkish). After LocaleMiddleware and AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user, language = getattr(request, "user", None), getattr(request, "LANGUAGE_CODE", "")
        if user is not None and user.is_authenticated and language and user.language != language:
            get_user_model().objects.filter(pk=user.pk).update(language=language[:10])
        return response


class NoStoreMiddleware:
    """Nothing shown to a signed-in person is kept by the browser or a proxy: mail, sources,
    downloads, suggestions, settings. A shared computer's cache or back button shows none of it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.user.is_authenticated:
            add_never_cache_headers(response)  # no-store, no-cache, private, max-age=0
        return response


class RequestBodyLimitMiddleware:
    """A body larger than the attachments limit allows is refused by its Content-Length, unread.

    Without this, Django would read a 2 GB upload to the end (to disk) before the form said no.
    A body without a Content-Length (chunked) is not read by Django at all.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.WEBMAIL_MAX_REQUEST_BYTES:
            context = {"limit": settings.WEBMAIL_MAX_ATTACHMENTS_MB}
            return render(request, "413.html", context, status=413)
        return self.get_response(request)
