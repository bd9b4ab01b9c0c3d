from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.models import Mailbox, User
from fetcher import folders
from fetcher.models import Folder
from fetcher.selectors import VIEW_ROLES, Holdings


@dataclass(frozen=True)
class Sidebar:
    """Each mailbox with its folders and unread counts, and the unread count of each view."""

    mailboxes: list[tuple[Mailbox, list[folders.Shown]]]  # each mailbox's folders as a tree
    unread: dict[str, int]

    @classmethod
    def of(cls, held: Holdings) -> Sidebar:
        grouped: dict[Mailbox, list[Folder]] = {}
        unread = dict.fromkeys(VIEW_ROLES, 0)
        for folder in held.folders:
            grouped.setdefault(folder.mailbox, []).append(folder)
            view = next((view for view, role in VIEW_ROLES.items() if role == folder.role), None)
            if view:
                unread[view] += folder.unread  # type: ignore[attr-defined]
        return cls([(mailbox, folders.tree(found)) for mailbox, found in grouped.items()], unread)


_HELD = "_postane_holdings"


def holdings(request: HttpRequest) -> Holdings:
    """The signed-in user's mailboxes and folders, read once per request (fetcher.selectors.Holdings).

    Read on first use: a view that changes mailboxes or folders and then renders reads them after
    its change. Anyone not signed in holds nothing.
    """
    held: Holdings | None = getattr(request, _HELD, None)
    if held is None:
        user = getattr(request, "user", None)
        held = Holdings.of(user) if isinstance(user, User) else Holdings([], [])
        setattr(request, _HELD, held)
    return held


def site(request: HttpRequest) -> dict[str, object]:
    # Lazy: pages without a sidebar (login, errors) never query.
    sidebar = SimpleLazyObject(lambda: holdings(request).mailboxes)
    folders = SimpleLazyObject(lambda: Sidebar.of(holdings(request)))
    return {
        "product_name": settings.WEBMAIL_SITE_NAME,
        "allow_signup": settings.ALLOW_SIGNUP
        and settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL,  # confirmed by mail
        "password_reset_available": settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL,
        "sidebar_mailboxes": sidebar,
        "sidebar": folders,
        "lockout_minutes": settings.WEBMAIL_LOGIN_LOCKOUT_MINUTES,
    }
