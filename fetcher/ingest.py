"""Storing downloaded messages in two stages: secure the raw bytes first, derive the rest after.

Stage one (`store_pop3_batch`) commits raw bytes with only what the ledger and the message
list need (a cheap scan of the header block for Date and Message-ID). Only after that commit
may anything be deleted on the server. Stage two (`parse_messages`) runs in parallel Celery
tasks and derives subject, addresses, bodies, attachments and the search vector; `reindex`
runs it again over everything.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from accounts.models import Mailbox, Protocol, User
from fetcher import conversations, enqueue, leases
from fetcher.mail import mime, search, threads
from fetcher.models import Attachment, Folder, FolderRole, ImapMessage, Message, ParseState, Pop3Ledger

logger = logging.getLogger(__name__)

_HEADER_SCAN_LIMIT = 64 * 1024
_DATE = re.compile(rb"^Date:[ \t]*(.+(?:\r?\n[ \t].+)*)", re.IGNORECASE | re.MULTILINE)
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
# Raw messages larger than this are stored and read one at a time, streamed (not in a batch held in
# memory). Not mime.PARSED_BY_BOUNDARIES: that is the size at which parsing changes its method.
STREAMED_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    """Raw bytes as a server gave them, with the id the server knows them by."""

    uid: str
    raw: bytes


def _header_block(raw: bytes) -> bytes:
    head = raw[:_HEADER_SCAN_LIMIT]
    end = re.search(rb"\r?\n\r?\n", head)
    return head[: end.start()] if end else head


class OverlappedWrites:
    """Batches committed by a second thread (its own connection) while the next one downloads.

    Inside a transaction (tests, callers that need atomicity) it writes inline instead, so
    the caller's transaction sees the rows. `total()` waits for every write to finish.
    """

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self._pool = pool
        self._pending: list[Future[list[int]]] = []
        self._done = 0

    def submit(self, write: Callable[[], list[int]]) -> None:
        if self._pool is None:
            self._done += len(write())
            return
        for future in [f for f in self._pending if f.done()]:
            self._done += len(future.result())  # a failed write stops the sync here
            self._pending.remove(future)
        while len(self._pending) >= 2:  # downloads may run one batch ahead of the writer, no more
            self._done += len(self._pending.pop(0).result())
        self._pending.append(self._pool.submit(write))

    def total(self) -> int:
        while self._pending:
            self._done += len(self._pending.pop(0).result())
        return self._done


@contextmanager
def overlapped_writes() -> Iterator[OverlappedWrites]:
    if connection.in_atomic_block:
        yield OverlappedWrites(None)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as pool:
        writes = OverlappedWrites(pool)
        try:
            yield writes
        finally:
            pool.submit(connections.close_all)  # in the writer thread: closes its own connection
            writes.total()  # every batch is committed (or has raised) before the caller goes on


def quick_headers(raw: bytes) -> tuple[datetime | None, str]:
    """Date and Message-ID from the header block, without the full parser (stage one is about speed)."""
    block = _header_block(raw)
    date = None
    if match := _DATE.search(block):
        try:
            date = email.utils.parsedate_to_datetime(match[1].decode("ascii", "replace"))
        except (TypeError, ValueError, IndexError):
            date = None
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=UTC)
    message_id = _MESSAGE_ID.search(block)
    return date, message_id[1].decode("ascii", "replace")[:998] if message_id else ""


def _new_message(mailbox: Mailbox, folder: Folder, raw: bytes, now: datetime) -> Message:
    date, message_id = quick_headers(raw)
    return Message(
        mailbox=mailbox,
        folder=folder,
        raw=raw,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        message_id=message_id,
        date=date,
        sort_date=date if date is not None and date <= now else now,
    )


def inbox_of(mailbox: Mailbox) -> Folder:
    folder, _created = Folder.objects.get_or_create(
        mailbox=mailbox, name="INBOX", defaults={"role": FolderRole.INBOX}
    )
    return folder


def special_folder(mailbox: Mailbox, role: str) -> Folder | None:
    """The mailbox's Trash, Archive...: the server's for IMAP (by its SPECIAL-USE flag or its name,
    `fetcher.folders`; None until a listing found it), a local one for POP3."""
    if mailbox.protocol == Protocol.POP3:
        return pop3_folder(mailbox, role)
    return Folder.objects.filter(mailbox=mailbox, role=role, synced=True).order_by("id").first()


def pop3_folder(mailbox: Mailbox, role: str) -> Folder:
    """A POP3 mailbox's own Sent, Trash...: POP3 servers have only an inbox."""
    folder, _created = Folder.objects.get_or_create(
        mailbox=mailbox,
        role=role,
        defaults={"name": str(role).capitalize()},  # shown by its role
    )
    return folder


