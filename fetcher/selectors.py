"""Reads of the mail engine."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BinaryField,
    BooleanField,
    Case,
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
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower, Substr
from django.db.models.lookups import Exact
from django.http import Http404
from django.utils import timezone
from redis.exceptions import RedisError

from accounts.crypto import secret_digest
from accounts.models import Mailbox, User
from fetcher.mail import header_scan, search
from fetcher.models import (
    INLINE_IMAGES,
    Attachment,
    Folder,
    FolderCount,
    FolderRole,
    ImageSender,
    Message,
    OutgoingMessage,
    OutgoingState,
    ParseState,
    WorkerHeartbeat,
)

log = logging.getLogger(__name__)


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


def _readable(user: User) -> QuerySet[Message]:
    """The user's messages as a page or a change reads them: with mailbox and folder, no raw bytes."""
    return messages_of(user).select_related("mailbox", "folder").defer("raw")


# The first bytes of a message stage two has not parsed yet (NULL for the others), where its From and
# Subject are: a list shows them without reading whole messages (PostgreSQL detoasts only the slice).
_PENDING_HEAD = Case(
    When(
        parse_state=ParseState.PENDING,
        then=Substr("raw", 1, header_scan.SHOWN_HEAD, output_field=BinaryField()),
    ),
    default=Value(None, output_field=BinaryField()),
    output_field=BinaryField(),
)


def _with_pending_headers(messages: list[Message]) -> list[Message]:
    """Pending messages (read with `pending_head`) show the sender and subject their headers say.
    Only for showing: these instances are not saved (stage two writes the parsed values)."""
    for message in messages:
        head = getattr(message, "pending_head", None)
        if head is not None:
            shown = header_scan.shown_headers(bytes(head))
            message.subject = message.subject or shown.subject
            message.from_name = message.from_name or shown.from_name
            message.from_address = message.from_address or shown.from_address
    return messages


