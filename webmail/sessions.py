"""Sessions: an idle timeout that background polls do not extend, and an absolute lifetime.

Every request a person makes pushes the idle end forward (SESSION_SAVE_EVERY_REQUEST), but
a list tab polling the unread count is not a person: left open, it would keep a session
alive for ever. And however active, a session ends WEBMAIL_SESSION_MAX_HOURS after its login.

An unchanged session pushed forward less than a minute ago is not written again: the idle end
moves by the minute, not by the request, and a reader paging through mail costs no write and no
commit per page. This module is the SESSION_ENGINE (the database backend, remembering when the
stored session expires).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends import db
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

STARTED = "postane_started"  # the login's time, in seconds since the epoch
# Requests the page makes by itself, on a timer: they never count as activity.
POLLS = frozenset({"unread_count", "connection_test_status"})


# An unchanged session whose idle end is less than this behind a fresh one is not saved again.
REFRESH_AFTER = timedelta(minutes=1)


class SessionStore(db.SessionStore):
    """The database session store, remembering when the session it loaded expires."""

    stored_expiry = None

    def _get_session_from_db(self) -> Any:
        found = super()._get_session_from_db()  # type: ignore[misc]  # not in django-stubs
        self.stored_expiry = found.expire_date if found is not None else None
        return found


def _pushed_recently(session: Any) -> bool:
    expiry = getattr(session, "stored_expiry", None)
    if expiry is None:
        return False
    fresh = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    return bool(fresh - expiry < REFRESH_AFTER)


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
        if not request.session.modified and (
            (match is not None and match.url_name in POLLS) or _pushed_recently(request.session)
        ):
            patch_vary_headers(response, ("Cookie",))
            return response  # neither saved nor a fresh cookie: the idle clock keeps running
        return super().process_response(request, response)