def local_folder(mailbox: Mailbox, role: str) -> Folder:
    """A folder of Postane's own in an IMAP mailbox, for what the server cannot hold yet (a sent
    copy while the server is unreachable: the next sync moves it to the server's Sent)."""
    folder, _created = Folder.objects.get_or_create(
        mailbox=mailbox,
        role=role,
        local=True,
        defaults={"name": f"{str(role).capitalize()} (Postane)", "synced": False},
    )
    return folder


def store_local(*, mailbox: Mailbox, folder: Folder, raw: bytes, pending_append: bool = False) -> int:
    """Keep a message that came from Postane itself (a sent copy): stored like fetched mail, read.

    `pending_append`: the IMAP server's Sent could not take it; the next sync appends it there.
    """
    with transaction.atomic():
        [message_pk] = _copy_messages(mailbox, folder, [raw], [{"seen": True}])
        if pending_append:
            Message.objects.filter(pk=message_pk).update(pending_append=True)
    transaction.on_commit(lambda: enqueue.parse_messages([message_pk]))
    return message_pk


# Stage one writes with COPY: the ORM's multi-row INSERT spends more time building and escaping
# the statement than PostgreSQL spends storing the bytes. Columns without a value here are
# the derived ones, filled by stage two.
_MESSAGE_COLUMNS = (
    "id",
    "public_id",
    "mailbox_id",
    "folder_id",
    "raw",
    "size",
    "sha256",
    "fetched_at",
    "parse_state",
    "parse_problems",
    "message_id",
    "subject",
    "from_name",
    "from_address",
    "to",
    "cc",
    "reply_to",
    "date",
    "sort_date",
    "in_reply_to",
    "references",
    "text_body",
    "html_body",
    "snippet",
    "has_attachments",
    "seen",
    "flagged",
    "answered",
    "pending_flags",
)
_EMPTY_JSON = "[]"  # COPY takes jsonb as text: no encoding per row


def _copy_messages(
    mailbox: Mailbox, folder: Folder, raws: Sequence[bytes], flags: Sequence[dict[str, bool]]
) -> list[int]:
    """Insert messages with COPY inside the caller's transaction; returns their ids in order."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('fetcher_message', 'id')) FROM generate_series(1, %s)",
            [len(raws)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        columns = ", ".join(f'"{name}"' for name in _MESSAGE_COLUMNS)
        large: list[tuple[bytes, int]] = []
        with cursor.cursor.copy(f"COPY fetcher_message ({columns}) FROM STDIN") as copy:
            for message_pk, raw, flag in zip(ids, raws, flags, strict=True):
                date, message_id = quick_headers(raw)
                sort_date = date if date is not None and date <= now else now
                digest = hashlib.sha256(raw).hexdigest()
                streamed = len(raw) > STREAMED_BYTES
                if streamed:
                    large.append((raw, message_pk))
                copy.write_row((
                    message_pk, uuid.uuid4(), mailbox.pk, folder.pk, b"" if streamed else raw,
                    len(raw), digest, now,
                    ParseState.PENDING, _EMPTY_JSON, message_id, "", "", "", _EMPTY_JSON, _EMPTY_JSON,
                    _EMPTY_JSON, date, sort_date, "", _EMPTY_JSON, "", "", "", False,
                    flag.get("seen", False), flag.get("flagged", False), flag.get("answered", False), "{}",
                ))  # fmt: skip
        # Text COPY writes bytea as hex, twice the size, and Django's cursor binds values into the
        # query text; a large message goes as a binary parameter of its own statement instead.
        with psycopg.Cursor(cursor.connection) as binary:
            for raw, message_pk in large:
                binary.execute("UPDATE fetcher_message SET raw = %b WHERE id = %s", [raw, message_pk])
    return ids


def _copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def store_pop3_batch(*, mailbox: Mailbox, folder: Folder, batch: Sequence[Fetched]) -> list[int]:
    """Commit raw messages and their ledger rows together; return the new message ids.

    One transaction per batch. A UIDL already in the ledger (another worker got there first)
    makes the database refuse the batch; it is then stored one message at a time, skipping
    what is already there.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            ids = _copy_messages(mailbox, folder, [item.raw for item in batch], [{}] * len(batch))
            _copy_rows(
                "fetcher_pop3ledger",
                ("mailbox_id", "uid", "message_id", "first_seen_at"),
                (
                    (mailbox.pk, item.uid, message_pk, now)
                    for item, message_pk in zip(batch, ids, strict=True)
                ),
            )
    except IntegrityError:
        return _store_one_by_one(mailbox, folder, batch, now)
    transaction.on_commit(lambda: enqueue.parse_messages(ids))
    return ids


