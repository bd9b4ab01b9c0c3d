"""Login lock-outs: django-axes, with a success that clears only the signed-in person's failures."""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.http import HttpRequest


class OwnFailuresHandler(AxesDatabaseHandler):  # type: ignore[misc]
    """axes' database handler, except what a successful login resets.

    With lock-out by user name OR address, axes resets every attempt matching either parameter,
    so anyone with an account could clear another user's failures from the same address (four
    guesses, one own login, repeat). A success proves only who signed in: reset that user name.
    """

    def reset_user_attempts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        username = get_client_username(request, credentials)
        if not username:
            return 0
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return int(count)
