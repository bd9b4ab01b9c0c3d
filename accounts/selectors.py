"""Reads about people and their mailboxes, always through the requesting user."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.http import Http404
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from accounts.models import ConnectionTest, Mailbox, User
from accounts.services import signup_tokens


def mailboxes_of(user: User) -> QuerySet[Mailbox]:
    return Mailbox.objects.filter(owner=user).order_by("name", "email_address")


def mailbox_of(user: User, mailbox_id: uuid.UUID | str) -> Mailbox:
    """The user's own mailbox, or 404: someone else's mailbox does not exist for them."""
    try:
        return mailboxes_of(user).get(id=mailbox_id)
    except (Mailbox.DoesNotExist, ValueError):
        raise Http404("No such mailbox") from None


def connection_test_of(user: User, test_id: uuid.UUID | str) -> ConnectionTest:
    """The user's own connection test, or 404."""
    try:
        return ConnectionTest.objects.get(id=test_id, owner=user)
    except (ConnectionTest.DoesNotExist, ValueError):
        raise Http404("No such connection test") from None


def mailbox_by_reference(reference: str) -> Mailbox:
    """A mailbox named by its id or its address (for the command line). Raises Mailbox.DoesNotExist."""
    try:
        return Mailbox.objects.get(id=uuid.UUID(reference))
    except ValueError:
        pass
    matches = list(Mailbox.objects.filter(email_address__iexact=reference)[:2])
    if len(matches) != 1:
        raise Mailbox.DoesNotExist(
            f"no mailbox {reference!r}"
            if not matches
            else f"{reference!r} names several mailboxes; use its id"
        )
    return matches[0]


def signup_pending(uidb64: str, token: str) -> User | None:
    """The account a sign-up link names, while it waits for that link (inactive, the token still good)."""
    try:
        user = User.objects.filter(pk=int(force_str(urlsafe_base64_decode(uidb64))), is_active=False).first()
    except (ValueError, OverflowError):
        return None
    return user if user is not None and signup_tokens.check_token(user, token) else None