def _store_one_by_one(mailbox: Mailbox, folder: Folder, batch: Sequence[Fetched], now: datetime) -> list[int]:
    ids: list[int] = []
    for item in batch:
        with transaction.atomic():
            ledger, created = Pop3Ledger.objects.select_for_update().get_or_create(
                mailbox=mailbox, uid=item.uid
            )
            if not created:
                continue
            message = _new_message(mailbox, folder, item.raw, now)
            message.save()
            ledger.message = message
            ledger.save(update_fields=["message"])
            ids.append(message.pk)
    transaction.on_commit(lambda: enqueue.parse_messages(ids))
    return ids


# --- stage two: derive everything from the raw bytes ---------------------------------------------------


def _addresses(found: Iterable[mime.Address]) -> list[dict[str, str]]:
    return [address.as_json() for address in found]


def _apply(message: Message, parsed: mime.Parsed) -> None:
    sender = parsed.from_[0] if parsed.from_ else mime.Address("", "")
    message.parse_state = parsed.state
    message.parse_problems = parsed.problems[:50]
    message.subject = parsed.subject
    message.from_name, message.from_address = sender.name, sender.address[:320]
    message.to, message.cc, message.reply_to = (
        _addresses(parsed.to),
        _addresses(parsed.cc),
        _addresses(parsed.reply_to),
    )
    message.date = parsed.date
    message.message_id = parsed.message_id or message.message_id
    message.in_reply_to = parsed.in_reply_to
    message.references = parsed.references
    message.base_subject = threads.base_subject(parsed.subject)  # thread_key: conversations.place, later
    message.text_body = parsed.text
    message.html_body = parsed.html
    message.body_source = parsed.text_source
    message.snippet = parsed.snippet
    message.has_attachments = any(not part.inline or part.filename for part in parsed.attachments)
    if parsed.date is not None and parsed.date <= timezone.now():
        message.sort_date = parsed.date


_DERIVED_FIELDS = [
    "parse_state",
    "parse_problems",
    "subject",
    "from_name",
    "from_address",
    "to",
    "cc",
    "reply_to",
    "date",
    "message_id",
    "in_reply_to",
    "references",
    "thread_key",
    "base_subject",
    "text_body",
    "html_body",
    "body_source",
    "snippet",
    "has_attachments",
    "sort_date",
]


def parse_messages(ids: Sequence[int], chunk: int = enqueue.PARSE_BATCH) -> int:
    """Stage two for these messages; returns how many were parsed. Safe to run twice.

    Parsing is Python work and building the search vectors is PostgreSQL work, so outside a
    transaction the writes go to a second thread (its own connection) while the next chunk is
    parsed: the two overlap instead of taking turns. A parsed chunk waits for the chunk before
    it to be committed before it joins conversations (fetcher.conversations counts them in the
    database); the write is shorter than the parse, so that wait is rarely felt.
    """
    Message.objects.filter(id__in=ids).update(
        parse_attempts=F("parse_attempts") + 1, parse_lease_until=leases.lease_end()
    )
    chunks = [ids[start : start + chunk] for start in range(0, len(ids), chunk)]
    if connection.in_atomic_block:  # the caller's transaction must see the writes: stay on its connection
        return sum(_store_parsed(_placed(_parse_chunk(part))) for part in chunks)
    with (
        leases.LeaseKeeper(partial(_parsing, ids), f"parsing {len(ids)} messages"),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse-writer") as writer,
    ):
        pending: list[Future[int]] = []
        for part in chunks:
            parsed = _parse_chunk(part)
            if pending:
                pending[-1].result()  # a failed write stops the task here
            pending.append(writer.submit(_store_parsed, _placed(parsed)))
        writer.submit(connections.close_all)  # runs in the writer thread: closes its own connection
        return sum(future.result() for future in pending)


def _parsing(ids: Sequence[int]) -> bool:
    """Renew the parse lease of what is left to parse (a second parser is harmless: parsing is idempotent).

    Rows locked by a write (this task's writer thread, on its own connection) are skipped: they
    are being parsed now, and waiting for them while holding the rows already renewed made a
    deadlock with that writer.
    """
    free = Message.objects.filter(id__in=ids, parse_state=ParseState.PENDING).select_for_update(
        skip_locked=True
    )
    with transaction.atomic():
        Message.objects.filter(id__in=free.values("id")).update(parse_lease_until=leases.lease_end())
    return True


