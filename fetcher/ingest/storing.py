"""Stage one of ingest: secure the raw bytes, and only what the ledger and the message list need.

A batch of downloaded messages is committed with COPY, with the few fields a cheap scan of the
header block gives (Date, Message-ID); only after that commit may anything be deleted on the
server. A sync downloads in `batches` (so many messages, so many bytes) and each is committed by
a second thread while the next one downloads (`overlapped_writes`). Parsing comes later, in
`fetcher.ingest.parsing`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import psycopg
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from accounts.models import Mailbox
from fetcher import enqueue
from fetcher.mail import header_scan
from fetcher.models import Folder, Message, ParseState, Pop3Ledger

# Raw messages larger than this are stored and read one at a time, streamed (not in a batch held in
# memory). Not mime.PARSED_BY_BOUNDARIES: that is the size at which parsing changes its method.
STREAMED_BYTES = 1024 * 1024
BATCH_BYTES = 32 * 1024 * 1024  # a batch of large messages stops here (one message at least)


@dataclass(frozen=True)
class Fetched:
    """Raw bytes as a server gave them, with the id the server knows them by."""

    uid: str
    raw: bytes


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


def batches[T](items: list[T], size_of: Callable[[T], int], count: int) -> Iterator[list[T]]:
    """Consecutive batches of at most `count` items and BATCH_BYTES bytes (but one item at least)."""
    batch: list[T] = []
    total = 0
    for item in items:
        size = size_of(item)
        if batch and (len(batch) >= count or total + size > BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += size
    if batch:
        yield batch


def sort_date(date: datetime | None, *, now: datetime, otherwise: datetime) -> datetime:
    """Where a message sorts: by its Date header, unless it has none or it lies in the future (a
    wrong clock must not keep it at the top of every list); then by `otherwise`, the time it was
    fetched (for stage two, which reads the Date again: where stage one put it)."""
    return date if date is not None and date <= now else otherwise


class _Scanned(NamedTuple):
    """What stage one knows of a message before it is parsed."""

    date: datetime | None
    message_id: str
    sort_date: datetime
    sha256: str


def _scanned(raw: bytes, now: datetime) -> _Scanned:
    date, message_id = header_scan.quick_headers(raw)
    return _Scanned(
        date, message_id, sort_date(date, now=now, otherwise=now), hashlib.sha256(raw).hexdigest()
    )


def _new_message(mailbox: Mailbox, folder: Folder, raw: bytes, now: datetime) -> Message:
    scanned = _scanned(raw, now)
    return Message(
        mailbox=mailbox,
        folder=folder,
        raw=raw,
        size=len(raw),
        sha256=scanned.sha256,
        message_id=scanned.message_id,
        date=scanned.date,
        sort_date=scanned.sort_date,
    )


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
                scanned = _scanned(raw, now)
                streamed = len(raw) > STREAMED_BYTES
                if streamed:
                    large.append((raw, message_pk))
                copy.write_row((
                    message_pk, uuid.uuid4(), mailbox.pk, folder.pk, b"" if streamed else raw,
                    len(raw), scanned.sha256, now,
                    ParseState.PENDING, _EMPTY_JSON, scanned.message_id, "", "", "", _EMPTY_JSON, _EMPTY_JSON,
                    _EMPTY_JSON, scanned.date, scanned.sort_date, "", _EMPTY_JSON, "", "", "", False,
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
    except (IntegrityError, psycopg.errors.IntegrityError):  # COPY runs on psycopg's cursor, unwrapped
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


# The message fields that mirror an IMAP system flag, both ways (fetcher.sync.imap pushes them).
IMAP_FLAGS = {"seen": "\\Seen", "flagged": "\\Flagged", "answered": "\\Answered"}


def flag_fields(flags: Sequence[str]) -> dict[str, bool]:
    """The message fields an IMAP server's flags set (new messages here; the sync's flag refresh too)."""
    lowered = {flag.lower() for flag in flags}
    return {field: flag.lower() in lowered for field, flag in IMAP_FLAGS.items()}


def store_imap_batch(
    *, mailbox: Mailbox, folder: Folder, uidvalidity: int, batch: dict[int, tuple[bytes, tuple[str, ...]]]
) -> list[int]:
    """Commit raw IMAP messages, their (folder, UIDVALIDITY, UID) rows and the folder's high-water mark."""
    uids = sorted(batch)
    with transaction.atomic():
        ids = _copy_messages(
            mailbox, folder, [batch[uid][0] for uid in uids], [flag_fields(batch[uid][1]) for uid in uids]
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
