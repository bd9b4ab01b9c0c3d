"""IMAP folders on servers without SPECIAL-USE (a Dovecot configured like Courier, and a real Courier):
roles by name, role folders created when needed, sent copies that reach the server's Sent, a
folder list that fails, and folders made by another client showing at the next poll."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import trustme
from django.test import Client
from django.urls import reverse
from imapclient import IMAPClient

from accounts.models import Mailbox
from fetcher import folders, outbox
from fetcher.mail.imap import Folder as ImapFolder
from fetcher.models import Folder, FolderRole, Message, OutgoingMessage, OutgoingState
from fetcher.services import message_archive, message_delete
from tests.conftest import MAIL_USERS
from tests.factories import account_mailbox, raw_message, run_sync
from tests.servers.courier import Courier
from tests.servers.dovecot import Dovecot
from tests.servers.proxy import FaultyProxy
from tests.servers.smtp import ScriptedHandler, SmtpServer, start_smtp

pytestmark = [pytest.mark.django_db, pytest.mark.mailservers]


# --- roles by name: the rule itself ---------------------------------------------------------------------


def listed(*names: str, flags: dict[str, str] | None = None, delimiter: str = ".") -> list[ImapFolder]:
    flags = flags or {}
    return [ImapFolder(name, (flags[name],) if name in flags else (), delimiter) for name in names]


def test_roles_come_from_the_names_people_use_with_or_without_the_namespace_prefix() -> None:
    found = folders.roles(
        listed(
            "INBOX",
            "INBOX.sent items",
            "INBOX.Drafts",
            "INBOX.Deleted Messages",
            "INBOX.SPAM",
            "INBOX.Archives",
            "INBOX.Work.Sent",  # a subfolder of the user's own: not the Sent folder
            "Projeler",
        ),
        "INBOX.",
    )

    assert found == {
        "INBOX": FolderRole.INBOX,
        "INBOX.sent items": FolderRole.SENT,
        "INBOX.Drafts": FolderRole.DRAFTS,
        "INBOX.Deleted Messages": FolderRole.TRASH,
        "INBOX.SPAM": FolderRole.JUNK,
        "INBOX.Archives": FolderRole.ARCHIVE,
        "INBOX.Work.Sent": FolderRole.OTHER,
        "Projeler": FolderRole.OTHER,
    }


def test_turkish_names_are_roles_whatever_their_case() -> None:
    found = folders.roles(
        listed("Gönderilmiş Öğeler", "TASLAKLAR", "Çöp Kutusu", "İSTENMEYEN", "arşiv", delimiter="/")
    )

    assert found == {
        "Gönderilmiş Öğeler": FolderRole.SENT,
        "TASLAKLAR": FolderRole.DRAFTS,
        "Çöp Kutusu": FolderRole.TRASH,
        "İSTENMEYEN": FolderRole.JUNK,
        "arşiv": FolderRole.ARCHIVE,
    }


def test_one_folder_per_role_a_flag_beats_a_name_and_a_better_name_a_worse_one() -> None:
    found = folders.roles(
        listed(
            "INBOX.Trash", "INBOX.Papierkorb", "INBOX.Sent Messages", "INBOX.Sent", "INBOX.Junk",
            flags={"INBOX.Papierkorb": "\\Trash"},
        ),
        "INBOX.",
    )  # fmt: skip

    assert found["INBOX.Papierkorb"] == FolderRole.TRASH
    assert found["INBOX.Trash"] == FolderRole.OTHER
    assert found["INBOX.Sent"] == FolderRole.SENT
    assert found["INBOX.Sent Messages"] == FolderRole.OTHER


# --- against a server laid out as Courier's ---------------------------------------------------------------


@pytest.fixture
def mail_server(dovecot_courier_like: Dovecot) -> Dovecot:
    """Laid out as Courier's: the account and server fixtures of tests/fetcher/conftest.py live here."""
    return dovecot_courier_like


@pytest.fixture
def smtp(mail_ca: trustme.CA) -> Iterator[SmtpServer]:
    relay = start_smtp(mail_ca, MAIL_USERS, "plain", ScriptedHandler(answers=[]))
    yield relay
    relay.stop()


def sending_mailbox(account: tuple[str, str], imaps_port: int, smtp: SmtpServer) -> Mailbox:
    """An IMAP mailbox that sends through the test relay as alice."""
    sending: dict[str, Any] = {"smtp_port": smtp.port, "smtp_security": "none", "smtp_same_login": False}
    box = account_mailbox(account, imaps_port, protocol="imap", **sending)
    box.smtp_login = "alice"
    box.set_smtp_password(MAIL_USERS["alice"])
    box.save()
    return box