@dataclass
class _ParsedChunk:
    messages: list[Message]
    documents: list[str]  # each message's search document, a tsvector literal
    attachments: list[Attachment]


def _parse_chunk(ids: Sequence[int]) -> _ParsedChunk:
    messages = list(
        # The mailbox's owner comes in the same query: each message needs it (language, conversations).
        Message.objects.filter(id__in=ids)
        .select_related("mailbox")
        .only("id", "size", "message_id", "sort_date", "thread_key", "mailbox__id", "mailbox__owner_id")
    )
    small = [message.pk for message in messages if message.size <= STREAMED_BYTES]
    raws = dict(Message.objects.filter(id__in=small).values_list("id", "raw"))
    chunk = _ParsedChunk(messages, [], [])
    languages = _owner_languages(messages)
    for message in messages:
        # Large messages are read one at a time, each only when its turn comes.
        raw = raws.pop(message.pk, None) or Message.objects.values_list("raw", flat=True).get(pk=message.pk)
        parsed = mime.parse(
            bytes(raw), language=languages.get(message.mailbox.owner_id) or settings.LANGUAGE_CODE
        )
        del raw
        _apply(message, parsed)
        chunk.documents.append(_search_document(parsed, message.mailbox_id))
        chunk.attachments.extend(_attachment_rows(message, parsed))
    return chunk


def _placed(chunk: _ParsedChunk) -> _ParsedChunk:
    """The chunk's messages in their conversations, among what is committed (the chunks before it too)."""
    conversations.place(chunk.messages)
    return chunk


def _owner_languages(messages: list[Message]) -> dict[int, str]:
    """Each owner's reading language (accounts.User.language), for mail in an undeclared charset."""
    owners = {message.mailbox.owner_id for message in messages}
    return dict(User.objects.filter(pk__in=owners).exclude(language="").values_list("pk", "language"))


def _search_document(parsed: mime.Parsed, mailbox: uuid.UUID) -> str:
    return search.document(
        [*(part.filename for part in parsed.attachments), parsed.text or mime.html_to_text(parsed.html)],
        search.fields(
            parsed.subject,
            [(address.name, address.address) for address in parsed.from_],
            [(address.name, address.address) for address in (*parsed.to, *parsed.cc)],
        ),
        mailbox,
    )


def _store_parsed(chunk: _ParsedChunk) -> int:
    with transaction.atomic():
        _write_derived(chunk.messages, chunk.documents)
        Attachment.objects.filter(message__in=chunk.messages).delete()
        Attachment.objects.bulk_create(chunk.attachments)
    return len(chunk.messages)


# One UPDATE per message, sent in a pipeline (psycopg's executemany): far cheaper than bulk_update's
# CASE expressions. The search vector arrives ready-made (fetcher.mail.search), so PostgreSQL only reads it.
_UPDATE_DERIVED = (
    "UPDATE fetcher_message SET "  # noqa: S608 -- constant field names; every value is a parameter
    + ", ".join(f'"{name}" = %s' for name in _DERIVED_FIELDS)
    + ", search_vector = %s::tsvector WHERE id = %s"
)
_JSON_FIELDS = {"parse_problems", "to", "cc", "reply_to", "references"}


def _write_derived(messages: Sequence[Message], documents: Sequence[str]) -> None:
    rows = []
    for message, document in zip(messages, documents, strict=True):
        values = [
            Jsonb(getattr(message, name)) if name in _JSON_FIELDS else getattr(message, name)
            for name in _DERIVED_FIELDS
        ]
        rows.append([*values, document, message.pk])
    with connection.cursor() as cursor:
        cursor.executemany(_UPDATE_DERIVED, rows)  # type: ignore[arg-type]  # Jsonb is a psycopg adapter


def _attachment_rows(message: Message, parsed: mime.Parsed) -> list[Attachment]:
    return [
        Attachment(
            message=message,
            part=part.index,
            filename=part.filename,
            content_type=part.content_type[:255],
            size=part.size,
            content_id=part.content_id[:998],
            inline=part.inline,
        )
        for part in parsed.attachments
    ]


MAX_PARSE_ATTEMPTS = 3
LEFTOVER_AGE = timedelta(minutes=10)