def message_shown(user: User, public_id: uuid.UUID | str) -> Message:
    """The user's message for its page (404 when not theirs): a pending one with what its headers say."""
    try:
        found = _readable(user).annotate(pending_head=_PENDING_HEAD).get(public_id=public_id)
    except (Message.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such message") from None
    return _with_pending_headers([found])[0]


def message_of(user: User, public_id: uuid.UUID | str) -> Message:
    """The user's own message, or 404: someone else's message does not exist for them."""
    try:
        return _readable(user).get(public_id=public_id)
    except (Message.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such message") from None


# What a change reads of a message (fetcher.services), with its mailbox and folder: never the bodies.
ACTION_FIELDS = (
    "id",
    "public_id",
    "mailbox",
    "folder",
    "message_id",
    "size",
    "thread_key",
    "seen",
    "flagged",
    "answered",
    "pending_flags",
    "pending_move",
)


def _to_change(messages: QuerySet[Message]) -> QuerySet[Message]:
    return messages.select_related("mailbox", "folder").only(*ACTION_FIELDS)


def messages_chosen(user: User, public_ids: Sequence[uuid.UUID | str]) -> list[Message]:
    """The user's own messages of these ids, in one query; 404 if any is not theirs (nothing changes)."""
    try:
        wanted = {uuid.UUID(str(public_id)) for public_id in public_ids}
    except ValueError:
        raise Http404("No such message") from None
    found = list(_to_change(messages_of(user).filter(public_id__in=wanted)))
    if len(found) != len(wanted):
        raise Http404("No such message")
    return found


def owned_for_change(user: User, ids: Sequence[int]) -> list[Message]:
    """The user's own messages of these primary keys (an undo's), as a change reads them; others' are not."""
    return list(_to_change(messages_of(user).filter(pk__in=list(ids))))


@dataclass(frozen=True)
class ListScope:
    """Which messages a list holds, for an action on its conversation rows: a view's or one folder's
    (`folders`), the person's starred messages, or a search's matches."""

    folders: list[int] | None = None  # None: any folder of the owner
    starred: bool = False
    search: _Search | None = None
    mailboxes: list[uuid.UUID] | None = None  # a search's

    def filters(self, owner_id: int) -> list[Any]:
        if self.folders is not None:
            return [Q(folder_id__in=self.folders)]
        found: list[Any] = [_in_folders_of(owner_id)]
        if self.starred:
            found.append(Q(flagged=True))
        if self.search is not None:
            found += [Q(mailbox_id__in=self.mailboxes or []), *self.search.filters()]
            if self.search.tsquery:
                found.append(_matches(self.search.tsquery))
            if self.search.folders is not None:
                found.append(Q(folder_id__in=sorted(self.search.folders)))
        return found


def list_scope(user: User, where: str, query: str = "") -> ListScope:
    """The scope of a list by what the list page calls it (`here`): a view's name, "search" (with its
    query), or a folder's public id (404 for someone else's folder)."""
    if where == "starred":
        return ListScope(starred=True)
    if where in VIEW_ROLES:
        return ListScope(folders=view_folder_ids(user, where))
    if where == "search":
        return ListScope(search=_search_of(user, search.parse_query(query)), mailboxes=_mailbox_ids(user))
    return ListScope(folders=[folder_of(user, where).pk])


def conversations_chosen(
    user: User, public_ids: Sequence[uuid.UUID | str], scope: ListScope
) -> list[Message]:
    """The chosen rows of a list of conversations, each row with every message of its conversation
    that the list holds (`scope`): what an action on a conversation row acts on. Two queries however
    many rows; 404 if a chosen one is not theirs (nothing changes).

    The conversations are looked up by (thread_key, folder) in their index, as conversation_of does.
    """
    chosen = messages_chosen(user, public_ids)
    keys = sorted({message.thread_key for message in chosen if message.thread_key})
    if not keys:
        return chosen
    found = {message.pk: message for message in chosen}
    mates = Message.objects.filter(*scope.filters(user.pk), thread_key__in=keys)
    for message in _to_change(mates):
        found.setdefault(message.pk, message)
    return list(found.values())


def raw_of(message: Message) -> bytes:
    """A message's raw bytes, read on their own (lists and views defer them)."""
    return bytes(Message.objects.values_list("raw", flat=True).get(pk=message.pk))


# The roles a move may name instead of a folder: each message goes to its own mailbox's.
MOVE_ROLES = (FolderRole.INBOX, FolderRole.ARCHIVE, FolderRole.JUNK, FolderRole.TRASH)


def move_target(user: User, value: str) -> Folder | str:
    """What "Move to" chose: one of the user's folders, or "role:<role>" (MOVE_ROLES), as that role;
    "" for nothing chosen. 404 for someone else's folder, or one of Postane's own in an IMAP
    mailbox (the server cannot take messages there)."""
    if not value:
        return ""
    role = value.removeprefix("role:")
    if role != value:
        if role not in MOVE_ROLES:
            raise Http404("No such folder")
        return role
    folder = folder_of(user, value)
    if folder.local:
        raise Http404("No such folder")
    return folder


def folder_of(user: User, public_id: uuid.UUID | str) -> Folder:
    try:
        return Folder.objects.select_related("mailbox").get(mailbox__owner=user, public_id=public_id)
    except (Folder.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such folder") from None


@dataclass(frozen=True)
class Holdings:
    """What a user holds: their mailboxes in display order, and the folders shown of each, with counts.

    Two queries whatever the number of mailboxes and folders. A page reads them once
    (webmail.context_processors.holdings) and takes from them what its list, its rows and its
    sidebar need, instead of asking for the mailboxes again for each.
    """

    mailboxes: list[Mailbox]
    folders: list[Folder]  # synced or local ones, each with .unread, .total and its mailbox

    @classmethod
    def of(cls, user: User) -> Holdings:
        # With each mailbox's health (its MailboxSync) and how many of its messages could not be read,
        # in the same statement: the sidebar and the lists say when a mailbox needs the person.
        mailboxes: list[Mailbox] = list(
            Mailbox.objects.filter(owner=user)
            .select_related("sync")
            .annotate(unreadable=_UNREADABLE)
            .order_by("name", "email_address")
        )
        by_id = {mailbox.id: mailbox for mailbox in mailboxes}
        folders = []
        # The counts are read, not counted (fetcher.models.FolderCount, kept by triggers): the
        # sidebar costs the same for ten messages or a million.
        shown = Folder.objects.filter(Q(synced=True) | Q(local=True), mailbox__owner=user)
        ordered = shown.select_related("count").order_by("mailbox__name", "mailbox__email_address", "name")
        for folder in ordered:
            mailbox = by_id.get(folder.mailbox_id)
            if mailbox is None:  # a mailbox added between the two reads: on the next page
                continue
            folder.mailbox = mailbox
            count = _count_of(folder)
            folder.unread, folder.total = count.unread, count.messages  # type: ignore[attr-defined]
            folders.append(folder)
        return cls(mailboxes, folders)

    def mailbox_ids(self) -> list[uuid.UUID]:
        return [mailbox.id for mailbox in self.mailboxes]

    def view_folder_ids(self, view: str) -> list[int]:
        """The folders a view (inbox, sent...) lists: view_folder_ids() without a query."""
        return [folder.pk for folder in self.folders if folder.role == VIEW_ROLES[view]]


def folders_of(user: User) -> list[Folder]:
    """Every folder shown of every mailbox of the user, with its message and unread counts."""
    return Holdings.of(user).folders


def _count_of(folder: Folder) -> FolderCount:
    try:
        return folder.count
    except FolderCount.DoesNotExist:  # no message has been stored in it yet
        return FolderCount(folder=folder)


# Unread counts show as "999+" from here on: a number that large is not read, only noticed.
UNREAD_CAP = 1000

# A mailbox's messages that stage two could not read (parse state failed), counted up to the cap the
# unread counts have, through the partial index message_unreadable (nearly always empty).
_UNREADABLE = RawSQL(
    "SELECT count(*) FROM (SELECT 1 FROM fetcher_message unreadable"
    " WHERE unreadable.mailbox_id = accounts_mailbox.id AND unreadable.parse_state = 'failed'"
    " LIMIT %s) capped",
    [UNREAD_CAP],
    output_field=BigIntegerField(),
)


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
    return (
        messages.only(*LIST_FIELDS).annotate(pending_head=_PENDING_HEAD).order_by("-sort_date", "-id")[:limit]
    )


def _page(found: list[Message], limit: int) -> Page:
    more = len(found) > limit
    found = _with_pending_headers(found[:limit])
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
        yield
        # The settings last as long as the transaction: hand the caller's back. (After an error
        # the caller's transaction is rolled back, and the settings with it.)
        if nested:
            cursor.execute(
                "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(names)),
                [value for pair in zip(names, before, strict=True) for value in pair],
            )


def _mailbox_ids(user: User) -> list[uuid.UUID]:
    return list(Mailbox.objects.filter(owner=user).values_list("id", flat=True))


def page_of_starred(
    user: User, after: Cursor | None, limit: int = PAGE_SIZE, *, mailboxes: list[uuid.UUID] | None = None
) -> Page:
    """A page of the user's starred messages; `mailboxes`: their ids when the caller has them."""
    boxes = _mailbox_ids(user) if mailboxes is None else mailboxes
    parts = [
        _newest_first(Message.objects.filter(mailbox_id=box, flagged=True), after, limit + 1) for box in boxes
    ]
    return _merged(parts, limit)


def unread_in_view(user: User, view: str) -> int:
    counts = FolderCount.objects.filter(folder__in=_view_folders(user, view))
    total: int | None = counts.aggregate(unread=Sum("unread"))["unread"]
    return total or 0


def _view_folders(user: User, view: str) -> QuerySet[Folder]:
    return Folder.objects.filter(Q(synced=True) | Q(local=True), mailbox__owner=user, role=VIEW_ROLES[view])


def view_folder_ids(user: User, view: str) -> list[int]:
    return list(_view_folders(user, view).values_list("id", flat=True))


def conversation_of(message: Message) -> list[Message]:
    """Every message of the message's conversation, in every folder and mailbox of its owner, oldest
    first, each once: copies with one Message-ID (mail between two of the owner's mailboxes, a Sent
    copy that came back) show as one, the opened message where it is one of them."""
    if not message.thread_key:
        return [message]
    found = (
        Message.objects.filter(thread_key=message.thread_key)
        .filter(_in_folders_of(message.mailbox.owner_id))
        .select_related("mailbox", "folder")
        .defer("raw", "search_vector")
        .order_by("sort_date", "id")[:200]
    )
    shown: dict[str, Message] = {}
    for copy in found:
        key = copy.message_id or f"#{copy.pk}"
        if key not in shown or copy.pk == message.pk:  # a key keeps its place when its copy is replaced
            shown[key] = copy
    return list(shown.values())


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


def attachments_of(messages: Sequence[Message]) -> dict[int, list[Attachment]]:
    """Each message's attachments in part order, in one query (a conversation's page shows them all)."""
    found: dict[int, list[Attachment]] = {}
    for attachment in Attachment.objects.filter(message__in=messages).order_by("part"):
        found.setdefault(attachment.message_id, []).append(attachment)
    return found


def attachment_of(message: Message, part: int) -> Attachment:
    """A part of a message found through its reader (message_of), or 404."""
    found = Attachment.objects.filter(message=message, part=part).first()
    if found is None:
        raise Http404("No such part")
    return found


def content_ids_of(message: Message) -> dict[str, int]:
    """The parts an HTML body may show by `cid:`: each image's Content-ID with its part number."""
    named = Attachment.objects.filter(message=message, content_type__in=INLINE_IMAGES).exclude(content_id="")
    return dict(named.values_list("content_id", "part"))


def inline_image_of(owner_id: int, public_id: uuid.UUID | str, part: int) -> Attachment:
    """An image part of the owner's message, for a signed link (webmail.part_links) that stands in for
    the session: the owner is the one the signature names. 404 for anything else, a non-image too."""
    found = (
        Attachment.objects.select_related("message")
        .defer("message__raw")
        .filter(
            message__public_id=public_id,
            message__mailbox__owner_id=owner_id,
            part=part,
            content_type__in=INLINE_IMAGES,
        )
        .first()
    )
    if found is None:
        raise Http404("No such part")
    return found


def images_allowed(message: Message) -> bool:
    """Remote images of this message may load: asked for this message, or always for its sender."""
    if message.show_images:
        return True
    owner = message.mailbox.owner_id
    return ImageSender.objects.filter(owner_id=owner, address=message.from_address.lower()).exists()


# --- search ---------------------------------------------------------------------------------------
#
# Every operator is answered through an index, so that a page reads about a page of rows, or at
# most SORTED_MATCHES matches of its words, whatever the size of the mailboxes and whatever the
# planner's statistics:
#
# - free words and subject: from: to: are one tsquery, with the person's mailboxes in it (every
#   vector holds its mailbox: fetcher.mail.search), answered by the GIN index alone; when the words are
#   in at most SORTED_MATCHES messages, the other operators filter those, which are sorted;
# - otherwise (words in many messages, or no words), the search walks each mailbox by date, or
#   each folder in: names, on an index whose condition is a filter (message_unread_newest,
#   message_read_newest, message_starred, message_attachments, message_unread for a folder),
#   checking the rest on each row, and the walks are merged as page_of_folders merges folders.
#   Words in many messages are met often on the way: a page of them within a few thousand rows.

SORTED_MATCHES = 1000

_ROLE_NAMES = {
    FolderRole.INBOX: {"inbox", "gelen", "gelenkutusu"},
    FolderRole.SENT: {"sent", "gonderilen", "gonderilenler"},
    FolderRole.DRAFTS: {"drafts", "draft", "taslak", "taslaklar"},
    FolderRole.TRASH: {"trash", "cop", "copkutusu", "silinen", "silinenler"},
    FolderRole.JUNK: {"junk", "spam", "istenmeyen"},
    FolderRole.ARCHIVE: {"archive", "arsiv"},
}


# As SQL, not Q: the same conditions filter an index walk (where they pick the partial index) and
# the matches of a text search (raw SQL, see _text_matches).
_STATES = {
    "unread": "NOT fetcher_message.seen",
    "okunmamis": "NOT fetcher_message.seen",
    "read": "fetcher_message.seen",
    "okunmus": "fetcher_message.seen",
    "starred": "fetcher_message.flagged",
    "yildizli": "fetcher_message.flagged",
    # What stage two could not read (the raw message is kept): the lists' notice links here.
    "unreadable": "fetcher_message.parse_state = 'failed'",
    "okunamayan": "fetcher_message.parse_state = 'failed'",
}
_ATTACHMENT_WORDS = {"attachment", "attachments", "ek", "dosya"}


@dataclass
class _Search:
    """A parsed search: a tsquery of its words (or none), SQL conditions, the folders in: allows."""

    tsquery: str = ""
    conditions: list[tuple[str, list[Any]]] = field(default_factory=list)
    folders: set[int] | None = None  # None: every folder

    def filters(self) -> list[RawSQL]:
        # Each condition is a constant of this module; values are parameters.
        return [RawSQL(sql, params, output_field=BooleanField()) for sql, params in self.conditions]  # noqa: S611


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


def _folders_named(user: User, term: str) -> set[int]:
    """The user's folders that in:<term> names: a role in English or Turkish, else a folder's own name."""
    role = next((role for role, names in _ROLE_NAMES.items() if term.replace(" ", "") in names), None)
    folders = Folder.objects.filter(mailbox__owner=user)
    named = folders.filter(Exact(_folded("name"), term) if role is None else Q(role=role))
    return set(named.values_list("id", flat=True))


def _operator(user: User, found: _Search, operator: str, value: str) -> None:
    """Add one operator to a search. An operator whose value means nothing (is:maybe) is left out."""
    term = search.fold(value)
    if operator in search.FIELD_TAGS:
        found.tsquery = " & ".join(part for part in (found.tsquery, search.tsquery(value, operator)) if part)
    elif operator == "has" and term in _ATTACHMENT_WORDS:
        found.conditions.append(("fetcher_message.has_attachments", []))
    elif operator == "is" and term in _STATES:
        found.conditions.append((_STATES[term], []))
    elif operator == "in":
        named = _folders_named(user, term)
        found.folders = named if found.folders is None else found.folders & named
    elif operator in {"before", "after"} and (day := _day(value)) is not None:
        found.conditions.append(
            (f"fetcher_message.sort_date {'<' if operator == 'before' else '>='} %s", [day])
        )


def _matches(tsquery: str) -> RawSQL:
    return RawSQL("fetcher_message.search_vector @@ %s::tsquery", [tsquery], output_field=BooleanField())


def _search_of(user: User, query: search.Query) -> _Search:
    found = _Search(tsquery=search.tsquery(query.text))
    for operator, value in query.operators:
        _operator(user, found, operator, value)
    return found


def page_of_search(
    user: User,
    query: search.Query,
    after: Cursor | None,
    limit: int = PAGE_SIZE,
    *,
    mailboxes: list[uuid.UUID] | None = None,
) -> Page:
    """A page of the user's messages matching a parsed search, newest first; `mailboxes`: the
    user's mailbox ids when the caller has them (Holdings)."""
    found = _search_of(user, query)
    boxes = _mailbox_ids(user) if mailboxes is None else mailboxes
    if found.tsquery:
        many = _known_many(found.tsquery, boxes)
        matches = None if many.known else _few_matches(found, boxes, after, limit + 1)
        if matches is not None:
            return _page(matches, limit)
        many.remember()
        found.conditions.append(("fetcher_message.search_vector @@ %s::tsquery", [found.tsquery]))
    walks = (
        [Message.objects.filter(folder_id=folder) for folder in sorted(found.folders)]
        if found.folders is not None
        else [Message.objects.filter(mailbox_id=box) for box in boxes]
    )
    parts = [_newest_first(walk.filter(*found.filters()), after, limit + 1) for walk in walks]
    return _merged(parts, limit)  # walked under ordered_walks()


# How long "these words are in more than SORTED_MATCHES of these mailboxes' messages" is believed:
# the next page of the search, the same search again, skip the lookup of the matches (up to 1,001
# rows read through the GIN index) that would only say so again. The walk by date that follows
# gives the same answer as the matches would, so a stale memo costs time, never a result.
MANY_MATCHES_SECONDS = 6 * 3600


@dataclass(frozen=True)
class _Many:
    key: str
    known: bool

    def remember(self) -> None:
        if not self.known:
            try:
                cache.set(self.key, 1, MANY_MATCHES_SECONDS)
            except RedisError:  # the memo is a shortcut: without Redis, search still answers
                log.warning(
                    "search: the cache is not answering; searches by common words look up their matches"
                )


def _known_many(tsquery: str, boxes: list[uuid.UUID]) -> _Many:
    """Whether a search by these words in these mailboxes is known to match too many to sort.

    The key is a keyed digest: the words a person searched for are not written to Redis.
    """
    key = "search-many:" + secret_digest(search.in_mailboxes(tsquery, sorted(boxes)))
    try:
        return _Many(key, bool(cache.get(key)))
    except RedisError:  # see _Many.remember
        return _Many(key, known=False)


_COLUMNS = {column.attname: column.column for column in Message._meta.concrete_fields}
# What the matches of words carry: a list row's fields, which hold every column a condition names.
_LIST_COLUMNS = ", ".join(f'"{_COLUMNS[name]}"' for name in LIST_FIELDS)


def _few_matches(
    found: _Search, boxes: list[uuid.UUID], after: Cursor | None, limit: int
) -> list[Message] | None:
    """The newest matches of a search with words when they are at most SORTED_MATCHES; None for more.

    The GIN index is the planner's only choice: the fenced matches (a CTE with a LIMIT: no
    condition of the outer query moves into it) have no condition but the match, and the tsquery
    is a subquery's result, so the planner plans with the default selectivity of @@ (0.5 %)
    instead of statistics that may say a word is in every message. The mailboxes are in the
    tsquery (the index finds this person's matches only) and again outside, where no statistics
    about mailboxes can turn the plan into a walk of one: the user's own mailboxes are the access
    check. One statement says both the page and whether the matches were all there: with more,
    the second part returns a row whatever the conditions.
    """
    tsquery = search.in_mailboxes(found.tsquery, boxes)
    if not tsquery or found.folders == set():
        return []
    conditions = [("fetcher_message.mailbox_id = ANY(%s)", [boxes]), *found.conditions]
    if found.folders is not None:
        conditions.append(("fetcher_message.folder_id = ANY(%s)", [list(found.folders)]))
    if after is not None:
        conditions.append(
            ("(fetcher_message.sort_date, fetcher_message.id) < (%s, %s)", [after.sort_date, after.id])
        )
    sql = (
        "WITH fenced AS MATERIALIZED (SELECT *, count(*) OVER () AS matches"  # noqa: S608 -- constant SQL
        f" FROM (SELECT {_LIST_COLUMNS} FROM fetcher_message WHERE search_vector @@ (SELECT %s::tsquery)"
        " LIMIT %s) capped)"
        " (SELECT * FROM fenced fetcher_message WHERE "
        + " AND ".join(sql for sql, _params in conditions)
        + " ORDER BY fetcher_message.sort_date DESC, fetcher_message.id DESC LIMIT %s)"
        " UNION ALL (SELECT * FROM fenced WHERE matches > %s LIMIT 1)"
    )
    params = [
        tsquery,
        SORTED_MATCHES + 1,
        *(param for _sql, params in conditions for param in params),
        limit,
        SORTED_MATCHES,
    ]
    rows = list(Message.objects.raw(sql, params))
    if any(row.matches > SORTED_MATCHES for row in rows):  # type: ignore[attr-defined]
        return None
    return sorted(rows, key=lambda row: (row.sort_date, row.pk), reverse=True)


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


# --- the outbox: always through the requesting user ------------------------------------------------


def outgoing_of(user: User, public_id: uuid.UUID | str) -> OutgoingMessage:
    """The user's own draft or outgoing message, or 404."""
    try:
        return OutgoingMessage.objects.select_related("mailbox").get(owner=user, public_id=public_id)
    except (OutgoingMessage.DoesNotExist, ValueError):
        raise Http404("No such draft") from None


def outgoing_chosen(user: User, public_ids: Sequence[uuid.UUID | str]) -> list[OutgoingMessage]:
    """The user's own drafts or outgoing messages of these ids, in one query; 404 if any is not theirs."""
    try:
        wanted = {uuid.UUID(str(public_id)) for public_id in public_ids}
    except ValueError:
        raise Http404("No such draft") from None
    found = list(OutgoingMessage.objects.filter(owner=user, public_id__in=wanted).defer("raw"))
    if len(found) != len(wanted):
        raise Http404("No such draft")
    return found


@dataclass(frozen=True)
class DraftsPage:
    """A page of the Drafts view: the drafts written here and those of the servers' Drafts folders,
    as one list newest first (a draft written here by when it was last changed)."""

    rows: list[Message | OutgoingMessage]
    next: Cursor | None


def page_of_drafts(
    user: User, folder_ids: list[int], after: Cursor | None, limit: int = PAGE_SIZE
) -> DraftsPage:
    """Both kinds merged on one cursor: each side gives up to a page after it; where a side has
    more, the page ends at the last row it gave (below that its next rows are not known yet), and
    the last row shown is where the next page starts. A server's copy of a message written here
    (outbox.draft_to_server, kept until the message is sent) is not listed beside it, nor is that
    of a message waiting to leave."""
    page = page_of_folders(folder_ids, after, limit)
    ours = OutgoingMessage.objects.filter(owner=user, message_id__in={m.message_id for m in page.messages})
    copies = set(ours.exclude(message_id="").values_list("message_id", flat=True))
    found = OutgoingMessage.objects.filter(owner=user, state=OutgoingState.DRAFT).defer("raw")
    if after is not None:
        found = found.filter(
            Q(updated_at__lt=after.sort_date) | Q(updated_at=after.sort_date, id__lt=after.id)
        )
    drafts = list(found.order_by("-updated_at", "-id")[: limit + 1])
    ends = [(page.next.sort_date, page.next.id)] if page.next else []
    if len(drafts) > limit:
        drafts = drafts[:limit]
        ends.append(_draft_key(drafts[-1]))
    rows: list[Message | OutgoingMessage] = [m for m in page.messages if m.message_id not in copies]
    rows = sorted([*rows, *drafts], key=_draft_key, reverse=True)
    if ends:
        rows = [row for row in rows if _draft_key(row) >= max(ends)]
    if not ends and len(rows) <= limit:
        return DraftsPage(rows, None)
    rows = rows[:limit]
    last = _draft_key(rows[-1]) if rows else max(ends)
    return DraftsPage(rows, Cursor(*last))


def _draft_key(row: Message | OutgoingMessage) -> tuple[datetime, int]:
    return (row.sort_date, row.pk) if isinstance(row, Message) else (row.updated_at, row.pk)


def outbox_of(user: User) -> dict[str, QuerySet[OutgoingMessage]]:
    """The outbox page's lists: what waits to leave, what failed, what was sent last (drafts are
    in the Drafts view, page_of_drafts)."""
    rows = OutgoingMessage.objects.filter(owner=user).select_related("mailbox").defer("raw")
    return {
        "waiting": rows.filter(state__in=[OutgoingState.QUEUED, OutgoingState.SENDING]).order_by(
            "send_after"
        ),
        "failed": rows.filter(state=OutgoingState.FAILED).order_by("-updated_at"),
        "sent": rows.filter(state=OutgoingState.SENT).order_by("-sent_at")[:20],
    }
