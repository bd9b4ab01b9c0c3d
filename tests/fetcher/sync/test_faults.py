"""Faults during a sync, against a real Dovecot: dropped and stalled connections, a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models import Count

from accounts.models import Mailbox
from fetcher import enqueue, sync
from fetcher.models import MailboxState, Message, Pop3Ledger
from tests.conftest import BASE_DIR, wait_for
from tests.factories import account_mailbox, raw_message
from tests.servers.dovecot import Dovecot
from tests.servers.proxy import FaultyProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailservers]


@pytest.fixture(autouse=True)
def _stage_one_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about securing raw bytes; queued parse tasks would outlive the test and race
    with its database teardown."""
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)


@pytest.fixture
def policy_settings(local_mail_settings: None, settings: Any) -> None:
    settings.WEBMAIL_MAIL_TIMEOUT = 2  # the stalled server must time out quickly


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[FaultyProxy]:
    faulty = FaultyProxy(target_port=dovecot.ports["pop3"]).start()
    yield faulty
    faulty.stop()


def mailbox_for(dovecot: Dovecot, count: int, port: int, security: str = "none", **fields: Any) -> Mailbox:
    user, password = dovecot.fresh_user()
    for number in range(count):
        dovecot.deliver(user, raw_message(number, body_size=2000), f"m{number}")
    return account_mailbox((user, password), port, security=security, **fields)


def assert_each_server_message_once(mailbox: Mailbox, expected: int) -> None:
    assert Message.objects.filter(mailbox=mailbox).count() == expected
    duplicates = (
        Message.objects.filter(mailbox=mailbox).values("sha256").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    assert Pop3Ledger.objects.filter(mailbox=mailbox).count() == expected


def test_a_connection_dropped_in_the_middle_of_retr_is_retried_without_duplicates(
    dovecot: Dovecot, proxy: FaultyProxy, policy_settings: None
) -> None:
    mailbox = mailbox_for(dovecot, 250, proxy.port)
    proxy.cut_after = 450_000  # messages of about 2.3 KB: past the first batch of 200, inside the second

    failed = sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60)

    assert failed.status == "failed"
    mailbox.refresh_from_db()
    assert mailbox.sync.state == MailboxState.ERROR
    assert mailbox.sync.last_error_kind == "protocol"
    half = Message.objects.filter(mailbox=mailbox).count()
    assert half == Pop3Ledger.objects.filter(mailbox=mailbox).count()  # nothing half-written
    assert half in {0, 200}
    proxy.cut_after = None

    assert sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60).status == "done"
    assert_each_server_message_once(mailbox, 250)


def test_a_server_that_stops_answering_times_out_and_is_retried(
    dovecot: Dovecot, proxy: FaultyProxy, policy_settings: None
) -> None:
    mailbox = mailbox_for(dovecot, 20, proxy.port)
    proxy.stall_after = 3_000

    started = time.monotonic()
    assert sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60).status == "failed"

    assert time.monotonic() - started < 15
    mailbox.refresh_from_db()
    assert "stopped answering" in mailbox.sync.last_error_message
    proxy.stop()
    direct = Mailbox.objects.get(id=mailbox.id)
    direct.incoming_port = dovecot.ports["pop3"]
    direct.save()
    assert sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60).status == "done"
    assert_each_server_message_once(mailbox, 20)


def test_a_sync_killed_with_sigkill_is_completed_by_the_next_one_and_nothing_is_lost(
    dovecot: Dovecot, policy_settings: None, worker_environment: dict[str, str], settings: Any
) -> None:
    mailbox = mailbox_for(dovecot, 3000, dovecot.ports["pop3"], pop3_retention="delete")
    user = mailbox.incoming_login
    code = (
        f"from fetcher.sync import sync_mailbox; sync_mailbox(mailbox_id='{mailbox.id}', budget_seconds=600)"
    )
    env = {**worker_environment, "WEBMAIL_SYNC_LEASE_SECONDS": "5"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: Message.objects.filter(mailbox=mailbox).count() >= 200, "the first batch", 60)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    stored = Message.objects.filter(mailbox=mailbox).count()
    assert 200 <= stored < 3000, "the sync was to be killed in the middle"
    assert dovecot.messages_on_server(user) == 3000  # nothing deleted before everything was committed
    assert (
        sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60).status == "busy"
    )  # the dead claim holds
    time.sleep(5)

    settings.WEBMAIL_SYNC_LEASE_SECONDS = 60
    assert sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=120).status == "done"

    assert_each_server_message_once(mailbox, 3000)
    assert dovecot.messages_on_server(user) == 0  # deleted, now that every message is committed


def test_an_imap_connection_dropped_in_the_middle_of_fetch_is_retried_without_duplicates(
    dovecot: Dovecot, policy_settings: None
) -> None:
    proxy = FaultyProxy(target_port=dovecot.ports["imap"]).start()
    try:
        mailbox = mailbox_for(dovecot, 700, proxy.port, protocol="imap")
        proxy.cut_after = 1_500_000  # past the first FETCH of 500 messages, inside the second

        assert sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60).status == "failed"
        assert Message.objects.filter(mailbox=mailbox).count() in {0, 500}
        proxy.cut_after = None

        assert sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60).status == "done"
    finally:
        proxy.stop()
    assert Message.objects.filter(mailbox=mailbox).count() == 700
    assert not Message.objects.values("sha256").annotate(n=Count("id")).filter(n__gt=1).exists()
