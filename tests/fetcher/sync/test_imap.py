"""IMAP sync against a real Dovecot: folders, flags both ways from the server, expunges, UIDVALIDITY."""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest
from imapclient import IMAPClient

from accounts.models import Mailbox
from accounts.services import Passwords, mailbox_save
from fetcher.models import Folder, FolderRole, ImapMessage, MailboxSync, Message
from fetcher.services import message_set_flags
from fetcher.sync.claim import SyncResult
from tests.factories import in_folder, raw_message, run_sync
from tests.servers.dovecot import Dovecot

pytestmark = [pytest.mark.django_db, pytest.mark.mailservers]


def test_the_first_sync_brings_every_chosen_folder_with_roles_and_flags(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    server.append("INBOX", raw_message(1), flags=["\\Seen"])
    server.append("INBOX", raw_message(2))
    server.append("Sent", raw_message(3, subject="Gönderildi"), flags=["\\Seen", "\\Answered"])

    result = run_sync(mailbox)

    assert result.status == "done"
    assert result.fetched == 3
    inbox, sent = in_folder(mailbox, "INBOX"), in_folder(mailbox, "Sent")
    assert [(m.seen, m.flagged) for m in inbox] == [(True, False), (False, False)]
    assert sent[0].answered
    roles = dict(Folder.objects.filter(mailbox=mailbox).values_list("name", "role"))
    assert roles["INBOX"] == FolderRole.INBOX
    assert roles["Sent"] == FolderRole.SENT
    assert roles["Junk"] == FolderRole.JUNK
    server.select_folder("INBOX", readonly=True)
    assert b"\\Seen" not in server.get_flags([2])[2]  # fetching did not mark it read


def test_new_mail_flags_and_expunges_on_the_server_follow_in_the_next_sync(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    for number in range(3):
        server.append("INBOX", raw_message(number))
    run_sync(mailbox)
    server.select_folder("INBOX")
    uids = server.search(["ALL"])
    server.add_flags(uids[0], ["\\Flagged", "\\Seen"])
    server.delete_messages(uids[1])
    server.expunge()
    server.append("INBOX", raw_message(9))

    result = run_sync(mailbox)

    assert result.fetched == 1
    messages = in_folder(mailbox, "INBOX")
    assert len(messages) == 3
    assert messages[0].flagged
    assert messages[0].seen
    assert [m.imap.uid for m in messages] == [uids[0], uids[2], max(uids) + 1]


def test_an_unchanged_mailbox_costs_one_status_per_folder_and_few_queries(
    mailbox: Mailbox, server: IMAPClient, django_assert_max_num_queries: Any
) -> None:
    for number in range(40):
        server.append("INBOX", raw_message(number))
    run_sync(mailbox)

    with django_assert_max_num_queries(10):
        result = run_sync(mailbox)

    assert result == SyncResult("done", 0, 0)


def test_a_changed_uidvalidity_resyncs_without_losing_or_duplicating(
    mailbox: Mailbox, server: IMAPClient, dovecot: Dovecot, account: tuple[str, str]
) -> None:
    for number in range(5):
        server.append("INBOX", raw_message(number))
    run_sync(mailbox)
    before = {m.sha256 for m in in_folder(mailbox, "INBOX")}
    old_validity = Folder.objects.get(mailbox=mailbox, name="INBOX").uidvalidity
    server.logout()
    maildir = dovecot.maildir(account[0])
    for path in maildir.glob("dovecot*"):  # Dovecot rebuilds its index with a new UIDVALIDITY
        path.unlink() if path.is_file() else shutil.rmtree(path)
    time.sleep(1.1)  # UIDVALIDITY is a timestamp: make sure the new one differs

    result = run_sync(mailbox)

    inbox = Folder.objects.get(mailbox=mailbox, name="INBOX")
    assert inbox.uidvalidity != old_validity
    assert result.fetched == 0  # everything recognised by Message-ID and size
    assert {m.sha256 for m in in_folder(mailbox, "INBOX")} == before
    assert ImapMessage.objects.filter(folder=inbox, uidvalidity=int(inbox.uidvalidity or 0)).count() == 5
    assert Message.objects.filter(mailbox=mailbox).count() == 5


def test_only_the_chosen_folders_are_synced_when_the_user_chose(mailbox: Mailbox, server: IMAPClient) -> None:
    server.create_folder("Projeler")
    server.append("Projeler", raw_message(1))
    server.create_folder("Arşiv 2025")
    server.append("Arşiv 2025", raw_message(2))
    mailbox.imap_folders = ["Projeler"]
    mailbox.save()

    run_sync(mailbox)

    names = set(Folder.objects.filter(mailbox=mailbox).values_list("name", flat=True))
    assert "Projeler" in names
    assert "Arşiv 2025" not in names  # not chosen (and not a special folder)
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk"} <= names


def test_between_listings_a_poll_asks_the_known_folders_and_its_list_finds_new_ones(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    run_sync(mailbox)
    listed_at = MailboxSync.objects.get(pk=mailbox.pk).folders_listed_at
    run_sync(mailbox)
    assert MailboxSync.objects.get(pk=mailbox.pk).folders_listed_at == listed_at  # unchanged: no full listing
    server.create_folder("Yeni İşler")
    server.subscribe_folder("Yeni İşler")
    server.append("Yeni İşler", raw_message(1))
    server.append("INBOX", raw_message(2))

    # The LIST pipelined with the known folders' STATUS shows the new folder: no 30-minute wait.
    assert run_sync(mailbox).fetched == 2
    assert in_folder(mailbox, "Yeni İşler")


def test_a_folder_gone_from_the_server_makes_the_poll_list_folders_again(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    server.create_folder("Geçici")
    server.subscribe_folder("Geçici")
    run_sync(mailbox)
    server.delete_folder("Geçici")
    server.append("INBOX", raw_message(1))

    result = run_sync(mailbox)

    assert result == SyncResult("done", 1, 0)
    assert not Folder.objects.get(mailbox=mailbox, name="Geçici").synced


def test_a_folder_no_longer_chosen_is_no_longer_synced(mailbox: Mailbox, server: IMAPClient) -> None:
    server.create_folder("Projeler")
    mailbox.imap_folders = ["Projeler"]
    mailbox.save()
    run_sync(mailbox)
    mailbox = mailbox_save(
        owner=mailbox.owner, mailbox=mailbox, values={"imap_folders": []}, passwords=Passwords()
    )
    run_sync(mailbox)  # lists the folders again: the settings changed
    server.append("Projeler", raw_message(1))

    run_sync(mailbox)  # asks the synced folders only

    assert not in_folder(mailbox, "Projeler")
    assert not Folder.objects.get(mailbox=mailbox, name="Projeler").synced


def test_folder_names_in_modified_utf7_are_decoded(mailbox: Mailbox, server: IMAPClient) -> None:
    server.create_folder("Gelen/Önemli İşler")
    server.subscribe_folder("Gelen/Önemli İşler")
    server.append("Gelen/Önemli İşler", raw_message(1))

    run_sync(mailbox)

    assert in_folder(mailbox, "Gelen/Önemli İşler")


def server_flags(server: IMAPClient, folder: str = "INBOX") -> dict[int, set[bytes]]:
    server.select_folder(folder, readonly=True)
    return {uid: set(flags) for uid, flags in server.get_flags(server.search(["ALL"])).items()}


def test_read_and_star_set_in_postane_reach_the_server_with_the_next_sync(
    mailbox: Mailbox, server: IMAPClient, django_capture_on_commit_callbacks: Any
) -> None:
    server.append("INBOX", raw_message(1))
    server.append("INBOX", raw_message(2), flags=["\\Seen"])
    run_sync(mailbox)
    first, second = in_folder(mailbox, "INBOX")

    with django_capture_on_commit_callbacks() as queued:
        message_set_flags(message=first, seen=True, flagged=True)
        message_set_flags(message=second, seen=False)
    assert len(queued) == 2  # a sync is queued for each change

    run_sync(mailbox)

    flags = server_flags(server)
    assert flags[first.imap.uid] >= {b"\\Seen", b"\\Flagged"}
    assert b"\\Seen" not in flags[second.imap.uid]
    assert not Message.objects.filter(mailbox=mailbox).exclude(pending_flags={}).exists()


def test_a_pending_local_change_is_not_undone_by_the_servers_older_state(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    server.append("INBOX", raw_message(1))
    run_sync(mailbox)
    [message] = in_folder(mailbox, "INBOX")
    message_set_flags(message=message, flagged=True)
    server.select_folder("INBOX")
    server.add_flags(message.imap.uid, ["\\Seen"])  # another client reads it meanwhile

    run_sync(mailbox)

    message.refresh_from_db()
    assert message.flagged  # ours, pushed
    assert message.seen  # theirs, pulled
    assert server_flags(server)[message.imap.uid] >= {b"\\Seen", b"\\Flagged"}
