"""A draft discarded in Postane leaves the IMAP server's Drafts with the next sync, whether written here
(its copy put there by outbox.draft_to_server, and perhaps synced back) or by another mail client."""

from __future__ import annotations

import pytest
from imapclient import IMAPClient

from accounts.models import Mailbox
from fetcher import outbox
from fetcher.mail import mime
from fetcher.mail.imap import ImapSession
from fetcher.models import ImapDeletion, Message, OutgoingMessage
from fetcher.services import drafts_discard
from tests.factories import in_folder, mail, run_sync

pytestmark = [pytest.mark.django_db, pytest.mark.mailservers]  # mailbox, server: tests/fetcher/conftest.py


def subjects_on_server(server: IMAPClient, folder: str) -> list[str]:
    server.select_folder(folder, readonly=True)
    found = server.fetch(server.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return sorted(
        mime.parse(data[b"BODY[HEADER.FIELDS (SUBJECT)]"] + b"\r\n").subject for data in found.values()
    )


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the writing had settled: outbox.draft_to_server copies a draft at once."""
    monkeypatch.setattr(outbox, "DRAFT_TO_SERVER_DELAY", 0.0)


def written_here(mailbox: Mailbox, subject: str) -> OutgoingMessage:
    values = {"to": "cem@example.net", "subject": subject, "text": "Yarım kalan"}
    draft = outbox.outgoing_save(owner=mailbox.owner, mailbox=mailbox, values=values)
    assert outbox.draft_to_server(outgoing_id=draft.pk)
    return OutgoingMessage.objects.select_related("server_draft_folder").get(pk=draft.pk)


def test_a_discarded_drafts_copy_leaves_the_servers_drafts_with_the_next_sync(
    mailbox: Mailbox, server: IMAPClient, settled: None
) -> None:
    run_sync(mailbox)  # learns the server's Drafts folder
    draft = written_here(mailbox, "Vazgeçilen")
    kept = written_here(mailbox, "Kalan")
    assert subjects_on_server(server, "Drafts") == ["Kalan", "Vazgeçilen"]

    assert drafts_discard(drafts=[draft]) == 1
    run_sync(mailbox)

    assert subjects_on_server(server, "Drafts") == ["Kalan"]
    assert not ImapDeletion.objects.exists()
    assert list(OutgoingMessage.objects.all()) == [kept]


def test_a_draft_synced_back_here_is_discarded_with_its_copy_and_does_not_come_back(
    mailbox: Mailbox, server: IMAPClient, settled: None
) -> None:
    run_sync(mailbox)
    draft = written_here(mailbox, "Geri gelmesin")
    assert run_sync(mailbox).fetched == 1  # the server's copy, stored here in Drafts
    assert [m.message_id for m in in_folder(mailbox, "Drafts")] == [draft.message_id]

    drafts_discard(drafts=[draft])
    run_sync(mailbox)

    assert subjects_on_server(server, "Drafts") == []
    assert in_folder(mailbox, "Drafts") == []
    assert run_sync(mailbox).fetched == 0


def test_a_draft_another_client_wrote_is_discarded_on_the_server_too(
    mailbox: Mailbox, server: IMAPClient
) -> None:
    server.append("Drafts", mail("Telefonda yazılan"), flags=["\\Draft"])
    server.append("Drafts", mail("Telefonda kalan"), flags=["\\Draft"])
    run_sync(mailbox)
    discarded, kept = sorted(in_folder(mailbox, "Drafts"), key=lambda m: m.subject != "Telefonda yazılan")

    assert drafts_discard(messages=[Message.objects.select_related("folder").get(pk=discarded.pk)]) == 1
    run_sync(mailbox)

    assert subjects_on_server(server, "Drafts") == ["Telefonda kalan"]
    assert in_folder(mailbox, "Drafts") == [kept]


def test_a_draft_discarded_while_its_copy_is_on_the_way_leaves_no_copy(
    mailbox: Mailbox, server: IMAPClient, settled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_sync(mailbox)
    values = {"to": "cem@example.net", "subject": "Yolda silinen", "text": "Yarım kalan"}
    draft = outbox.outgoing_save(owner=mailbox.owner, mailbox=mailbox, values=values)
    append = ImapSession.append

    def append_then_discarded(session: ImapSession, *args: object, **kwargs: object) -> object:
        placed = append(session, *args, **kwargs)  # type: ignore[arg-type]
        drafts_discard(drafts=[draft])  # the person presses Discard while the task is at the server
        return placed

    monkeypatch.setattr(ImapSession, "append", append_then_discarded)
    assert outbox.draft_to_server(outgoing_id=draft.pk)

    assert subjects_on_server(server, "Drafts") == []
    assert not OutgoingMessage.objects.exists()
