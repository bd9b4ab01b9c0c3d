from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.models import Mailbox, User
from accounts.selectors import mailboxes_of
from fetcher import folders
from fetcher.models import Folder
from fetcher.selectors import VIEW_ROLES, folders_of


@dataclass(frozen=True)
class Sidebar:
    """Each mailbox with its folders and unread counts, and the unread count of each view."""

    mailboxes: list[tuple[Mailbox, list[folders.Shown]]]  # each mailbox's folders as a tree
    unread: dict[str, int]

    @classmethod
    def of(cls, user: User) -> Sidebar:
        grouped: dict[Mailbox, list[Folder]] = {}
        unread = dict.fromkeys(VIEW_ROLES, 0)
        for folder in folders_of(user):
            grouped.setdefault(folder.mailbox, []).append(folder)
            view = next((view for view, role in VIEW_ROLES.items() if role == folder.role), None)
            if view:
                unread[view] += folder.unread  # type: ignore[attr-defined]
        return cls([(mailbox, folders.tree(found)) for mailbox, found in grouped.items()], unread)


def site(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    # Lazy: pages without a sidebar (login, errors) never query.
    sidebar = SimpleLazyObject(lambda: list(mailboxes_of(user)) if isinstance(user, User) else [])
    folders = SimpleLazyObject(lambda: Sidebar.of(user) if isinstance(user, User) else Sidebar([], {}))
    return {
        "site_name": settings.WEBMAIL_SITE_NAME,
        "allow_signup": settings.ALLOW_SIGNUP
        and settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL,  # confirmed by mail
        "password_reset_available": settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL,
        "sidebar_mailboxes": sidebar,
        "sidebar": folders,
        "lockout_minutes": settings.WEBMAIL_LOGIN_LOCKOUT_MINUTES,
    }
