"""Reads about people and their mailboxes, always through the requesting user."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Mailbox, User


def mailboxes_of(user: User) -> QuerySet[Mailbox]:
    return Mailbox.objects.filter(owner=user).order_by("name", "email_address")


def mailbox_of(user: User, mailbox_id: uuid.UUID | str) -> Mailbox:
    """The user's own mailbox, or 404: someone else's mailbox does not exist for them."""
    try:
        return mailboxes_of(user).get(id=mailbox_id)
    except (Mailbox.DoesNotExist, ValueError):
        raise Http404("No such mailbox") from None


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
