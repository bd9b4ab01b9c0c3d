from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.models import User
from accounts.selectors import mailboxes_of


def site(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    # Lazy: pages without a sidebar (login, errors) never query.
    sidebar = SimpleLazyObject(lambda: list(mailboxes_of(user)) if isinstance(user, User) else [])
    return {
        "site_name": settings.WEBMAIL_SITE_NAME,
        "allow_signup": settings.ALLOW_SIGNUP,
        "password_reset_available": settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL,
        "sidebar_mailboxes": sidebar,
        "lockout_minutes": settings.WEBMAIL_LOGIN_LOCKOUT_MINUTES,
    }
