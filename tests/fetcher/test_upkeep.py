"""Planner statistics refreshed after bulk changes, by Postane itself (autovacuum may be off)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Mailbox
from fetcher import upkeep
from fetcher.models import Folder
from tests import plans
from tests.conftest import wait_for
from tests.factories import account_mailbox, deliver, run_sync
from tests.servers.dovecot import Dovecot


def _now() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        moment: datetime = cursor.fetchone()[0]
        return moment


def _last_analysed(table: str = "fetcher_message") -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # read the counters as they are now
        cursor.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", [table])
        moment: datetime | None = cursor.fetchone()[0]
        return moment


def _statistics_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'fetcher_message'")
        found: int = cursor.fetchone()[0]
        return found


@pytest.mark.django_db(transaction=True)
def test_the_message_table_is_analysed_once_enough_of_it_changed_and_not_before() -> None:
    box = account_mailbox(("stats", "unused"), 995)
    inbox = Folder.objects.create(mailbox=box, name="INBOX", role="inbox")
    upkeep.statistics_refresh(force=True)
    assert "fetcher_message" not in upkeep.stale_tables()
    assert "fetcher_message" not in upkeep.statistics_refresh()

    plans.bulk_messages(box, inbox, upkeep.CHANGED_ROWS + 500)  # committed: a large first sync
    wait_for(lambda: "fetcher_message" in upkeep.stale_tables(), "the inserts to reach the counters")
    plans.forget_statistics()
    assert _statistics_rows() == 0

    assert "fetcher_message" in upkeep.statistics_refresh()
    assert _statistics_rows() > 0
    assert "fetcher_message" not in upkeep.stale_tables()


@pytest.mark.django_db
@pytest.mark.mailservers
def test_a_large_first_sync_analyses_the_message_tables(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox], monkeypatch: Any
) -> None:
    monkeypatch.setattr(upkeep, "CHANGED_ROWS", 3)
    mailbox = make_mailbox()
    deliver(dovecot, account, 2)
    started = _now()
    run_sync(mailbox)
    analysed = _last_analysed()
    assert analysed is None or analysed < started  # two messages are not a bulk change

    deliver(dovecot, account, 4, start=2)
    run_sync(mailbox)
    analysed = _last_analysed()
    assert analysed is not None
    assert analysed >= started


@pytest.mark.django_db
def test_reindex_analyses_the_message_tables() -> None:
    started = _now()
    call_command("reindex")
    analysed = _last_analysed()
    assert analysed is not None
    assert analysed >= started
