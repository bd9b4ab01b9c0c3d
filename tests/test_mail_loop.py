"""The full loop: alice writes in Postane, a real worker sends it at its time through her SMTP server,
the server delivers into Dovecot, and bob's POP3 and IMAP mailboxes in Postane fetch it, Turkish
byte for byte, threaded with what it answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import trustme
from django.utils import timezone

from accounts.models import Mailbox, User
from fetcher import enqueue, outbox, sync
from fetcher.ingest import parsing
from fetcher.mail import mime
from fetcher.models import Message, OutgoingMessage, OutgoingState
from tests.conftest import MAIL_USERS, WorkerProcess, wait_for
from tests.factories import account_mailbox, mail, stored
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import DeliveringHandler, SmtpServer, start_smtp

pytestmark = [pytest.mark.slow, pytest.mark.mailservers, pytest.mark.django_db(transaction=True)]

SUBJECT = "YNT: Bütçe ğüşıöç İĞÜŞÖÇ"
TEXT = "Merhaba Bob,\nışık, ğüşöç ve İĞÜŞÖÇ tamam.\n"


@pytest.fixture
def mta(mail_ca: trustme.CA, dovecot: Dovecot) -> Iterator[SmtpServer]:
    server = start_smtp(mail_ca, MAIL_USERS, "plain", DeliveringHandler(deliver=dovecot.deliver))
    yield server
    server.stop()


def test_alice_writes_a_worker_sends_it_on_time_and_bobs_pop3_and_imap_mailboxes_fetch_it(
    celery_worker: WorkerProcess,
    dovecot: Dovecot,
    mta: SmtpServer,
    local_mail_settings: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)  # parsed here, not by the worker
    bob_login, bob_password = dovecot.fresh_user()
    bob_address = f"{bob_login}@example.net"
    sending: dict[str, Any] = {
        "email_address": "alice@example.com",
        "smtp_port": mta.port,
        "smtp_security": "none",
    }
    alice = account_mailbox(("alice", MAIL_USERS["alice"]), 995, **sending)
    original = stored(alice, mail("Bütçe", sender=f"Bob <{bob_address}>", body="Rakamlar?"))[0]
    draft = outbox.outgoing_save(
        owner=alice.owner,
        mailbox=alice,
        values={"to": f"Bob <{bob_address}>", "subject": SUBJECT, "text": TEXT},
        replying_to=original,
    )
    due = timezone.now() + timedelta(seconds=2)

    outbox.outgoing_queue(outgoing=draft, send_at=due)  # the worker gets it with a countdown

    sent = wait_for(
        lambda: OutgoingMessage.objects.filter(pk=draft.pk, state=OutgoingState.SENT).first(),
        "the worker to send the scheduled message",
    )
    assert sent.sent_at >= due
    assert len(mta.handler.received) == 1
    owner = User.objects.create_user("bob-owner")
    bob_pop3 = account_mailbox((bob_login, bob_password), dovecot.ports["pop3s"], owner=owner, name="POP3")
    imap: dict[str, Any] = {"name": "IMAP", "protocol": "imap", "email_address": f"imap.{bob_address}"}
    bob_imap = account_mailbox((bob_login, bob_password), dovecot.ports["imaps"], owner=owner, **imap)
    for mailbox in (bob_pop3, bob_imap):
        assert sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60).fetched == 1
        received = Message.objects.get(mailbox=mailbox)
        assert bytes(received.raw) == bytes(sent.raw or b"")  # byte for byte, as alice's Postane built it
        parsed = mime.parse(bytes(received.raw))
        assert (parsed.subject, parsed.text.replace("\r\n", "\n")) == (SUBJECT, TEXT)
        assert parsed.in_reply_to == original.message_id
    parsing.parse_messages(list(Message.objects.filter(mailbox=alice).values_list("id", flat=True)))
    copy = Message.objects.get(mailbox=alice, folder__role="sent")  # alice's own Sent copy
    assert copy.thread_key == Message.objects.get(pk=original.pk).thread_key
    assert Message.objects.get(pk=original.pk).answered


@pytest.fixture
def imap_alice(
    dovecot: Dovecot, mta: SmtpServer, local_mail_settings: None, monkeypatch: pytest.MonkeyPatch
) -> Mailbox:
    """An IMAP mailbox of a fresh Dovecot account that sends through the relay; tests parse by hand."""
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)
    login, password = dovecot.fresh_user()
    sending: dict[str, Any] = {"smtp_port": mta.port, "smtp_security": "none", "smtp_same_login": False}
    alice = account_mailbox((login, password), dovecot.ports["imaps"], protocol="imap", **sending)
    alice.smtp_login = "alice"
    alice.set_smtp_password(MAIL_USERS["alice"])
    alice.save()
    return alice


def test_an_imap_mailbox_keeps_its_sent_copy_on_the_server_and_fetches_it_back_once(
    imap_alice: Mailbox,
) -> None:
    alice = imap_alice
    sync.sync_mailbox(mailbox_id=alice.id, budget_seconds=60)  # learns the server's Sent folder
    draft = outbox.outgoing_save(
        owner=alice.owner, mailbox=alice, values={"to": "cem@example.net", "text": "Ğ"}
    )
    outbox.outgoing_queue(outgoing=draft, send_at=timezone.now())

    assert outbox.outgoing_deliver(outgoing_id=draft.pk) == OutgoingState.SENT

    assert not Message.objects.filter(mailbox=alice).exists()  # not stored twice: the sync brings it
    assert sync.sync_mailbox(mailbox_id=alice.id, budget_seconds=60).fetched == 1
    copy = Message.objects.get(mailbox=alice)
    assert (copy.folder.name, copy.seen) == ("Sent", True)
    draft.refresh_from_db()
    assert bytes(copy.raw) == bytes(draft.raw or b"")
    assert sync.sync_mailbox(mailbox_id=alice.id, budget_seconds=60).fetched == 0


def test_an_imap_draft_is_kept_in_the_servers_drafts_once_and_leaves_it_when_sent(
    dovecot: Dovecot, imap_alice: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, login = imap_alice, imap_alice.incoming_login
    sync.sync_mailbox(mailbox_id=alice.id, budget_seconds=60)  # learns the server's Drafts folder
    values = {"to": "cem@example.net", "subject": "Taslak bir", "text": "İlk hâli"}
    draft = outbox.outgoing_save(owner=alice.owner, mailbox=alice, values=values)
    assert not outbox.draft_to_server(outgoing_id=draft.pk)  # still being typed: the server waits
    monkeypatch.setattr(outbox, "DRAFT_TO_SERVER_DELAY", 0.0)  # as if the writing had settled

    assert outbox.draft_to_server(outgoing_id=draft.pk)
    assert server_subjects(dovecot, login, "Drafts") == ["Taslak bir"]
    draft = outbox.outgoing_save(
        owner=alice.owner, mailbox=alice, values=values | {"subject": "Taslak iki"}, outgoing=draft
    )
    assert outbox.draft_to_server(outgoing_id=draft.pk)
    assert not outbox.draft_to_server(outgoing_id=draft.pk)  # nothing new: no second copy
    assert server_subjects(dovecot, login, "Drafts") == ["Taslak iki"]

    outbox.outgoing_queue(outgoing=draft, send_at=timezone.now())
    assert outbox.outgoing_deliver(outgoing_id=draft.pk) == OutgoingState.SENT

    assert server_subjects(dovecot, login, "Drafts") == []


def server_subjects(dovecot: Dovecot, login: str, folder: str) -> list[str]:
    from imapclient import IMAPClient  # noqa: PLC0415

    client = IMAPClient("127.0.0.1", port=dovecot.ports["imap"], ssl=False, timeout=10)
    client.login(login, dovecot.users[login])
    client.select_folder(folder, readonly=True)
    found = client.fetch(client.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    client.logout()
    return sorted(
        mime.parse(data[b"BODY[HEADER.FIELDS (SUBJECT)]"] + b"\r\n").subject for data in found.values()
    )


def test_an_old_server_draft_is_deleted_only_while_its_uid_still_names_that_draft(
    dovecot: Dovecot, imap_alice: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, login = imap_alice, imap_alice.incoming_login
    sync.sync_mailbox(mailbox_id=alice.id, budget_seconds=60)
    monkeypatch.setattr(outbox, "DRAFT_TO_SERVER_DELAY", 0.0)
    values = {"to": "cem@example.net", "subject": "Taslak", "text": "İlk hâli"}
    draft = outbox.outgoing_save(owner=alice.owner, mailbox=alice, values=values)
    assert outbox.draft_to_server(outgoing_id=draft.pk)
    # The server forgot that draft, and its UID now names another message (a renumbered folder).
    with dovecot.client((login, dovecot.users[login])) as client:
        client.select_folder("Drafts")
        client.delete_messages(client.search(["ALL"]))
        client.expunge()
        appended = client.append("Drafts", mail("Başkasının taslağı"))
    found = re.search(rb"APPENDUID \d+ (\d+)", appended)
    assert found is not None
    other_uid = int(found[1])
    OutgoingMessage.objects.filter(pk=draft.pk).update(server_draft_uid=other_uid)

    draft = outbox.outgoing_save(
        owner=alice.owner, mailbox=alice, values=values | {"subject": "Yeni"}, outgoing=draft
    )
    assert outbox.draft_to_server(outgoing_id=draft.pk)

    assert server_subjects(dovecot, login, "Drafts") == ["Başkasının taslağı", "Yeni"]
