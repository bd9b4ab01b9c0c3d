"""Lists of mail: the views by folder role across mailboxes, one folder, a search, the unread count.

Every lookup goes through the requesting user (fetcher.selectors): someone else's folder answers
404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from accounts.models import User
from fetcher.mail import search
from fetcher.models import Message, OutgoingMessage
from fetcher.selectors import (
    VIEWS,
    Cursor,
    Page,
    folder_of,
    page_of_drafts,
    page_of_folders,
    page_of_search,
    page_of_starred,
    thread_sizes,
    unread_in_view,
)
from webmail.context_processors import holdings
from webmail.views.request import AuthedRequest

VIEW_TITLES = {
    "inbox": gettext_lazy("All inboxes"),
    "starred": gettext_lazy("Starred"),
    "sent": gettext_lazy("Sent"),
    "drafts": gettext_lazy("Drafts"),
    "archive": gettext_lazy("Archive"),
    "junk": gettext_lazy("Junk"),
    "trash": gettext_lazy("Trash"),
}


@dataclass(frozen=True)
class Row:
    message: Message
    mailbox: Any
    count: int  # messages in its conversation (1 in the plain list)


@dataclass(frozen=True)
class DraftRow:
    """A draft written here, in the Drafts view's list beside the servers' drafts."""

    outgoing: OutgoingMessage
    mailbox: Any


def _rows(request: AuthedRequest, user: User, page: Page) -> list[Row]:
    mailboxes = {mailbox.id: mailbox for mailbox in holdings(request).mailboxes}
    messages = page.messages
    counts: dict[str, int] = {}
    if user.conversations:
        seen: set[str] = set()
        kept = []
        for message in messages:  # newest first: the first of a conversation on the page stands for it
            if message.thread_key and message.thread_key in seen:
                continue
            seen.add(message.thread_key)
            kept.append(message)
        messages, counts = kept, thread_sizes(user, [m.thread_key for m in kept])
    return [Row(m, mailboxes.get(m.mailbox_id), counts.get(m.thread_key, 1)) for m in messages]


def _list(
    request: AuthedRequest,
    page: Page,
    *,
    title: str,
    here: str,
    query: str = "",
    move_only: uuid.UUID | None = None,
    rows: list[Row | DraftRow] | None = None,
) -> HttpResponse:
    context = {
        "move_only": move_only,  # one folder's list: its messages move within its mailbox only
        "rows": _rows(request, request.user, page) if rows is None else rows,
        "next": page.next.encode() if page.next else "",
        "title": title,
        "here": here,
        "query": query,
        "terms": search.query_words(search.parse_query(query).text) if query else [],
        # Built once, not per row: a row's link is message_url + its id + back_query.
        "message_url": reverse("message", args=[uuid.UUID(int=0)]).removesuffix(f"{uuid.UUID(int=0)}/"),
        "back_query": "?" + urlencode({"back": request.get_full_path()}),
    }
    more = request.htmx and request.GET.get("after")
    return render(request, "webmail/mail_list.html#rows" if more else "webmail/mail_list.html", context)


def _drafts(request: AuthedRequest, after: Cursor | None) -> HttpResponse:
    """Drafts: those written here and those of the servers' Drafts folders, in one list."""
    held = holdings(request)
    found = page_of_drafts(request.user, held.view_folder_ids("drafts"), after)
    mailboxes = {mailbox.id: mailbox for mailbox in held.mailboxes}
    rows: list[Row | DraftRow] = [
        Row(row, mailboxes.get(row.mailbox_id), 1)
        if isinstance(row, Message)
        else DraftRow(row, mailboxes.get(row.mailbox_id))
        for row in found.rows
    ]
    page = Page([], found.next)
    return _list(request, page, title=str(VIEW_TITLES["drafts"]), here="drafts", rows=rows)


@login_required
@require_GET
def mail_view(request: AuthedRequest, view: str = "inbox") -> HttpResponse:
    user = request.user
    if view not in VIEWS:
        raise Http404("No such view")
    after = Cursor.decode(request.GET.get("after"))
    if view == "drafts":
        return _drafts(request, after)
    held = holdings(request)
    if view == "starred":
        page = page_of_starred(user, after, mailboxes=held.mailbox_ids())
    else:
        page = page_of_folders(held.view_folder_ids(view), after, conversations=user.conversations)
    return _list(request, page, title=str(VIEW_TITLES[view]), here=view)


@login_required
@require_GET
def folder_view(request: AuthedRequest, folder_id: uuid.UUID) -> HttpResponse:
    user = request.user
    folder = folder_of(user, folder_id)
    after = Cursor.decode(request.GET.get("after"))
    page = page_of_folders([folder.pk], after, conversations=user.conversations)
    title = f"{folder.mailbox.name} · {folder.name}"
    return _list(request, page, title=title, here=str(folder.public_id), move_only=folder.mailbox_id)


@login_required
@require_GET
def search_view(request: AuthedRequest) -> HttpResponse:
    text = request.GET.get("q", "").strip()[:500]
    if not text:
        return redirect("mail")
    after = Cursor.decode(request.GET.get("after"))
    query = search.parse_query(text)
    page = page_of_search(request.user, query, after, mailboxes=holdings(request).mailbox_ids())
    return _list(request, page, title=_("Search: %(query)s") % {"query": text}, here="search", query=text)


@login_required
@require_GET
def unread_count(request: AuthedRequest) -> HttpResponse:
    """The unread count of all inboxes, polled by the list to show new mail and the tab title."""
    return HttpResponse(str(unread_in_view(request.user, "inbox")), content_type="text/plain")
