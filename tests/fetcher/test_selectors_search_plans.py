"""Every search operator reads about a page of messages (or its matches), whatever the size of the
mailboxes and the statistics.

The searching person has 20,300 messages in one mailbox and 5,000 in a second; someone else has
10,000 that match the same words. Each search page runs through the test client with the planner's
statistics missing (a large first sync with autovacuum off), taken while every state was the
opposite of now (read for unread, starred for not), while every message held the words searched
for, or before the sync, when the searching person's mailboxes were empty. A statement that scans
the message table sequentially, or reads more of it than a few pages, fails the test with its plan.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils.http import urlencode

from accounts.models import User
from fetcher.models import Folder, FolderRole, Message
from fetcher.selectors import Cursor
from tests import plans
from tests.factories import account_mailbox

pytestmark = pytest.mark.django_db
SIZE = 20_000
# A page (51 rows) from each mailbox or folder walked, the matches of a search by words (at most
# selectors.SORTED_MATCHES + 1), the conversations' sizes: far below the mailboxes.
BUDGET = 1_500
RARE = 500  # one message in RARE is unread, starred or has an attachment in the large mailbox


@pytest.fixture
def reader() -> tuple[Client, Folder]:
    user = User.objects.create_user("reader", password="pw")
    box = account_mailbox(("reader", "unused"), 993, owner=user, protocol="imap", name="reader")
    inbox = Folder.objects.create(mailbox=box, name="INBOX", role=FolderRole.INBOX)
    work = Folder.objects.create(mailbox=box, name="İş")
    rare = partial(plans.bulk_messages, unread_every=RARE, attachment_every=RARE, flagged_every=RARE)
    rare(box, inbox, SIZE, subject="Rapor {n}")
    rare(box, work, 300, to=("Ekip", "ekip@example.com"))
    second = account_mailbox(("reader2", "unused"), 995, owner=user, name="second")
    plans.bulk_messages(
        second,
        Folder.objects.create(mailbox=second, name="INBOX", role=FolderRole.INBOX),
        5000,
        subject="Fatura {n}",
    )
    other = account_mailbox(("other", "unused"), 995, name="other")
    plans.bulk_messages(
        other, Folder.objects.create(mailbox=other, name="INBOX", role=FolderRole.INBOX), SIZE // 2
    )
    client = Client()
    client.force_login(user)
    return client, inbox


def _inverted_states() -> None:
    """Statistics taken while every message's read, starred and attachment state was the opposite."""
    flip = (
        "UPDATE fetcher_message SET seen = NOT seen, flagged = NOT flagged,"
        " has_attachments = NOT has_attachments"
    )
    with connection.cursor() as cursor:
        cursor.execute(flip)
        plans.analyse()
        cursor.execute(flip)


SEARCHED = ["bulten", "kisi", "rapor", "~s:bulten", "~f:kisi123", "~t:ekip", "~t:alice"]


def _words_everywhere() -> None:
    """Statistics taken while every message held every word searched for, in every field."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE unskewed ON COMMIT DROP AS SELECT id, search_vector FROM fetcher_message"
        )
        cursor.execute(
            "UPDATE fetcher_message SET search_vector = search_vector || array_to_tsvector(%s)", [SEARCHED]
        )
        plans.analyse()
        cursor.execute(
            "UPDATE fetcher_message SET search_vector = unskewed.search_vector FROM unskewed"
            " WHERE fetcher_message.id = unskewed.id"
        )


def _before_the_sync() -> None:
    """Statistics taken before the large first sync: the searching person's mailboxes held nothing."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE synced ON COMMIT DROP AS SELECT id, mailbox_id FROM fetcher_message"
        )
        cursor.execute(
            "UPDATE fetcher_message SET mailbox_id = (SELECT id FROM accounts_mailbox WHERE name = 'other')"
        )
        plans.analyse()
        cursor.execute(
            "UPDATE fetcher_message SET mailbox_id = synced.mailbox_id FROM synced"
            " WHERE fetcher_message.id = synced.id"
        )


STATES: dict[str, Callable[[], None]] = {
    "without statistics": plans.forget_statistics,
    "states inverted": _inverted_states,
    "words everywhere": _words_everywhere,
    "analysed before the sync": _before_the_sync,
}
SEARCHES = [
    "subject:bülten",
    "subject:BÜLT",
    "from:kişi123",
    "to:ekip",
    "bülten",
    "bülten is:unread",
    "subject:bülten from:kisi12 has:attachment",
    # In more messages than a search sorts: walked by date, checking the words on each row.
    "to:alice",
    "kişi",
    "rapor is:starred",
    "to:alice in:inbox is:unread",
    "to:alice in:iş",
    "is:unread",
    "is:read",
    "is:starred",
    "has:attachment",
    "in:inbox",
    "in:iş",
    "in:inbox is:unread",
    "before:2024-03-01",
    "after:2024-03-01",
    "is:starred before:2024-06-01",
    "is:unreadable",
]


@pytest.mark.parametrize("state", STATES)
def test_every_search_reads_about_a_page_of_messages(reader: Any, state: str) -> None:
    client, inbox = reader
    middle = Message.objects.filter(folder=inbox).order_by("-sort_date", "-id")[SIZE // 2]
    halfway = Cursor(middle.sort_date, middle.pk).encode()
    STATES[state]()
    for query in SEARCHES:
        for after in ("", halfway):
            url = "/mail/search/?" + urlencode({"q": query} | ({"after": after} if after else {}))
            statements = plans.analysed_statements(partial(_ok, client, url))
            costly = plans.costly_reads(statements, BUDGET)
            assert not costly, f"{query!r} ({url}):\n" + "\n\n".join(costly)


def _ok(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
