"""Reads of the mail engine."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    Func,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Concat, Lower
from django.http import Http404
from django.utils import timezone

from accounts.models import Mailbox, User
from fetcher import search
from fetcher.models import Folder, FolderRole, Message, OutgoingMessage, OutgoingState, WorkerHeartbeat


def heartbeat_latest() -> datetime | None:
    latest: datetime | None = WorkerHeartbeat.objects.aggregate(latest=Max("beat_at"))["latest"]
    return latest


def mailbox_storage(mailbox_ids: list[Any]) -> dict[Any, tuple[int, int]]:
    """(messages stored, bytes stored) per mailbox, in one query."""
    rows = (
        Message.objects.filter(mailbox_id__in=mailbox_ids)
        .values("mailbox_id")
        .annotate(count=Count("id"), size=Sum("size"))
    )
    return {row["mailbox_id"]: (row["count"], row["size"] or 0) for row in rows}


# --- reading mail: always through the requesting user ------------------------------------------------

PAGE_SIZE = 50
VIEW_ROLES = {
    "inbox": FolderRole.INBOX,
    "sent": FolderRole.SENT,
    "drafts": FolderRole.DRAFTS,
    "archive": FolderRole.ARCHIVE,
    "junk": FolderRole.JUNK,
    "trash": FolderRole.TRASH,
}
VIEWS = ("inbox", "starred", *[view for view in VIEW_ROLES if view != "inbox"])
# What a list row shows; never the raw bytes or the bodies.
LIST_FIELDS = (
    "id",
    "public_id",
    "mailbox_id",
    "folder_id",
    "subject",
    "from_name",
    "from_address",
    "to",
    "snippet",
    "sort_date",
    "seen",
    "flagged",
    "has_attachments",
    "thread_key",
    "parse_state",
    "message_id",
)


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: keyset pagination on (sort_date, id), stable while new mail arrives."""

    sort_date: datetime
    id: int

    def encode(self) -> str:
        return f"{int(self.sort_date.timestamp() * 1_000_000)}.{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        try:
            micros, _dot, number = (text or "").partition(".")
            return cls(datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC), int(number))
        except (ValueError, OverflowError, OSError):
            return None


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    next: Cursor | None


def messages_of(user: User) -> QuerySet[Message]:
    return Message.objects.filter(mailbox__owner=user)


