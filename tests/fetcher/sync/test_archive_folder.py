"""Archive on an IMAP server without an Archive folder (Dovecot's stock configuration has none): the
conversation goes to Archive here at once, the next sync creates the folder on the server and moves
every message of it there, and Undo brings them back, on the server too (issue #13, defect 3)."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse
from imapclient import IMAPClient

from accounts.models import Mailbox
from fetcher import sync
from fetcher.ingest import parsing
from fetcher.models import Folder, FolderRole, Message
from fetcher.sync.claim import SyncResult
from tests.factories import account_mailbox, mail
from tests.personas import Persona
from tests.servers.dovecot import Dovecot

pytestmark = [pytest.mark.django_db, pytest.mark.mailservers]


@pytest.fixture
def mail_server(dovecot_stock: Dovecot) -> Dovecot:
    """Debian's stock folders: the account and server fixtures of tests/fetcher/conftest.py live here."""
    return dovecot_stock


@pytest.fixture
def mailbox(
    dovecot_stock: Dovecot, account: tuple[str, str], alice: Persona, local_mail_settings: None
) -> Mailbox:
    return account_mailbox(
        account, dovecot_stock.ports["imaps"], protocol="imap", owner=alice.user, name="İş"
    )


@pytest.fixture(autouse=True)
def _syncs_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test runs each sync itself (run_sync), when it wants the server to follow."""
    monkeypatch.setattr("fetcher.enqueue.sync_mailbox", lambda mailbox_id: None)


def run_sync(mailbox: Mailbox) -> SyncResult:
    """A sync, and stage two of what it stored (the parse tasks it queues), as the workers would."""
    result = sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60)
    parsing.parse_messages(
        list(Message.objects.filter(mailbox=mailbox, parse_state="pending").values_list("id", flat=True))
    )
    return result


def subjects(server: IMAPClient, folder: str) -> list[str]:
    if not server.folder_exists(folder):
        return []
    server.select_folder(folder, readonly=True)
    found = server.fetch(server.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return sorted(
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().partition(":")[2].strip() for data in found.values()
    )


def a_conversation_on_the_server(server: IMAPClient, size: int) -> None:
    root = f"<{uuid.uuid4().hex}@example.com>"
    server.append("INBOX", mail("Proje", headers=f"Message-ID: {root}", date=_date(1)))
    for number in range(1, size):
        reply = mail(
            f"Re: Proje {number}", headers=f"In-Reply-To: {root}\nReferences: {root}", date=_date(number + 1)
        )
        server.append("INBOX", reply)


def _date(minute: int) -> str:
    return f"Fri, 27 Nov 2026 10:{minute:02d}:00 +0300"


def archive_row(alice: Persona, row: Message) -> str:
    data = {
        "action": "archive",
        "message": [str(row.public_id)],
        "rows": "conversations",
        "scope": "inbox",
        "back": "/",
    }
    return alice.client.post(reverse("messages_action"), data, follow=True).content.decode()


def undo(alice: Persona, page: str) -> None:
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None, "no Undo in the notice"
    assert alice.client.post(reverse("messages_undo"), {"token": token[1], "back": "/"}).status_code == 302


def newest(mailbox: Mailbox) -> Message:
    return Message.objects.filter(mailbox=mailbox).order_by("-sort_date", "-id")[0]


def test_archive_creates_the_folder_on_the_server_moves_the_whole_conversation_and_undo_brings_it_back(
    alice: Persona, mailbox: Mailbox, server: IMAPClient
) -> None:
    a_conversation_on_the_server(server, 3)
    server.append("INBOX", mail("Other", date=_date(0)))
    run_sync(mailbox)
    assert "Archive" not in [name for _flags, _delimiter, name in server.list_folders()]

    page = archive_row(alice, newest(mailbox))
    assert "1 conversation archived." in page
    run_sync(mailbox)

    assert subjects(server, "Archive") == ["Proje", "Re: Proje 1", "Re: Proje 2"]
    assert subjects(server, "INBOX") == ["Other"]
    archive = Folder.objects.get(mailbox=mailbox, role=FolderRole.ARCHIVE)
    assert (archive.name, archive.pending_create) == ("Archive", False)
    assert Message.objects.filter(mailbox=mailbox, folder=archive).count() == 3

    undo(alice, page)
    run_sync(mailbox)

    assert subjects(server, "INBOX") == ["Other", "Proje", "Re: Proje 1", "Re: Proje 2"]
    assert subjects(server, "Archive") == []
    assert run_sync(mailbox).fetched == 0
    assert Message.objects.filter(mailbox=mailbox).count() == 4  # nothing came back twice
    assert not Message.objects.filter(mailbox=mailbox, pending_move=True).exists()


def test_an_archive_undone_before_the_sync_leaves_the_server_as_it_was(
    alice: Persona, mailbox: Mailbox, server: IMAPClient
) -> None:
    a_conversation_on_the_server(server, 2)
    run_sync(mailbox)
    uids = sorted(server.select_folder("INBOX", readonly=True) and server.search(["ALL"]))

    undo(alice, archive_row(alice, newest(mailbox)))

    assert not Message.objects.filter(mailbox=mailbox, pending_move=True).exists()
    assert run_sync(mailbox).fetched == 0
    server.select_folder("INBOX", readonly=True)
    assert sorted(server.search(["ALL"])) == uids  # not moved out and back: the same UIDs
    assert set(Message.objects.filter(mailbox=mailbox).values_list("folder__role", flat=True)) == {
        FolderRole.INBOX
    }