@pytest.fixture
def mailbox(
    dovecot_courier_like: Dovecot, account: tuple[str, str], smtp: SmtpServer, local_mail_settings: None
) -> Mailbox:
    return sending_mailbox(account, dovecot_courier_like.ports["imaps"], smtp)


def on_server(server: IMAPClient, folder: str) -> list[bytes]:
    server.select_folder(folder, readonly=True)
    uids = server.search(["ALL"])
    return [data[b"BODY[]"] for data in server.fetch(uids, ["BODY.PEEK[]"]).values()] if uids else []


def roles_of(mailbox: Mailbox) -> dict[str, str]:
    return dict(Folder.objects.filter(mailbox=mailbox, synced=True).values_list("name", "role"))


def test_without_special_use_the_role_folders_are_found_by_name_and_synced_unsubscribed(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    for name in ("INBOX.Sent", "INBOX.Trash", "INBOX.Spam", "INBOX.Archive", "INBOX.Drafts"):
        server.create_folder(name)  # not subscribed: a role folder is synced anyway
    server.append("INBOX.Spam", raw_message(1))

    run_sync(mailbox)

    assert roles_of(mailbox) == {
        "INBOX": FolderRole.INBOX,
        "INBOX.Sent": FolderRole.SENT,
        "INBOX.Trash": FolderRole.TRASH,
        "INBOX.Spam": FolderRole.JUNK,
        "INBOX.Archive": FolderRole.ARCHIVE,
        "INBOX.Drafts": FolderRole.DRAFTS,
    }
    assert Message.objects.filter(mailbox=mailbox, folder__name="INBOX.Spam").count() == 1
    assert Folder.objects.get(mailbox=mailbox, name="INBOX.Sent").delimiter == "."


def test_delete_moves_to_the_trash_found_by_name_not_deleting_for_good(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    server.create_folder("INBOX.Trash")
    server.append("INBOX", raw_message(1))
    run_sync(mailbox)

    message_delete(message=Message.objects.get(mailbox=mailbox))
    run_sync(mailbox)

    assert on_server(server, "INBOX") == []
    assert len(on_server(server, "INBOX.Trash")) == 1
    assert Message.objects.get(mailbox=mailbox).folder.name == "INBOX.Trash"


def test_delete_without_a_trash_creates_one_under_the_namespace(mailbox: Mailbox, server: IMAPClient) -> None:
    server.append("INBOX", raw_message(1))
    run_sync(mailbox)

    message_delete(message=Message.objects.get(mailbox=mailbox))
    run_sync(mailbox)
    run_sync(mailbox)

    assert len(on_server(server, "INBOX.Trash")) == 1
    assert on_server(server, "INBOX") == []
    kept = Message.objects.get(mailbox=mailbox)
    assert (kept.folder.name, kept.folder.role) == ("INBOX.Trash", FolderRole.TRASH)
    assert not Folder.objects.filter(mailbox=mailbox, pending_create=True).exists()


def test_archive_without_an_archive_creates_one_and_moves_the_message(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    server.append("INBOX", raw_message(1))
    run_sync(mailbox)

    message_archive(message=Message.objects.get(mailbox=mailbox))
    run_sync(mailbox)
    run_sync(mailbox)

    assert len(on_server(server, "INBOX.Archive")) == 1
    assert on_server(server, "INBOX") == []
    assert Message.objects.get(mailbox=mailbox).folder.role == FolderRole.ARCHIVE


def send(mailbox: Mailbox) -> bytes:
    draft = outbox.outgoing_save(owner=mailbox.owner, mailbox=mailbox, values={"to": "cem@example.net"})
    outbox.outgoing_queue(outgoing=draft, send_at=None)
    draft.refresh_from_db()
    OutgoingMessage.objects.filter(pk=draft.pk).update(send_after=draft.created_at)
    assert outbox.outgoing_deliver(outgoing_id=draft.pk) == OutgoingState.SENT
    return bytes(draft.raw or b"")


def test_mail_sent_before_the_first_sync_reaches_the_servers_sent_made_when_missing(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    raw = send(mailbox)  # no sync has listed the folders; the server has no Sent at all

    assert on_server(server, "INBOX.Sent") == [raw]
    assert not Message.objects.filter(mailbox=mailbox).exists()  # the sync brings it, once
    run_sync(mailbox)
    run_sync(mailbox)
    assert [bytes(m.raw) for m in Message.objects.filter(mailbox=mailbox, folder__role=FolderRole.SENT)] == [
        raw
    ]
    assert Message.objects.filter(mailbox=mailbox).count() == 1


def test_mail_sent_before_the_first_sync_finds_a_sent_folder_by_its_turkish_name(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    server.create_folder("INBOX.Gönderilmiş Öğeler")

    raw = send(mailbox)

    assert on_server(server, "INBOX.Gönderilmiş Öğeler") == [raw]
    server.select_folder("INBOX", readonly=True)
    assert "INBOX.Sent" not in {name for _flags, _delimiter, name in server.list_folders()}


def send_while_append_fails(mailbox: Mailbox, dovecot: Dovecot) -> bytes:
    """Send while the IMAP server drops every APPEND (SMTP takes the message); then the server is back."""
    proxy = FaultyProxy(dovecot.ports["imap"], cut_on=b" APPEND ").start()
    Mailbox.objects.filter(pk=mailbox.pk).update(incoming_port=proxy.port, incoming_security="none")
    mailbox.refresh_from_db()
    try:
        raw = send(mailbox)
    finally:
        proxy.stop()
    Mailbox.objects.filter(pk=mailbox.pk).update(
        incoming_port=dovecot.ports["imaps"], incoming_security="ssl"
    )
    return raw


def test_a_sent_copy_the_server_could_not_take_is_appended_by_the_next_sync_and_kept_once(
    mailbox: Mailbox, server: IMAPClient, dovecot_courier_like: Dovecot
) -> None:
    server.create_folder("INBOX.Sent")
    run_sync(mailbox)
    raw = send_while_append_fails(mailbox, dovecot_courier_like)
    stranded = Message.objects.get(mailbox=mailbox)
    assert (stranded.folder.local, stranded.pending_append) == (True, True)
    assert on_server(server, "INBOX.Sent") == []

    run_sync(mailbox)
    run_sync(mailbox)

    assert on_server(server, "INBOX.Sent") == [raw]
    copies = list(Message.objects.filter(mailbox=mailbox))
    assert [(m.folder.name, m.pending_append, bytes(m.raw)) for m in copies] == [("INBOX.Sent", False, raw)]
    assert not Folder.objects.filter(mailbox=mailbox, local=True).exists()


def test_a_sent_copy_already_appended_by_a_sync_that_died_is_not_appended_twice(
    mailbox: Mailbox, server: IMAPClient, dovecot_courier_like: Dovecot
) -> None:
    server.create_folder("INBOX.Sent")
    run_sync(mailbox)
    raw = send_while_append_fails(mailbox, dovecot_courier_like)
    server.append("INBOX.Sent", raw, flags=["\\Seen"])  # the APPEND went through; its record did not

    run_sync(mailbox)
    run_sync(mailbox)

    assert on_server(server, "INBOX.Sent") == [raw]
    assert [m.folder.name for m in Message.objects.filter(mailbox=mailbox)] == ["INBOX.Sent"]


def test_a_draft_reaches_a_drafts_folder_made_when_the_server_has_none(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    draft = outbox.outgoing_save(owner=mailbox.owner, mailbox=mailbox, values={"to": "cem@example.net"})
    OutgoingMessage.objects.filter(pk=draft.pk).update(updated_at=draft.updated_at - timedelta(seconds=60))

    assert outbox.draft_to_server(outgoing_id=draft.pk)

    assert len(on_server(server, "INBOX.Drafts")) == 1


def test_a_folder_list_that_fails_still_syncs_inbox_and_leaves_a_note(
    mailbox: Mailbox, server: IMAPClient, dovecot_courier_like: Dovecot
) -> None:
    server.append("INBOX", raw_message(1))
    proxy = FaultyProxy(dovecot_courier_like.ports["imap"], cut_on=b" LIST ").start()
    Mailbox.objects.filter(pk=mailbox.pk).update(incoming_port=proxy.port, incoming_security="none")
    try:
        result = run_sync(mailbox)
    finally:
        proxy.stop()

    assert result.status == "done"
    assert Message.objects.filter(mailbox=mailbox, folder__name="INBOX").count() == 1
    mailbox.refresh_from_db()
    assert mailbox.sync.last_error_kind == "folders"
    assert "folder list" in mailbox.sync.last_error_message
    reader = Client()
    reader.force_login(mailbox.owner)
    page = reader.get(reverse("mailbox_list")).content.decode()
    assert 'data-testid="sync-note"' in page  # the mailbox page says so, though the sync went well


def test_a_folder_made_by_another_client_is_synced_by_the_next_poll(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    run_sync(mailbox)
    server.create_folder("INBOX.Yeni İşler")
    server.subscribe_folder("INBOX.Yeni İşler")
    server.append("INBOX.Yeni İşler", raw_message(1))

    assert run_sync(mailbox).fetched == 1

    assert Message.objects.filter(mailbox=mailbox, folder__name="INBOX.Yeni İşler").exists()


# --- the same against a real Courier IMAP ------------------------------------------------------------------


@pytest.fixture
def courier_account(courier: Courier) -> tuple[str, str]:
    return courier.fresh_user()


@pytest.fixture
def courier_mailbox(
    courier: Courier, courier_account: tuple[str, str], smtp: SmtpServer, local_mail_settings: None
) -> Mailbox:
    return sending_mailbox(courier_account, courier.ports["imaps"], smtp)


@pytest.fixture
def courier_server(courier: Courier, courier_account: tuple[str, str]) -> Iterator[IMAPClient]:
    with courier.client(courier_account) as client:
        yield client


def test_courier_delete_moves_to_inbox_trash_found_by_name(
    courier: Courier, courier_account: tuple[str, str], courier_mailbox: Mailbox, courier_server: IMAPClient
) -> None:
    courier.make_folder(courier_account[0], "INBOX.Trash")
    courier.deliver(courier_account[0], raw_message(1), "one")
    run_sync(courier_mailbox)
    assert roles_of(courier_mailbox)["INBOX.Trash"] == FolderRole.TRASH

    message_delete(message=Message.objects.get(mailbox=courier_mailbox))
    run_sync(courier_mailbox)

    assert courier.messages_on_server(courier_account[0], "INBOX.Trash") == 1
    assert on_server(courier_server, "INBOX") == []
    assert Message.objects.get(mailbox=courier_mailbox).folder.name == "INBOX.Trash"


def test_courier_inbox_sent_gets_the_sent_copy_before_any_sync(
    courier: Courier, courier_account: tuple[str, str], courier_mailbox: Mailbox, courier_server: IMAPClient
) -> None:
    courier.make_folder(courier_account[0], "INBOX.Sent")

    raw = send(courier_mailbox)

    assert [m.replace(b"\r\n", b"\n") for m in on_server(courier_server, "INBOX.Sent")] == [
        raw.replace(b"\r\n", b"\n")
    ]


def test_courier_archive_is_created_as_inbox_archive_on_archive(
    courier: Courier, courier_account: tuple[str, str], courier_mailbox: Mailbox, courier_server: IMAPClient
) -> None:
    courier.deliver(courier_account[0], raw_message(1), "one")
    run_sync(courier_mailbox)

    message_archive(message=Message.objects.get(mailbox=courier_mailbox))
    run_sync(courier_mailbox)

    assert courier.messages_on_server(courier_account[0], "INBOX.Archive") == 1
    assert on_server(courier_server, "INBOX") == []
    archived = Message.objects.get(mailbox=courier_mailbox)
    assert (archived.folder.name, archived.folder.role) == ("INBOX.Archive", FolderRole.ARCHIVE)


def test_courier_dropping_the_connection_on_a_folder_name_that_is_not_utf8_still_syncs_inbox(
    courier: Courier, courier_account: tuple[str, str], courier_mailbox: Mailbox
) -> None:
    courier.deliver(courier_account[0], raw_message(1), "one")
    # Latin-5 bytes an old client left in a folder name: Courier drops the connection on LIST.
    bad = courier.maildir(courier_account[0]) / os.fsdecode(b".Kar\xfd\xfe\xff")
    for sub in ("new", "cur", "tmp"):
        (bad / sub).mkdir(parents=True)
    (bad / "maildirfolder").touch()
    for path in (bad, *bad.iterdir()):
        os.chown(path, courier.mail_uid, courier.mail_gid)

    result = run_sync(courier_mailbox)

    assert result.status == "done"
    assert Message.objects.filter(mailbox=courier_mailbox, folder__name="INBOX").count() == 1
    courier_mailbox.refresh_from_db()
    assert courier_mailbox.sync.last_error_kind == "folders"  # the note says the list failed
