"""Stage two of ingest: derive everything else from the raw bytes stage one stored.

Parallel Celery tasks derive subject, addresses, bodies, attachments, the search vector and
the conversation of each message; `reindex` runs it again over everything. Safe to run twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from accounts.models import User
from fetcher import conversations, enqueue, leases
from fetcher.ingest import storing
from fetcher.mail import mime, search, threads
from fetcher.models import Attachment, Message, ParseState


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
    message.sort_date = storing.sort_date(parsed.date, now=timezone.now(), otherwise=message.sort_date)


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
    small = [message.pk for message in messages if message.size <= storing.STREAMED_BYTES]
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
