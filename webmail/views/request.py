"""The one request type of the views, and what every area reads from a request the same way."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.middleware import HtmxDetails

from accounts.models import User


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware (django-htmx documents this type)."""

    htmx: HtmxDetails


class AuthedRequest(HtmxHttpRequest):
    """The request of a view behind @login_required: its user is a signed-in accounts.User.

    Only the type says so; login_required is what makes it true, so every view taking one
    carries that decorator.
    """

    user: User


def safe_back(request: HttpRequest, back: str) -> str:
    """Where "back" may lead: a page of this site, else the mail list (never another host)."""
    allowed = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return back if back and allowed else reverse("mail")
