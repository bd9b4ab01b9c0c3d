"""Real Celery workers and the beat dispatcher syncing real mailboxes, several at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db.models import Count

from accounts.models import Mailbox
from fetcher import enqueue
from fetcher.models import MailboxSync, Message, ParseState, Pop3Ledger, WorkerHeartbeat
from fetcher.services import syncs_dispatch
from tests.conftest import RestartableRedis, WorkerProcess, start_beat, start_worker, stop_worker, wait_for
from tests.factories import account_mailbox, raw_message
from tests.servers.dovecot import Dovecot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailservers, pytest.mark.slow]


def mailbox_with_mail(dovecot: Dovecot, count: int) -> Mailbox:
    user, password = dovecot.fresh_user()
    for number in range(count):
        dovecot.deliver(user, raw_message(number, subject="Günaydın İstanbul"), f"m{number}")
    return account_mailbox((user, password), dovecot.ports["pop3s"])


def all_parsed(mailboxes: list[Mailbox], per_mailbox: int) -> bool:
    stored = Message.objects.filter(mailbox__in=mailboxes, parse_state=ParseState.PARSED).count()
    return stored == per_mailbox * len(mailboxes)


def test_the_dispatcher_queues_due_mailboxes_and_a_worker_syncs_and_parses_them(
    celery_worker: WorkerProcess, dovecot: Dovecot
) -> None:
    mailbox = mailbox_with_mail(dovecot, 5)

    assert syncs_dispatch() == 1
    assert syncs_dispatch() == 0  # already queued: its next run moved forward

    wait_for(lambda: all_parsed([mailbox], 5), "the worker to sync and parse", 60)
    subjects = set(Message.objects.filter(mailbox=mailbox).values_list("subject", flat=True))
    assert subjects == {f"Günaydın İstanbul {number}" for number in range(5)}
    mailbox.refresh_from_db()
    assert mailbox.sync.last_success_at is not None
    assert mailbox.sync.sync_lease_until is None


@pytest.fixture
def more_workers(worker_environment: dict[str, str]) -> Iterator[list[WorkerProcess]]:
    workers = [start_worker(worker_environment, "--pool", "prefork", "--concurrency", "2") for _ in range(2)]
    yield workers
    for worker in workers:
        stop_worker(worker)


def test_several_workers_on_many_mailboxes_store_each_message_exactly_once(
    celery_worker: WorkerProcess, more_workers: list[WorkerProcess], dovecot: Dovecot
) -> None:
    mailboxes = [mailbox_with_mail(dovecot, 60) for _ in range(8)]

    for _ in range(3):  # the same sync queued three times for every mailbox, racing
        for mailbox in mailboxes:
            enqueue.sync_mailbox(mailbox.id)
    syncs_dispatch()

    wait_for(lambda: all_parsed(mailboxes, 60), "every message to be stored and parsed", 120)
    wait_for(
        lambda: not MailboxSync.objects.filter(sync_lease_until__isnull=False).exists(),
        "every claim released",
        60,
    )
    for mailbox in mailboxes:
        assert Message.objects.filter(mailbox=mailbox).count() == 60
        assert Pop3Ledger.objects.filter(mailbox=mailbox).count() == 60
    duplicates = Message.objects.values("mailbox", "sha256").annotate(n=Count("id")).filter(n__gt=1)
    assert not duplicates.exists()


def test_workers_and_beat_reconnect_after_redis_restarts(
    worker_environment: dict[str, str], restartable_redis: RestartableRedis
) -> None:
    env = {**worker_environment, "REDIS_URL": restartable_redis.url, "WEBMAIL_HEARTBEAT_SECONDS": "1"}
    worker = start_worker(env, ping=False)
    beat = start_beat(env, restartable_redis.dir / "beat")
    beats = WorkerHeartbeat.objects.filter(hostname=worker.hostname)
    try:
        wait_for(beats.exists, "a first heartbeat", 60)
        restartable_redis.restart()
        beats.delete()

        wait_for(beats.exists, "a heartbeat after the restart", 90)
    finally:
        beat.terminate()
        beat.wait(timeout=30)
        stop_worker(worker)
