"""Stage two leaves no message behind: lost parse tasks are queued again, a hopeless one is marked."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fetcher import enqueue, folders
from fetcher.ingest import parsing, storing
from fetcher.models import Message
from tests.factories import account_mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    calls: list[list[int]] = []

    def capture(ids: Sequence[int]) -> None:
        if ids:
            calls.append(list(ids))

    monkeypatch.setattr(enqueue, "parse_messages", capture)
    return calls


def stored(count: int) -> list[int]:
    mailbox = account_mailbox(("leftovers", "unused"), 995)
    raws = [f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode() for n in range(count)]
    batch = [storing.Fetched(str(n), raw) for n, raw in enumerate(raws)]
    return storing.store_pop3_batch(mailbox=mailbox, folder=folders.inbox_of(mailbox), batch=batch)


def test_a_parse_task_counts_its_attempt(queued: list[list[int]]) -> None:
    ids = stored(2)

    parsing.parse_messages(ids)

    assert list(Message.objects.filter(id__in=ids).values_list("parse_attempts", "parse_state")) == [
        (1, "parsed"),
        (1, "parsed"),
    ]


def test_lost_tasks_are_queued_again_and_a_hopeless_message_is_marked_failed(queued: list[list[int]]) -> None:
    lost_a, lost_b, tried_once, tried_often, recent = stored(5)
    Message.objects.exclude(id=recent).update(fetched_at=timezone.now() - timedelta(hours=1))
    Message.objects.filter(id=tried_once).update(parse_attempts=1)
    Message.objects.filter(id=tried_often).update(parse_attempts=parsing.MAX_PARSE_ATTEMPTS)
    queued.clear()

    assert parsing.requeue_unparsed() == 3

    assert queued == [[lost_a, lost_b], [tried_once]]  # a retry goes alone: it may be the bad one
    hopeless = Message.objects.get(id=tried_often)
    assert hopeless.parse_state == "failed"
    assert "raw message is kept" in hopeless.parse_problems[0]
    assert Message.objects.get(id=recent).parse_state == "pending"  # its task may still be on the way


def test_parsing_costs_the_same_queries_for_few_or_many_messages(queued: list[list[int]]) -> None:
    ids = stored(43)
    with CaptureQueriesContext(connection) as few:
        parsing.parse_messages(ids[:3])
    with CaptureQueriesContext(connection) as many:
        parsing.parse_messages(ids[3:])
    assert len(many.captured_queries) == len(few.captured_queries)  # no query per message


@pytest.mark.django_db(transaction=True)
def test_renewing_a_parse_lease_never_waits_for_the_rows_being_written(queued: list[list[int]]) -> None:
    """The lease keeper's thread and the parse writer's thread update the same messages on two
    connections; a renewal that waited for the writer's locked rows made a deadlock with it (seen
    at 1,000,000 messages: PostgreSQL then aborts one of them, perhaps the write)."""
    first, writing, last = stored(3)
    before = timezone.now() - timedelta(minutes=5)
    Message.objects.update(parse_lease_until=before)
    renewed = threading.Event()

    def renew() -> None:
        try:
            parsing._parsing([first, writing, last])
            renewed.set()
        finally:
            connections.close_all()  # this thread's connection

    with transaction.atomic():  # the writer: its row stays locked until it commits
        Message.objects.filter(id=writing).update(snippet="being written")
        renewer = threading.Thread(target=renew)
        renewer.start()
        finished = renewed.wait(timeout=5)
    renewer.join(timeout=10)

    assert finished, "the renewal waited for the row the writer holds"
    leases = dict(Message.objects.values_list("id", "parse_lease_until"))
    for free in (leases[first], leases[last]):
        assert free is not None
        assert free > before
    assert leases[writing] == before  # being written (and parsed) now: nothing to renew
