"""A worker killed with SIGKILL at several points: its claim lapses and another worker finishes the job.

Real worker and beat processes on a broker of their own, real Dovecot and SMTP servers. The first
test uses the shipped lease and dispatch intervals and holds them to the one-minute target; the
others shorten both, so each kill point costs seconds, not a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from celery import Celery
from django.db.models import Count
from django.utils import timezone

from accounts import crypto
from accounts.models import CONNECTION_FIELDS, ConnectionTest, ConnectionTestStatus, Mailbox
from accounts.services import connection_settings
from fetcher import enqueue, outbox
from fetcher.models import MailboxSync, Message, OutgoingMessage, OutgoingState, ParseState
from tests.conftest import MAIL_USERS, WorkerProcess, start_beat, start_worker, stop_worker, wait_for
from tests.factories import account_mailbox, raw_message
from tests.servers.dovecot import Dovecot
from tests.servers.proxy import FaultyProxy
from tests.servers.smtp import SmtpServer, start_smtp

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailservers, pytest.mark.slow]

FAST = {"WEBMAIL_SYNC_LEASE_SECONDS": "4", "WEBMAIL_DISPATCH_SECONDS": "2"}


@dataclass
class Stack:
    """Workers and a beat on a private broker; `kill` is SIGKILL, as the OOM killer or a power cut does."""

    env: dict[str, str]
    folder: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    beat: subprocess.Popen[bytes] | None = None

    def worker(self) -> WorkerProcess:
        self.workers.append(start_worker(self.env, ping=False))
        return self.workers[-1]

    def start_beat(self) -> None:
        self.beat = start_beat(self.env, self.folder / "schedule")

    def send(self, task: str, *args: str) -> None:
        # Not the current app: the test process's own tasks keep going to the test broker.
        client = Celery(broker=self.env["REDIS_URL"], set_as_current=False)
        try:
            client.send_task(task, args=list(args))
        finally:
            client.close()

    @staticmethod
    def kill(worker: WorkerProcess) -> None:
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait()

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                stop_worker(worker)
        if self.beat is not None:
            self.beat.terminate()
            self.beat.wait(timeout=30)


@pytest.fixture
def stack(
    worker_environment: dict[str, str], redis_server: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    overrides: dict[str, str] = getattr(request, "param", FAST)
    env = worker_environment | {"REDIS_URL": redis_server} | overrides
    running = Stack(env, tmp_path)
    yield running
    running.stop()


def pop3_mailbox(dovecot: Dovecot, count: int, port: int, body_size: int = 0) -> Mailbox:
    user, password = dovecot.fresh_user()
    for number in range(count):
        dovecot.deliver(user, raw_message(number, body_size=body_size), f"m{number}")
    return account_mailbox((user, password), port, security="none")


def each_message_once(mailbox: Mailbox, expected: int) -> bool:
    stored = Message.objects.filter(mailbox=mailbox)
    repeated = stored.values("sha256").annotate(n=Count("id")).filter(n__gt=1)
    return stored.count() == expected and not repeated.exists()


def synced(mailbox: Mailbox, expected: int) -> Callable[[], bool]:
    def check() -> bool:
        current = MailboxSync.objects.get(pk=mailbox.pk)
        return (
            current.sync_lease_until is None
            and current.last_success_at is not None
            and (Message.objects.filter(mailbox=mailbox).count() == expected)
        )

    return check


@pytest.mark.parametrize("stack", [{}], indirect=True)  # the shipped lease and dispatch intervals
def test_a_sync_killed_mid_download_is_taken_over_within_a_minute(stack: Stack, dovecot: Dovecot) -> None:
    assert not {"WEBMAIL_SYNC_LEASE_SECONDS", "WEBMAIL_DISPATCH_SECONDS"} & set(stack.env)
    mailbox = pop3_mailbox(dovecot, 3000, dovecot.ports["pop3"], body_size=2000)
    first = stack.worker()
    stack.start_beat()
    stack.send("fetcher.tasks.sync_mailbox", str(mailbox.id))
    wait_for(lambda: Message.objects.filter(mailbox=mailbox).count() >= 200, "the first batch", 60)

    stack.kill(first)
    killed_at = time.monotonic()
    assert Message.objects.filter(mailbox=mailbox).count() < 3000, "the sync was to be killed in the middle"
    stack.worker()  # a worker is available again at once

    wait_for(synced(mailbox, 3000), "another worker to finish the sync", 120)
    assert time.monotonic() - killed_at <= 60
    assert each_message_once(mailbox, 3000)


def test_a_live_sync_keeps_its_claim_through_one_long_download_and_a_killed_one_is_taken_over(
    stack: Stack, dovecot: Dovecot
) -> None:
    slow = FaultyProxy(target_port=dovecot.ports["pop3"], bytes_per_second=300_000).start()
    try:
        mailbox = pop3_mailbox(dovecot, 1, slow.port, body_size=3_000_000)  # ten seconds on this line
        first = stack.worker()
        stack.start_beat()
        stack.send("fetcher.tasks.sync_mailbox", str(mailbox.id))
        wait_for(lambda: MailboxSync.objects.get(pk=mailbox.pk).sync_lease_until is not None, "the claim", 30)
        claim = MailboxSync.objects.get(pk=mailbox.pk).sync_lease_token

        time.sleep(6)  # longer than the 4 s lease: only renewals keep it
        assert MailboxSync.objects.get(pk=mailbox.pk).sync_lease_token == claim
        assert not Message.objects.filter(mailbox=mailbox).exists(), "still inside the one download"

        stack.kill(first)
        slow.bytes_per_second = None
        stack.worker()
        wait_for(synced(mailbox, 1), "another worker to take over the sync", 30)
    finally:
        slow.stop()
    assert MailboxSync.objects.get(pk=mailbox.pk).sync_lease_token != claim
    assert each_message_once(mailbox, 1)


def test_a_parse_task_killed_midway_is_parsed_again_by_the_next_worker(
    stack: Stack, dovecot: Dovecot
) -> None:
    mailbox = pop3_mailbox(dovecot, 400, dovecot.ports["pop3"], body_size=200_000)
    first = stack.worker()
    stack.start_beat()
    stack.send("fetcher.tasks.sync_mailbox", str(mailbox.id))
    started = Message.objects.filter(mailbox=mailbox, parse_state=ParseState.PENDING, parse_attempts__gt=0)
    wait_for(started.exists, "a parse task to start", 60)

    stack.kill(first)
    assert Message.objects.filter(mailbox=mailbox, parse_state=ParseState.PENDING).exists()
    stack.worker()

    wait_for(
        lambda: Message.objects.filter(mailbox=mailbox, parse_state=ParseState.PARSED).count() == 400,
        "every message parsed",
        60,
    )


@pytest.fixture
def slow_smtp(mail_ca: trustme.CA) -> Iterator[tuple[SmtpServer, FaultyProxy]]:
    server = start_smtp(mail_ca, MAIL_USERS, "plain")
    proxy = FaultyProxy(target_port=server.port, bytes_per_second=500_000).start()
    yield server, proxy
    proxy.stop()
    server.stop()


def test_a_delivery_killed_mid_data_is_taken_over_and_arrives_once(
    stack: Stack, slow_smtp: tuple[SmtpServer, FaultyProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, proxy = slow_smtp
    # Only the private beat hands it over: neither the send nor the server draft is queued here.
    monkeypatch.setattr(enqueue, "send_outgoing", lambda *args: None)
    monkeypatch.setattr(enqueue, "draft_to_server", lambda *args: None)
    mailbox = account_mailbox(
        ("alice", MAIL_USERS["alice"]), 995, smtp_port=proxy.port, smtp_security="none", protocol="pop3"
    )
    # 11 MB at 500 KB/s: more than the kernel's socket buffers hold, so a kill at 6 s is mid-DATA.
    values = {"to": "bob@example.net", "subject": "Büyük", "text": "abcdefghij\n" * 1_000_000}
    draft = outbox.outgoing_save(owner=mailbox.owner, mailbox=mailbox, values=values)
    outbox.outgoing_queue(outgoing=draft, send_at=timezone.now())
    first = stack.worker()
    stack.start_beat()
    wait_for(
        lambda: OutgoingMessage.objects.filter(pk=draft.pk, state=OutgoingState.SENDING).exists(),
        "sending",
        30,
    )
    time.sleep(6)  # past the 4 s lease, still in DATA: renewals keep it
    assert OutgoingMessage.objects.get(pk=draft.pk).attempts == 1

    stack.kill(first)
    proxy.bytes_per_second = None
    stack.worker()
    sent = OutgoingMessage.objects.filter(pk=draft.pk, state=OutgoingState.SENT)
    wait_for(sent.exists, "another worker to send it", 30)
    assert [message.mail_from for message in server.handler.received] == ["alice@example.com"]  # once


def test_a_connection_test_whose_worker_died_is_run_again(stack: Stack, dovecot: Dovecot) -> None:
    silent = FaultyProxy(target_port=dovecot.ports["pop3"], stall_after=0).start()
    try:
        mailbox = account_mailbox(("alice", MAIL_USERS["alice"]), silent.port, security="none")
        test = ConnectionTest.objects.create(
            owner=mailbox.owner,
            settings=connection_settings({name: getattr(mailbox, name) for name in CONNECTION_FIELDS}),
            incoming_password_encrypted=crypto.encrypt(MAIL_USERS["alice"]),
        )
        first = stack.worker()
        stack.start_beat()
        stack.send("fetcher.tasks.run_connection_test", str(test.id))
        running = ConnectionTest.objects.filter(pk=test.pk, status=ConnectionTestStatus.RUNNING)
        wait_for(running.exists, "the test to run", 30)

        stack.kill(first)
        silent.stall_after = None
        stack.worker()
        done = ConnectionTest.objects.filter(pk=test.pk, status=ConnectionTestStatus.DONE)
        wait_for(done.exists, "another worker to run the test", 30)
    finally:
        silent.stop()
    assert ConnectionTest.objects.get(pk=test.pk).incoming_report["ok"] is True  # type: ignore[index]