def requeue_unparsed(limit: int = 10_000) -> int:
    """Queue again what no parse task finished (a lost task, a killed worker); return how many.

    A task that died is noticed as soon as its lease lapses; a task that never started (lost from
    the queue) after LEFTOVER_AGE, since a long queue is not a lost one. A message that failed
    MAX_PARSE_ATTEMPTS times (a killed worker or a time limit each time) is marked failed instead:
    it stays readable as raw source and never loops.
    """
    now = timezone.now()
    pending = Message.objects.filter(parse_state=ParseState.PENDING)
    old = now - LEFTOVER_AGE
    lapsed = Q(parse_lease_until__lt=now) | Q(parse_lease_until__isnull=True, fetched_at__lt=old)
    died = pending.filter(lapsed, parse_attempts__gt=0)
    died.filter(parse_attempts__gte=MAX_PARSE_ATTEMPTS).update(
        parse_state=ParseState.FAILED,
        parse_problems=[f"not read after {MAX_PARSE_ATTEMPTS} attempts; the raw message is kept"],
    )
    never_started = pending.filter(parse_attempts=0, fetched_at__lt=old)
    lost = list(never_started.order_by("id").values_list("id", flat=True)[:limit])
    enqueue.parse_messages(lost)
    # A task that died may have held one bad message among good ones: retry them one by one.
    retried = list(
        died.filter(parse_attempts__lt=MAX_PARSE_ATTEMPTS).order_by("id").values_list("id", flat=True)[:limit]
    )
    for message_id in retried:
        enqueue.parse_messages([message_id])
    return len(lost) + len(retried)


def fingerprint(header_block: bytes) -> str:
    """The id of a message on a POP3 server without UIDL: a hash of its header block.

    Headers do not change while a message sits on the server, and Received, Message-ID and
    Date lines make two different messages' blocks differ in practice.
    """
    lines = [line.rstrip() for line in _header_block(header_block).splitlines()]
    return "fp:" + hashlib.sha256(b"\n".join(lines)).hexdigest()


def _flag_fields(flags: Sequence[str]) -> dict[str, bool]:
    lowered = {flag.lower() for flag in flags}
    return {
        "seen": "\\seen" in lowered,
        "flagged": "\\flagged" in lowered,
        "answered": "\\answered" in lowered,
    }


def store_imap_batch(
    *, mailbox: Mailbox, folder: Folder, uidvalidity: int, batch: dict[int, tuple[bytes, tuple[str, ...]]]
) -> list[int]:
    """Commit raw IMAP messages, their (folder, UIDVALIDITY, UID) rows and the folder's high-water mark."""
    uids = sorted(batch)
    with transaction.atomic():
        ids = _copy_messages(
            mailbox, folder, [batch[uid][0] for uid in uids], [_flag_fields(batch[uid][1]) for uid in uids]
        )
        _copy_rows(
            "fetcher_imapmessage",
            ("folder_id", "uidvalidity", "uid", "message_id"),
            ((folder.pk, uidvalidity, uid, message_pk) for uid, message_pk in zip(uids, ids, strict=True)),
        )
        if uids:
            Folder.objects.filter(pk=folder.pk, highest_uid__lt=uids[-1]).update(highest_uid=uids[-1])
    transaction.on_commit(lambda: enqueue.parse_messages(ids))
    return ids


def apply_imap_flags(*, folder: Folder, flags: dict[int, tuple[str, ...]]) -> int:
    """The server's flags win, except over a local change not pushed yet; returns how many changed."""
    rows = ImapMessage.objects.filter(
        folder=folder, uidvalidity=int(folder.uidvalidity or 0), uid__in=list(flags)
    )
    changed = []
    for row in rows.select_related("message").only(
        "uid",
        "message__id",
        "message__seen",
        "message__flagged",
        "message__answered",
        "message__pending_flags",
    ):
        pending = row.message.pending_flags or {}
        wanted = {name: value for name, value in _flag_fields(flags[row.uid]).items() if name not in pending}
        if any(getattr(row.message, name) != value for name, value in wanted.items()):
            for name, value in wanted.items():
                setattr(row.message, name, value)
            changed.append(row.message)
    Message.objects.bulk_update(changed, ["seen", "flagged", "answered"])
    return len(changed)


def remove_expunged(*, folder: Folder, server_uids: set[int]) -> set[int]:
    """Messages expunged on the server disappear here too; returns the UIDs still known here.

    Only rows from earlier fetches are compared, and each of those was on the server then.
    """
    rows = ImapMessage.objects.filter(folder=folder, uidvalidity=int(folder.uidvalidity or 0))
    known = dict(rows.values_list("uid", "message_id"))
    gone = [message_id for uid, message_id in known.items() if uid not in server_uids]
    if gone:
        Message.objects.filter(id__in=gone).delete()
    return {uid for uid in known if uid in server_uids}
