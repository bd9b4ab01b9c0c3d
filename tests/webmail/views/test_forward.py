"""Forwarding over HTTP: the original's sanitised HTML and its attachments go along, byte for byte,
each removable before sending, and the message the SMTP server receives carries them (issue #13.5)."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from django.test import Client
from django.urls import reverse

from accounts.models import Mailbox
from fetcher import outbox
from fetcher.models import Message, OutgoingMessage, OutgoingState
from tests.conftest import MAIL_USERS
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona
from tests.servers.smtp import SmtpServer, start_smtp

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\nbutce tablosu\n"
DATA = bytes(range(256)) * 4  # every byte value: nothing may be re-encoded on the way
HTML = (
    '<p>Rakamlar <b>ekte</b>, <a href="https://ornek.com.tr/butce">tablo</a>.</p>'
    "<table><tr><td>Q1</td><td>1.250 TL</td></tr></table><script>alert(1)</script>"
    '<img src="x" onerror="alert(2)">'
)


def original_of(owner: Persona | Mailbox) -> Message:
    mailbox = owner.mailbox if isinstance(owner, Persona) else owner
    message: Message = stored(
        mailbox,
        mail(
            "Bütçe",
            sender="Bob Öz <bob@example.net>",
            body="Rakamlar ekte.\nQ1: 1.250 TL",
            html=HTML,
            attachments=[
                ("Bütçe tablosu.pdf", "application/pdf", PDF),
                ("veri.bin", "application/x-data", DATA),
            ],
        ),
    )[0]
    return message


def part_of(original: Message, filename: str) -> str:
    return str(original.attachments.get(filename=filename).part)


def forward(client: Client, mailbox: Mailbox, original: Message, url: str = "", **fields: Any) -> Any:
    data = {
        "mailbox": str(mailbox.pk),
        "to": "Cem <cem@example.net>",
        "subject": "Fwd: Bütçe",
        "text": "Cem, aşağıda.",
        "original": str(original.public_id),
        "mode": "forward",
        "action": "send",
    }
    return client.post(url or reverse("compose"), data | fields)


def sent_parts(raw: bytes) -> tuple[EmailMessage, dict[str, bytes]]:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    files = {part.get_filename() or "": part.get_content() for part in message.iter_attachments()}
    return message, files


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_the_forward_page_lists_the_originals_attachments_and_shows_it_below_an_empty_note(
    alice: Persona,
) -> None:
    original = original_of(alice)

    response = alice.client.get(reverse("compose"), {"forward": str(original.public_id)})
    page = response.content.decode()

    assert 'value="Fwd: Bütçe"' in page
    assert page.count('data-testid="attached-file"') == 2
    assert f'name="remove_part" value="{part_of(original, "veri.bin")}"' in page
    assert "Bütçe tablosu.pdf" in page
    assert 'data-testid="forwarded"' in page
    assert "&gt; Rakamlar ekte." in page
    assert response.context["form"].initial["text"] == ""  # the note starts empty, the original below


def test_a_forward_sends_the_originals_html_sanitised_and_its_attachments_byte_for_byte(
    alice: Persona,
) -> None:
    original = original_of(alice)

    assert forward(alice.client, alice.mailbox, original).status_code == 302

    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert outgoing.state == OutgoingState.QUEUED
    message, files = sent_parts(bytes(outgoing.raw or b""))
    assert files == {"Bütçe tablosu.pdf": PDF, "veri.bin": DATA}
    html = html_of(message)
    assert "Rakamlar <b>ekte</b>" in html
    assert "<td>Q1</td>" in html
    assert 'href="https://ornek.com.tr/butce"' in html
    assert "Cem, aşağıda." in html
    assert "Bob Öz &lt;bob@example.net&gt;" in html  # the heading, escaped
    assert "<script" not in html
    assert "alert" not in html
    text = text_of(message)
    assert text.startswith("Cem, aşağıda.")
    assert "> Rakamlar ekte." in text
    assert "Subject: Bütçe" in text


def test_a_ticked_attachment_of_the_forward_is_not_sent(alice: Persona) -> None:
    original = original_of(alice)

    forward(alice.client, alice.mailbox, original, remove_part=part_of(original, "veri.bin"))

    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert [a.filename for a in outgoing.attachments.all()] == ["Bütçe tablosu.pdf"]
    _message, files = sent_parts(bytes(outgoing.raw or b""))
    assert files == {"Bütçe tablosu.pdf": PDF}


def test_a_saved_forward_lists_its_attachments_and_a_ticked_one_goes_when_sent(alice: Persona) -> None:
    original = original_of(alice)
    saved = forward(alice.client, alice.mailbox, original, action="save")
    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert saved.url == reverse("compose_edit", args=[outgoing.public_id])
    data = outgoing.attachments.get(filename="veri.bin")

    page = alice.client.get(saved.url).content.decode()
    assert f'name="remove_attachment" value="{data.pk}"' in page
    assert 'data-testid="forwarded"' in page
    alice.client.post(
        saved.url,
        {"mailbox": str(alice.mailbox.pk), "to": "cem@example.net", "subject": "Fwd: Bütçe", "text": "Al"}
        | {"remove_attachment": str(data.pk), "action": "send"},
    )

    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingState.QUEUED
    message, files = sent_parts(bytes(outgoing.raw or b""))
    assert files == {"Bütçe tablosu.pdf": PDF}  # copied once, not again when the draft was saved
    assert "Rakamlar <b>ekte</b>" in html_of(message)


def test_the_autosave_makes_the_forward_once_and_the_form_removes_a_ticked_part(alice: Persona) -> None:
    original = original_of(alice)
    typed = {"mailbox": str(alice.mailbox.pk), "to": "cem@example.net", "subject": "Fwd: Bütçe"}
    first = alice.client.post(
        reverse("compose_autosave"), typed | {"original": str(original.public_id), "mode": "forward"}
    ).json()
    alice.client.post(first["autosave_url"], typed | {"original": str(original.public_id), "mode": "forward"})
    draft = OutgoingMessage.objects.get(owner=alice.user)
    assert draft.attachments.count() == 2  # two saves, one copy
    assert "> Rakamlar ekte." in draft.forwarded_text

    forward(
        alice.client,
        alice.mailbox,
        original,
        url=first["edit_url"],
        remove_part=part_of(original, "veri.bin"),
    )

    draft.refresh_from_db()
    assert draft.state == OutgoingState.QUEUED
    assert [a.filename for a in draft.attachments.all()] == ["Bütçe tablosu.pdf"]


def test_nobody_removes_another_persons_attachment(alice: Persona, bob: Persona) -> None:
    forward(alice.client, alice.mailbox, original_of(alice), action="save")
    hers = OutgoingMessage.objects.get(owner=alice.user)
    pks = [str(a.pk) for a in hers.attachments.all()]
    bob.client.post(
        reverse("compose"),
        {"mailbox": str(bob.mailbox.pk), "to": "x@example.org", "action": "save", "remove_attachment": pks},
    )

    assert hers.attachments.count() == 2
    assert bob.client.get(reverse("compose_edit", args=[hers.public_id])).status_code == 404
    theirs = original_of(alice)
    assert bob.client.get(reverse("compose"), {"forward": str(theirs.public_id)}).status_code == 404


def test_a_plain_forward_keeps_to_plain_text(alice: Persona) -> None:
    original = stored(alice.mailbox, mail("Not", sender="Bob <bob@example.net>", body="Yalnız metin."))[0]

    forward(alice.client, alice.mailbox, original)

    message, files = sent_parts(bytes(OutgoingMessage.objects.get(owner=alice.user).raw or b""))
    assert files == {}
    assert message.get_body(("html",)) is None
    assert "> Yalnız metin." in text_of(message)


# --- through the outbox to a real SMTP server ------------------------------------------------------


@pytest.fixture
def smtp(mail_ca: trustme.CA) -> Iterator[SmtpServer]:
    server = start_smtp(mail_ca, MAIL_USERS, "plain")
    yield server
    server.stop()


@pytest.fixture
def sending(alice: Persona, smtp: SmtpServer, local_mail_settings: None) -> Mailbox:
    """Alice's mailbox that sends through the test SMTP server, with no undo window to wait for."""
    alice.user.undo_seconds = 0
    alice.user.save(update_fields=["undo_seconds"])
    return account_mailbox(
        ("alice", MAIL_USERS["alice"]),
        995,
        owner=alice.user,
        email_address="alice@example.com",
        smtp_port=smtp.port,
        smtp_security="none",
    )


@pytest.mark.mailservers
def test_the_delivered_forward_carries_the_attachments_left_and_not_the_removed_one(
    alice: Persona, sending: Mailbox, smtp: SmtpServer
) -> None:
    original = original_of(sending)
    forward(alice.client, sending, original, remove_part=part_of(original, "veri.bin"))
    outgoing = OutgoingMessage.objects.get(owner=alice.user)

    assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "sent"

    [delivery] = smtp.handler.received
    message, files = sent_parts(delivery.content)
    assert files == {"Bütçe tablosu.pdf": PDF}
    assert b"veri.bin" not in delivery.content
    assert "Rakamlar <b>ekte</b>" in html_of(message)
    assert delivery.recipients == ["cem@example.net"]
