"""A sync that stops on an error no step expected is recorded as a failure of its own, with backoff.

The error comes from a real (scripted) server that answers STAT with words instead of numbers,
which poplib turns into a ValueError: the kind of surprise a bug or a broken server brings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Mailbox
from fetcher import sync
from fetcher.models import MailboxState
from tests.conftest import WorkerProcess
from tests.factories import account_mailbox, raw_message
from tests.servers.fake_pop3 import NoUidlPop3


@dataclass
class GarbledStatPop3(NoUidlPop3):
    def _reply(self, command: str, args: list[str], pending: set[int]) -> bytes:
        return b"+OK plenty of mail\r\n" if command == "STAT" else super()._reply(command, args, pending)


@pytest.fixture
def garbled() -> Iterator[GarbledStatPop3]:
    server = GarbledStatPop3([raw_message(0)])
    server.start()
    yield server
    server.stop()


def mailbox_on(server: NoUidlPop3) -> Mailbox:
    return account_mailbox(("alice", server.password), server.port, security="none")


@pytest.mark.django_db
def test_an_unexpected_error_is_recorded_with_backoff_and_the_claim_released(
    garbled: GarbledStatPop3, local_mail_settings: None
) -> None:
    mailbox = mailbox_on(garbled)

    result = sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=30)

    assert result.status == "failed"
    mailbox.refresh_from_db()
    assert mailbox.sync.state == MailboxState.ERROR
    assert mailbox.sync.last_error_kind == "internal"
    assert "unexpected error (ValueError)" in mailbox.sync.last_error_message
    assert mailbox.sync.consecutive_failures == 1
    assert mailbox.sync.sync_lease_until is None
    assert mailbox.sync.next_sync_at is not None
    assert mailbox.sync.next_sync_at > timezone.now()


@pytest.mark.django_db(transaction=True)
@pytest.mark.mailservers
def test_sync_wait_reports_an_unexpected_failure_instead_of_waiting_out_its_timeout(
    garbled: GarbledStatPop3, celery_worker: WorkerProcess
) -> None:
    mailbox = mailbox_on(garbled)

    with pytest.raises(CommandError, match=r"sync failed at internal: .*ValueError"):
        call_command("mailbox", "sync", str(mailbox.id), "--wait", "--timeout", "60")
