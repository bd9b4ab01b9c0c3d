"""Every page that reads mail plans an index scan of the messages, whatever the statistics say.

The planner is shown a mailbox of 20,000 messages (and another person's of 10,000) in three
states: never analysed (as a large first sync leaves it), analysed while the mailbox looked
different (all mail read), and analysed between the two stages of ingest (no conversation keys
yet). A sequential scan of the message table in any statement of a page fails the test, with
the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from fetcher.models import Folder, FolderRole, Message
from fetcher.selectors import Cursor
from tests import plans
from tests.factories import account_mailbox

pytestmark = pytest.mark.django_db
SIZE = 20_000
# What a page may read of the messages: a page (51 rows) per folder listed, the conversations'
# newer messages, the sidebar's counts: far below the mailbox, and the same for any mailbox size.
BUDGET = 1_500


def _imap_mailbox(name: str) -> tuple[User, Any, dict[str, Folder]]:
    user = User.objects.create_user(name, password="pw")
    box = account_mailbox((name, "unused"), 993, owner=user, protocol="imap", name=name)
    folders = {
        role or "Work": Folder.objects.create(mailbox=box, name=role.capitalize() or "Work", role=role)
        for role in (
            FolderRole.INBOX,
            FolderRole.SENT,
            FolderRole.DRAFTS,
            FolderRole.TRASH,
            FolderRole.JUNK,
            "",
        )
    }
    return user, box, folders


@pytest.fixture
def reader() -> tuple[User, Client, dict[str, Folder]]:
    user, box, folders = _imap_mailbox("reader")
    plans.bulk_messages(box, folders[FolderRole.INBOX], SIZE)
    plans.bulk_messages(box, folders["Work"], 200, unread_every=2)
    _other, other_box, other_folders = _imap_mailbox("other")
    plans.bulk_messages(other_box, other_folders[FolderRole.INBOX], SIZE // 2, unread_every=3)
    client = Client()
    client.force_login(user)
    return user, client, folders


def _skew_all_read() -> None:
    """Statistics taken while every message was read: now they are all unread."""
    Message.objects.update(seen=True)
    plans.analyse()
    Message.objects.update(seen=False)


STATES: dict[str, Callable[[], None]] = {
    "without statistics": plans.forget_statistics,
    "skewed": _skew_all_read,
    "analysed before parsing": plans.analysed_before_parsing,
}


COUNTS_ONLY = {"preferences (the sidebar alone)", "unread count"}


def _pages(user: User, folders: dict[str, Folder]) -> dict[str, str]:
    inbox = folders[FolderRole.INBOX]
    middle = Message.objects.filter(folder=inbox).order_by("-sort_date", "-id")[SIZE // 2]
    after = Cursor(middle.sort_date, middle.pk).encode()
    return {
        "first page": "/",
        "page halfway down": f"/?after={after}",
        "one folder": f"/mail/folder/{inbox.public_id}/",
        "an empty folder": f"/mail/folder/{folders[FolderRole.TRASH].public_id}/",
        "starred": "/mail/v/starred/",
        "preferences (the sidebar alone)": "/account/preferences/",
        "unread count": "/mail/unread/",
        "a message": f"/mail/m/{middle.public_id}/",
    }


@pytest.mark.parametrize("state", STATES)
def test_reading_pages_never_scan_the_message_table(reader: Any, state: str) -> None:
    user, client, folders = reader
    pages = _pages(user, folders)
    STATES[state]()
    for conversations in (False, True):
        user.conversations = conversations
        user.save(update_fields=["conversations"])
        for name, url in pages.items():
            statements = plans.analysed_statements(partial(_ok, client, url))
            # The sidebar and the unread count read counts, not messages: nothing to judge there.
            assert statements or name in COUNTS_ONLY, name
            costly = plans.costly_reads(statements, BUDGET)
            assert not costly, f"{name} ({url}, conversations {conversations}):\n" + "\n\n".join(costly)


def _ok(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
