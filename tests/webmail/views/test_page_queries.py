"""A reading page sends the same statements for one mailbox or several, and reads the mailboxes once.

The list, its rows and the sidebar all need the person's mailboxes and folders: one read of each
per request (fetcher.selectors.Holdings), whatever the number of mailboxes, folders or messages.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from fetcher.models import Folder, FolderRole, Message
from tests import plans
from tests.factories import account_mailbox

pytestmark = pytest.mark.django_db

PAGES = {
    "first page": "/",
    "sent": "/mail/v/sent/",
    "starred": "/mail/v/starred/",
    "a word": "/mail/search/?q=toplant%C4%B1",
    "an operator": "/mail/search/?q=is%3Aunread",
    "words and an operator": "/mail/search/?q=toplant%C4%B1+has%3Aattachment",
    "preferences": "/account/preferences/",
}


def _add_mailbox(user: User, number: int) -> Folder:
    box = account_mailbox((f"box{number}", "unused"), 993, owner=user, protocol="imap", name=f"Box {number}")
    inbox = Folder.objects.create(mailbox=box, name="INBOX", role=FolderRole.INBOX)
    for role in (FolderRole.SENT, FolderRole.TRASH, ""):
        Folder.objects.create(mailbox=box, name=role.capitalize() or "Work", role=role)
    plans.bulk_messages(box, inbox, 120, unread_every=2)
    return inbox


def _statements(client: Client, url: str) -> list[str]:
    client.get(url)  # the session's first write is not a page's
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return [str(query["sql"]) for query in captured.captured_queries]


def _mailbox_reads(statements: list[str]) -> int:
    return sum(1 for sql in statements if re.match(r'SELECT .* FROM "accounts_mailbox"', sql))


def test_a_page_reads_the_mailboxes_once_and_sends_as_many_statements_for_three_mailboxes() -> None:
    user = User.objects.create_user("reader", password="pw")
    _add_mailbox(user, 1)
    Message.objects.filter(mailbox__owner=user).update(subject="Toplantı notları")
    client = Client()
    client.force_login(user)
    with_one = {name: _statements(client, url) for name, url in PAGES.items()}

    for number in (2, 3):
        _add_mailbox(user, number)
    Message.objects.filter(mailbox__owner=user).update(subject="Toplantı notları")
    with_three = {name: _statements(client, url) for name, url in PAGES.items()}

    for name in PAGES:
        assert _mailbox_reads(with_three[name]) == 1, (name, with_three[name])
        assert len(with_three[name]) == len(with_one[name]), (name, with_one[name], with_three[name])
