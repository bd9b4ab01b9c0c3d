"""Where a message sorts: by its Date header, unless it has none or it lies in the future; then by
when it was fetched. Stage one decides it from a quick scan of the header block, stage two again
from the parsed Date: one rule for both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts.models import Mailbox
from fetcher.ingest import storing
from tests.factories import account_mailbox, mail, stored

pytestmark = pytest.mark.django_db

PAST = "Mon, 02 Mar 2020 09:30:00 +0000"
FUTURE = "Fri, 01 Jan 2100 08:00:00 +0000"


@pytest.fixture
def mailbox() -> Mailbox:
    return account_mailbox(("sorted", "unused"), 995)


def test_a_message_sorts_by_its_date_header(mailbox: Mailbox) -> None:
    [message] = stored(mailbox, mail(date=PAST))

    assert message.sort_date == datetime(2020, 3, 2, 9, 30, tzinfo=UTC)


def test_a_message_dated_in_the_future_sorts_by_when_it_was_fetched(mailbox: Mailbox) -> None:
    [message] = stored(mailbox, mail(date=FUTURE))

    assert message.date == datetime(2100, 1, 1, 8, 0, tzinfo=UTC)  # shown as sent
    assert message.sort_date == message.fetched_at


def test_a_message_without_a_date_sorts_by_when_it_was_fetched(mailbox: Mailbox) -> None:
    [message] = stored(mailbox, b"From: ayse@example.com\r\nSubject: Tarihsiz\r\n\r\nGovde\r\n")

    assert message.date is None
    assert message.sort_date == message.fetched_at


def test_a_date_up_to_now_counts_and_a_later_or_missing_one_gives_way() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    fetched = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    earlier = datetime(2026, 11, 30, tzinfo=UTC)

    assert storing.sort_date(earlier, now=now, otherwise=fetched) == earlier
    assert storing.sort_date(now, now=now, otherwise=fetched) == now  # not in the future yet
    assert storing.sort_date(datetime(2026, 12, 2, tzinfo=UTC), now=now, otherwise=fetched) == fetched
    assert storing.sort_date(None, now=now, otherwise=fetched) == fetched
