"""Reads of the mail engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
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
from fetcher.models import (
    Folder,
    FolderCount,
    FolderRole,
    Message,
    OutgoingMessage,
    OutgoingState,
    WorkerHeartbeat,
)


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
    """Every folder of every mailbox of the user, with its message and unread counts (one query).

    The counts are read, not counted (fetcher.models.FolderCount, kept by triggers): the sidebar
    costs the same for ten messages or a million.
    """
    folders = list(
        Folder.objects.filter(Q(synced=True) | Q(local=True), mailbox__owner=user)
        .select_related("mailbox", "count")
        .order_by("mailbox__name", "mailbox__email_address", "name")
    )
    for folder in folders:
        count = _count_of(folder)
        folder.unread, folder.total = count.unread, count.messages  # type: ignore[attr-defined]
    return folders


def _count_of(folder: Folder) -> FolderCount:
    try:
        return folder.count
    except FolderCount.DoesNotExist:  # no message has been stored in it yet
        return FolderCount(folder=folder)


# Unread counts show as "999+" from here on: a number that large is not read, only noticed.
UNREAD_CAP = 1000


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
    if not parts:
        return Page([], None)
    merged = (
        parts[0] if len(parts) == 1 else parts[0].union(*parts[1:], all=True).order_by("-sort_date", "-id")
    )
    with ordered_walks():
        return _page(list(merged[: limit + 1]), limit)


# What a list query must not be planned as. Its intended plan is a walk down a (folder or mailbox,
# sort_date, id) index that stops after one page, probing the conversation index per row; without
# statistics (a large first sync, autovacuum off) the planner guesses a folder holds a few dozen
# messages and prefers to read all of them and sort. PostgreSQL has no query hints, but its
# enable_* settings make a kind of plan the last resort, for one transaction.
_WALK_SETTINGS = (
    "enable_seqscan",
    "enable_bitmapscan",
    "enable_sort",
    "enable_hashjoin",
    "enable_mergejoin",
    "enable_material",
)


@contextmanager
def ordered_walks() -> Iterator[None]:
    """Plan the queries inside as index walks in the index's order: no sort, scan or hash of messages."""
    nested = connection.in_atomic_block  # else the settings end with the transaction opened here
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        names = list(_WALK_SETTINGS)
        cursor.execute(
            "SELECT " + ", ".join(["current_setting(%s), set_config(%s, 'off', true)"] * len(names)),
            [value for name in names for value in (name, name)],
        )
        before = cursor.fetchone()[0::2]
        try:
            yield
        finally:
            if nested:  # the settings last as long as the transaction: hand the caller's back
                cursor.execute(
                    "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(names)),
                    [value for pair in zip(names, before, strict=True) for value in pair],
                )


def page_of_starred(user: User, after: Cursor | None, limit: int = PAGE_SIZE) -> Page:
    boxes = list(Mailbox.objects.filter(owner=user).values_list("id", flat=True))
    parts = [
        _newest_first(Message.objects.filter(mailbox_id=box, flagged=True), after, limit + 1) for box in boxes
    ]
    return _merged(parts, limit)


def page_of_search(matches: QuerySet[Message], after: Cursor | None, limit: int = PAGE_SIZE) -> Page:
    return _page(list(_newest_first(matches, after, limit + 1)), limit)


def unread_in_view(user: User, view: str) -> int:
    counts = FolderCount.objects.filter(folder__in=_view_folders(user, view))
    total: int | None = counts.aggregate(unread=Sum("unread"))["unread"]
    return total or 0


def _view_folders(user: User, view: str) -> QuerySet[Folder]:
    return Folder.objects.filter(Q(synced=True) | Q(local=True), mailbox__owner=user, role=VIEW_ROLES[view])


def view_folder_ids(user: User, view: str) -> list[int]:
    return list(_view_folders(user, view).values_list("id", flat=True))


def conversation_of(message: Message) -> list[Message]:
    """Every message of the message's conversation, in every folder and mailbox of its owner, oldest first."""
    if not message.thread_key:
        return [message]
    return list(
        Message.objects.filter(thread_key=message.thread_key)
        .filter(_in_folders_of(message.mailbox.owner_id))
        .select_related("mailbox", "folder")
        .defer("raw", "search_vector")
        .order_by("sort_date", "id")[:200]
    )


# The owner's folders as an array computed once per query (an InitPlan): a conversation is then
# looked up by (thread_key, folder) in its index, never through the owner's mailboxes.
_OWNER_FOLDERS = (
    "ARRAY(SELECT folder.id FROM fetcher_folder folder JOIN accounts_mailbox mailbox"
    " ON mailbox.id = folder.mailbox_id WHERE mailbox.owner_id = %s)"
)


_IN_OWNER_FOLDERS = f"fetcher_message.folder_id = ANY({_OWNER_FOLDERS})"


def _in_folders_of(owner_id: int) -> RawSQL:
    return RawSQL(_IN_OWNER_FOLDERS, [owner_id], output_field=BooleanField())  # noqa: S611 -- constant SQL


def thread_sizes(user: User, keys: list[str]) -> dict[str, int]:
    """How many messages each conversation holds (for the list's conversation counts).

    One count per conversation, each through the conversation index: a count over all the keys
    at once is planned, without statistics, as a walk of the user's folders filtering keys.
    """
    keys = list(dict.fromkeys(key for key in keys if key))
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key, (SELECT count(*) FROM fetcher_message message"  # noqa: S608 -- constant SQL
            f" WHERE message.thread_key = key AND message.folder_id = ANY({_OWNER_FOLDERS}))"
            " FROM unnest(%s::text[]) AS key",
            [user.pk, keys],
        )
        return dict(cursor.fetchall())


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
