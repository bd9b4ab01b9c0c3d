"""Sessions: an idle timeout that background polls do not extend, and an absolute lifetime.

Every request a person makes pushes the idle end forward (SESSION_SAVE_EVERY_REQUEST), but
a list tab polling the unread count is not a person: left open, it would keep a session
alive for ever. And however active, a session ends WEBMAIL_SESSION_MAX_HOURS after its login.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

STARTED = "postane_started"  # the login's time, in seconds since the epoch
# Requests the page makes by itself, on a timer: they never count as activity.
POLLS = frozenset({"unread_count", "connection_test_status"})


@receiver(user_logged_in)
def _remember_login_time(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[STARTED] = int(time.time())


class SessionMiddleware(DjangoSessionMiddleware):
    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        session = request.session
        if "_auth_user_id" not in session:
            return
        started = session.setdefault(STARTED, int(time.time()))  # a session from before this rule
        if time.time() - float(started) > settings.WEBMAIL_SESSION_MAX_HOURS * 3600:
            session.flush()  # logged out; login_required sends the person to the login page

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        match = request.resolver_match
        if match is not None and match.url_name in POLLS and not request.session.modified:
            patch_vary_headers(response, ("Cookie",))
            return response  # neither saved nor a fresh cookie: the idle clock keeps running
        return super().process_response(request, response)