def message_of(user: User, public_id: uuid.UUID | str) -> Message:
    """The user's own message, or 404: someone else's message does not exist for them."""
    try:
        return messages_of(user).select_related("mailbox", "folder").defer("raw").get(public_id=public_id)
    except (Message.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such message") from None


def raw_of(message: Message) -> bytes:
    """A message's raw bytes, read on their own (lists and views defer them)."""
    return bytes(Message.objects.values_list("raw", flat=True).get(pk=message.pk))


def folder_of(user: User, public_id: uuid.UUID | str) -> Folder:
    try:
        return Folder.objects.select_related("mailbox").get(mailbox__owner=user, public_id=public_id)
    except (Folder.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such folder") from None


def folders_of(user: User) -> list[Folder]:
    """Every folder of every mailbox of the user, with its unread count (two queries)."""
    folders = list(
        Folder.objects.filter(Q(synced=True) | Q(local=True), mailbox__owner=user)
        .select_related("mailbox")
        .order_by("mailbox__name", "mailbox__email_address", "name")
    )
    unread = _unread_counts([folder.pk for folder in folders])
    for folder in folders:
        folder.unread = unread.get(folder.pk, 0)  # type: ignore[attr-defined]
    return folders


UNREAD_CAP = 1000  # a folder shows "999+" beyond this: counting further would cost a scan


def _unread_counts(folder_ids: list[int]) -> dict[int, int]:
    """Unread messages per folder, each count stopping at UNREAD_CAP (one query, index only)."""
    if not folder_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT folder.id, (SELECT count(*) FROM (SELECT 1 FROM fetcher_message message"
            " WHERE message.folder_id = folder.id AND NOT message.seen LIMIT %s) capped)"
            " FROM unnest(%s::bigint[]) AS folder(id)",
            [UNREAD_CAP, folder_ids],
        )
        return dict(cursor.fetchall())


def _newest_first(messages: QuerySet[Message], after: Cursor | None, limit: int) -> QuerySet[Message]:
    if after is not None:
        # A row comparison, so PostgreSQL seeks the (folder, sort_date, id) index to the cursor
        # instead of filtering every newer row on the way.
        messages = messages.filter(
            RawSQL(
                "(fetcher_message.sort_date, fetcher_message.id) < (%s, %s)",
                [after.sort_date, after.id],
                output_field=BooleanField(),
            )
        )
    return messages.only(*LIST_FIELDS).order_by("-sort_date", "-id")[:limit]


def _page(found: list[Message], limit: int) -> Page:
    more = len(found) > limit
    found = found[:limit]
    return Page(found, Cursor(found[-1].sort_date, found[-1].pk) if more and found else None)


def page_of_folders(
    folder_ids: list[int], after: Cursor | None, limit: int = PAGE_SIZE, *, conversations: bool = False
) -> Page:
    """Newest first across several folders: one index scan per folder, merged (a UNION ALL of
    per-folder pages), so the cost follows the page size, not the size of the mailboxes.

    With `conversations`, a message stands for its conversation only if no newer message of
    that conversation is in these folders: each conversation appears once, on one page.
    """
    parts = []
    for folder in folder_ids:
        messages = Message.objects.filter(folder_id=folder)
        if conversations:
            messages = messages.filter(~Exists(_newer_in_conversation(folder_ids)))
        parts.append(_newest_first(messages, after, limit + 1))
    return _merged(parts, limit)


def _newer_in_conversation(folder_ids: list[int]) -> QuerySet[Message]:
    return (
        Message.objects.filter(folder_id__in=folder_ids, thread_key=OuterRef("thread_key"))
        .exclude(thread_key="")
        .filter(
            Q(sort_date__gt=OuterRef("sort_date")) | Q(sort_date=OuterRef("sort_date"), id__gt=OuterRef("id"))
        )
    )


def _merged(parts: list[QuerySet[Message]], limit: int) -> Page:
    if len(parts) <= 1:
        return _page(list(parts[0]) if parts else [], limit)
    merged = parts[0].union(*parts[1:], all=True).order_by("-sort_date", "-id")
    return _page(list(merged[: limit + 1]), limit)


def page_of_starred(user: User, after: Cursor | None, limit: int = PAGE_SIZE) -> Page:
    boxes = list(Mailbox.objects.filter(owner=user).values_list("id", flat=True))
    parts = [
        _newest_first(Message.objects.filter(mailbox_id=box, flagged=True), after, limit + 1) for box in boxes
    ]
    return _merged(parts, limit)


def page_of_search(matches: QuerySet[Message], after: Cursor | None, limit: int = PAGE_SIZE) -> Page:
    return _page(list(_newest_first(matches, after, limit + 1)), limit)


def unread_in_view(user: User, view: str) -> int:
    return sum(_unread_counts(view_folder_ids(user, view)).values())


def view_folder_ids(user: User, view: str) -> list[int]:
    shown = Folder.objects.filter(Q(synced=True) | Q(local=True), mailbox__owner=user, role=VIEW_ROLES[view])
    return list(shown.values_list("id", flat=True))


def conversation_of(message: Message) -> list[Message]:
    """Every message of the message's conversation, in every folder and mailbox of its owner, oldest first."""
    if not message.thread_key:
        return [message]
    return list(
        Message.objects.filter(mailbox__owner_id=message.mailbox.owner_id, thread_key=message.thread_key)
        .select_related("mailbox", "folder")
        .defer("raw", "search_vector")
        .order_by("sort_date", "id")[:200]
    )


def thread_sizes(user: User, keys: list[str]) -> dict[str, int]:
    """How many messages each conversation holds (for the list's conversation counts)."""
    rows = (
        messages_of(user)
        .filter(thread_key__in=[key for key in keys if key])
        .values("thread_key")
        .annotate(count=Count("id"))
        .values_list("thread_key", "count")
    )
    return dict(rows)


# --- search ---------------------------------------------------------------------------------------

_ROLE_NAMES = {
    FolderRole.INBOX: {"inbox", "gelen", "gelenkutusu"},
    FolderRole.SENT: {"sent", "gonderilen", "gonderilenler"},
    FolderRole.DRAFTS: {"drafts", "draft", "taslak", "taslaklar"},
    FolderRole.TRASH: {"trash", "cop", "copkutusu", "silinen", "silinenler"},
    FolderRole.JUNK: {"junk", "spam", "istenmeyen"},
    FolderRole.ARCHIVE: {"archive", "arsiv"},
}


_STATES: dict[str, dict[str, bool]] = {
    "unread": {"seen": False},
    "okunmamis": {"seen": False},
    "read": {"seen": True},
    "okunmus": {"seen": True},
    "starred": {"flagged": True},
    "yildizli": {"flagged": True},
}


def _folded(expression: Any) -> Func:
    """A column folded as search.fold() folds text: Turkish letters and case do not matter."""
    return Func(
        Lower(expression),
        Value(search.FOLD_FROM),
        Value(search.FOLD_TO),
        function="translate",
        output_field=TextField(),
    )


def _day(value: str) -> datetime | None:
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return timezone.make_aware(datetime.strptime(value, pattern))  # noqa: DTZ007 -- made aware here
        except ValueError:
            continue
    return None


def _operator(found: QuerySet[Message], operator: str, value: str) -> QuerySet[Message]:  # noqa: PLR0911
    term = search.fold(value)
    if operator == "from":
        found = found.alias(_from=_folded(Concat("from_name", Value(" "), "from_address")))
        return found.filter(_from__contains=term)
    if operator == "to":
        found = found.alias(_to=_folded(Concat(Cast("to", TextField()), Cast("cc", TextField()))))
        return found.filter(_to__contains=term)
    if operator == "subject":
        return found.alias(_subject=_folded("subject")).filter(_subject__contains=term)
    if operator == "has":
        return (
            found.filter(has_attachments=True)
            if term in {"attachment", "attachments", "ek", "dosya"}
            else found
        )
    if operator == "is":
        return found.filter(**_STATES.get(term, {}))
    if operator == "in":
        role = next((role for role, names in _ROLE_NAMES.items() if term.replace(" ", "") in names), None)
        if role is not None:
            return found.filter(folder__role=role)
        return found.alias(_folder=_folded("folder__name")).filter(_folder=term)
    day = _day(value)
    if day is None:
        return found
    return found.filter(sort_date__lt=day) if operator == "before" else found.filter(sort_date__gte=day)


def search_matches(user: User, query: search.Query) -> QuerySet[Message]:
    """The user's messages matching a parsed search: free words through the search vector (GIN)."""
    found = messages_of(user)
    tsquery = search.tsquery(query.text)
    if tsquery:
        found = found.filter(
            RawSQL("fetcher_message.search_vector @@ %s::tsquery", [tsquery], output_field=BooleanField())
        )
    for operator, value in query.operators:
        found = _operator(found, operator, value)
    return found


def address_suggestions(user: User, typed: str, limit: int = 8) -> list[tuple[str, str]]:
    """People the user has exchanged mail with whose name or address starts with `typed`, most frequent first.

    Senders of stored mail and recipients of mail sent from Postane both count.
    """
    term = typed.replace("\0", "").strip().lower()  # PostgreSQL text cannot hold a NUL
    if len(term) < 2:
        return []
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    senders = (
        messages_of(user)
        .filter(
            Q(from_address__istartswith=term)
            | Q(from_name__istartswith=term)
            | Q(from_name__icontains=f" {term}")
        )
        .values("from_address")
        .annotate(count=Count("id"), name=Max("from_name"))
        .order_by("-count")[:50]
    )
    for row in senders:
        address = row["from_address"].lower()
        counts[address] = counts.get(address, 0) + row["count"]
        names.setdefault(address, row["name"] or "")
    sent = OutgoingMessage.objects.filter(owner=user, state=OutgoingState.SENT).order_by("-sent_at")[:500]
    for outgoing in sent.only("to", "cc", "bcc"):
        for person in (*outgoing.to, *outgoing.cc, *outgoing.bcc):
            address, name = person["address"].lower(), person.get("name", "")
            if address.startswith(term) or name.lower().startswith(term) or f" {term}" in name.lower():
                counts[address] = counts.get(address, 0) + 1
                names[address] = names.get(address) or name
    ranked = sorted(counts, key=lambda address: (-counts[address], address))[:limit]
    return [(names.get(address, ""), address) for address in ranked]
