"""Moves and deletes made in Postane reach the IMAP server with the next sync; nothing comes back twice."""

from __future__ import annotations

import pytest
from imapclient import IMAPClient

from accounts.models import Mailbox
from fetcher.mail import imap
from fetcher.models import Folder, ImapDeletion, ImapMessage, Message
from fetcher.services import message_delete, message_delete_for_good, message_move
from tests.factories import account_mailbox, in_folder, raw_message, run_sync

pytestmark = [pytest.mark.django_db, pytest.mark.mailservers]


def subjects_on_server(server: IMAPClient, folder: str) -> list[str]:
    server.select_folder(folder, readonly=True)
    found = server.fetch(server.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return sorted(
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().partition(":")[2].strip() for data in found.values()
    )


def synced(mailbox: Mailbox, server: IMAPClient, count: int = 2) -> list[Message]:
    for number in range(count):
        server.append("INBOX", raw_message(number))
    run_sync(mailbox)
    return in_folder(mailbox, "INBOX")


def test_a_move_here_moves_the_message_on_the_server_and_it_stays_one_message(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    first, _second = synced(mailbox, server)
    archive = Folder.objects.get(mailbox=mailbox, name="Archive")

    message_move(message=first, folder=archive)
    assert run_sync(mailbox).fetched == 0

    assert subjects_on_server(server, "INBOX") == ["Merhaba 1"]
    assert subjects_on_server(server, "Archive") == ["Merhaba 0"]
    moved = Message.objects.get(pk=first.pk)
    assert (moved.folder.name, moved.imap.folder.name) == ("Archive", "Archive")
    assert run_sync(mailbox).fetched == 0
    assert Message.objects.filter(mailbox=mailbox).count() == 2


def test_without_copyuid_a_moved_message_is_matched_by_content_not_downloaded_again(
    mailbox: Mailbox, server: IMAPClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _second = synced(mailbox, server)
    monkeypatch.setattr(imap, "_copyuid", lambda text: {})

    message_move(message=first, folder=Folder.objects.get(mailbox=mailbox, name="Archive"))
    run_sync(mailbox)

    assert subjects_on_server(server, "Archive") == ["Merhaba 0"]
    server.select_folder("Archive", readonly=True)
    moved = Message.objects.get(pk=first.pk)
    assert moved.imap.uid == server.search(["ALL"])[0]
    assert Message.objects.filter(mailbox=mailbox).count() == 2


def test_delete_goes_to_trash_and_delete_in_trash_removes_it_from_the_server_for_good(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    first, second = synced(mailbox, server)

    message_delete(message=first)
    run_sync(mailbox)
    assert subjects_on_server(server, "Trash") == ["Merhaba 0"]
    assert subjects_on_server(server, "INBOX") == ["Merhaba 1"]

    message_delete(message=Message.objects.get(pk=first.pk))
    assert not Message.objects.filter(pk=first.pk).exists()
    run_sync(mailbox)

    assert subjects_on_server(server, "Trash") == []
    assert not ImapDeletion.objects.exists()
    assert run_sync(mailbox).fetched == 0
    assert list(Message.objects.filter(mailbox=mailbox)) == [second]


def test_a_message_cannot_move_to_another_mailbox_folder(mailbox: Mailbox, server: IMAPClient) -> None:
    first, _second = synced(mailbox, server)
    other_mailbox = account_mailbox(("other", "unused"), 995, owner=mailbox.owner, name="Other")
    other = Folder.objects.create(mailbox=other_mailbox, name="INBOX")

    with pytest.raises(ValueError, match="own mailbox"):
        message_move(message=first, folder=other)


def test_a_delete_never_removes_another_message_that_took_the_stored_uid(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    first, second = synced(mailbox, server)
    # A server's mistake (or temporary UIDs): our record of `first` names `second`'s UID.
    taken = second.imap.uid
    ImapMessage.objects.filter(message=second).update(uid=99)
    ImapMessage.objects.filter(message=first).update(uid=taken)

    message_delete_for_good(message=Message.objects.get(pk=first.pk))
    run_sync(mailbox)

    assert subjects_on_server(server, "INBOX") == [
        "Merhaba 1"
    ]  # the one deleted here, looked up by Message-ID


def test_a_copyuid_naming_a_stored_uid_reads_the_target_again_instead_of_crashing(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    first, second = synced(mailbox, server)
    server.append("Archive", raw_message(7))
    run_sync(mailbox)
    kept = Message.objects.get(mailbox=mailbox, folder__name="Archive")
    server.select_folder("Archive", readonly=True)
    next_uid = server.folder_status("Archive", ["UIDNEXT"])[b"UIDNEXT"]
    ImapMessage.objects.filter(message=kept).update(uid=next_uid)  # our view of Archive is stale

    message_move(message=first, folder=Folder.objects.get(mailbox=mailbox, name="Archive"))
    assert run_sync(mailbox).status == "done"

    assert subjects_on_server(server, "Archive") == ["Merhaba 0", "Merhaba 7"]
    assert run_sync(mailbox).fetched == 0
    assert Message.objects.filter(mailbox=mailbox).count() == 3
    server.select_folder("Archive", readonly=True)
    on_server = set(server.search(["ALL"]))
    assert {
        row.uid for row in ImapMessage.objects.filter(folder__name="Archive", folder__mailbox=mailbox)
    } == on_server
    assert Message.objects.get(pk=second.pk).folder.name == "INBOX"
