"""Sending through a real SMTP server (aiosmtpd): once, with its fixed Message-ID, retried after 4xx,
failed after 5xx with the server's words, never with injected headers, Bcc only in the envelope."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any
from unittest import mock

import pytest
import trustme
from django.utils import timezone

from accounts.models import Mailbox
from fetcher import outbox
from fetcher.mail import compose, mime
from fetcher.mail.compose import ComposeError
from fetcher.models import Message, OutgoingAttachment, OutgoingMessage, OutgoingState
from tests.conftest import MAIL_USERS
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona
from tests.servers.proxy import FaultyProxy
from tests.servers.smtp import ScriptedHandler, SmtpServer, start_smtp

pytestmark = [pytest.mark.django_db, pytest.mark.mailservers]


@pytest.fixture
def smtp(mail_ca: trustme.CA, request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    answers = getattr(request, "param", [])
    server = start_smtp(mail_ca, MAIL_USERS, "plain", ScriptedHandler(answers=list(answers)))
    yield server
    server.stop()


@pytest.fixture
def smtp_mailbox(alice: Persona, smtp: SmtpServer, local_mail_settings: None) -> Mailbox:
    """alice's mailbox, sending through the test SMTP server."""
    return account_mailbox(
        ("alice", MAIL_USERS["alice"]),
        995,
        email_address="alice@example.com",
        display_name="Alice Şahin",
        smtp_port=smtp.port,
        smtp_security="none",
        owner=alice.user,
    )


def queued(mailbox: Mailbox, **values: str) -> OutgoingMessage:
    defaults = {"to": "Bob Öztürk <bob@example.net>", "subject": "Merhaba", "text": "Gövde"}
    outgoing = outbox.outgoing_save(owner=mailbox.owner, mailbox=mailbox, values=defaults | values)
    return outbox.outgoing_queue(outgoing=outgoing, send_at=timezone.now())


def received(server: SmtpServer) -> list[Any]:
    return server.handler.received


def test_a_message_leaves_once_with_its_fixed_id_and_bcc_only_in_the_envelope(
    smtp_mailbox: Mailbox, smtp: SmtpServer
) -> None:
    outgoing = queued(smtp_mailbox, cc="cem@example.net", bcc="Gizli <gizli@example.org>")

    assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "sent"
    assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "busy"  # a second task sends nothing

    [delivery] = received(smtp)
    headers = message_from_bytes(delivery.content, policy=policy.default)
    assert headers["Message-ID"] == outgoing.message_id
    assert headers["Bcc"] is None
    assert b"gizli@example.org" not in delivery.content
    assert delivery.recipients == ["bob@example.net", "cem@example.net", "gizli@example.org"]
    assert delivery.mail_from == "alice@example.com"
    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingState.SENT
    sent = Message.objects.get(mailbox=smtp_mailbox, folder__role="sent")  # POP3: kept in Postane's own Sent
    assert bytes(sent.raw) == bytes(outgoing.raw or b"")
    assert sent.seen


def test_redating_changes_the_date_field_alone() -> None:
    head = b"From: a@example.com\r\n%bSubject: Date: no\r\n\r\nDate: body\r\n"
    folded = b"Date: Mon, 30 Nov 2026\r\n 10:00:00 +0300\r\n"
    when = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)

    assert compose.redated(head % folded, when) == head % b"Date: Tue, 01 Dec 2026 18:00:00 +0000\r\n"


def test_a_message_written_earlier_is_dated_when_it_leaves(smtp_mailbox: Mailbox, smtp: SmtpServer) -> None:
    written = timezone.now() - timedelta(hours=2)
    with mock.patch("django.utils.timezone.now", return_value=written):  # scheduled two hours ago
        outgoing = queued(smtp_mailbox)
    assert email.utils.parsedate_to_datetime(
        message_from_bytes(bytes(outgoing.raw or b""), policy=policy.default)["Date"]
    ) == written.replace(microsecond=0)

    assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "sent"

    [delivery] = received(smtp)
    dated = email.utils.parsedate_to_datetime(
        message_from_bytes(delivery.content, policy=policy.default)["Date"]
    )
    assert abs(dated - timezone.now()) < timedelta(minutes=1)
    outgoing.refresh_from_db()
    sent = Message.objects.get(mailbox=smtp_mailbox, folder__role="sent")
    assert bytes(sent.raw) == bytes(outgoing.raw or b"")  # what left, as it left
    assert delivery.content.replace(b"\r\n", b"\n") == bytes(sent.raw).replace(b"\r\n", b"\n")


def test_a_message_forwarded_as_an_attachment_arrives_as_it_was_in_8bit_never_base64(
    smtp_mailbox: Mailbox, smtp: SmtpServer
) -> None:
    original = mail("Sözleşme", body="Iğdır şubesi: imzalı sözleşme ektedir.\n")
    assert not original.isascii()  # raw 8-bit text
    draft = outbox.outgoing_save(
        owner=smtp_mailbox.owner,
        mailbox=smtp_mailbox,
        values={"to": "bob@example.net", "subject": "İlt: Sözleşme"},
    )
    OutgoingAttachment.objects.create(
        outgoing=draft,
        filename="Sözleşme.eml",
        content_type="message/rfc822",
        size=len(original),
        content=original,
    )
    outbox.outgoing_queue(outgoing=draft, send_at=timezone.now())

    assert outbox.outgoing_deliver(outgoing_id=draft.pk) == "sent"

    [delivery] = received(smtp)
    [part] = [
        p
        for p in message_from_bytes(delivery.content, policy=policy.default).walk()
        if p.get_content_type() == "message/rfc822"
    ]
    assert part["Content-Transfer-Encoding"] == "8bit"
    assert part.get_filename() == "Sözleşme.eml"
    assert part.get_content()["Subject"] == "Sözleşme"

    def crlf(raw: bytes) -> bytes:
        return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    assert crlf(original) + b"\r\n--" in crlf(delivery.content)  # byte for byte, then the boundary
    assert b"base64" not in delivery.content


@pytest.mark.parametrize("smtp", [["451 4.3.0 Try again later"]], indirect=True)
def test_a_temporary_refusal_is_retried_with_the_same_bytes_and_delivers_one_copy(
    smtp_mailbox: Mailbox, smtp: SmtpServer
) -> None:
    outgoing = queued(smtp_mailbox)

    assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "queued"
    outgoing.refresh_from_db()
    assert "451" in outgoing.last_error
    assert outgoing.send_after is not None
    assert outgoing.send_after > timezone.now()  # backoff
    first_bytes = bytes(outgoing.raw or b"")
    OutgoingMessage.objects.filter(pk=outgoing.pk).update(send_after=timezone.now())

    assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "sent"

    assert len(received(smtp)) == 1
    assert received(smtp)[0].content.replace(b"\r\n", b"\n") == first_bytes.replace(b"\r\n", b"\n")
    assert smtp.handler.attempts == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("smtp", [["550 5.1.1 Mailbox unavailable: bob"]], indirect=True)
def test_a_permanent_refusal_marks_the_message_failed_with_the_servers_words(
    smtp_mailbox: Mailbox, smtp: SmtpServer
) -> None:
    outgoing = queued(smtp_mailbox)

    assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "failed"

    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingState.FAILED
    assert "550 5.1.1 Mailbox unavailable: bob" in outgoing.last_error
    assert received(smtp) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", "bob@example.net\r\nBcc: evil@example.org"),
        ("to", "Bob\n <bob@example.net>"),
        ("cc", "cem@example.net\x00"),
        ("subject", "Merhaba\r\nBcc: evil@example.org"),
        ("to", "not an address"),
    ],
)
def test_injection_and_bad_addresses_are_refused_with_the_field_named(
    smtp_mailbox: Mailbox, smtp: SmtpServer, field: str, value: str
) -> None:
    with pytest.raises(ComposeError) as refused:
        outbox.outgoing_save(
            owner=smtp_mailbox.owner, mailbox=smtp_mailbox, values={"to": "bob@example.net", field: value}
        )

    assert refused.value.field == field
    assert not OutgoingMessage.objects.exists()
    assert received(smtp) == []


def test_undo_inside_the_window_sends_nothing_and_brings_back_the_draft(
    smtp_mailbox: Mailbox, smtp: SmtpServer
) -> None:
    draft = outbox.outgoing_save(
        owner=smtp_mailbox.owner, mailbox=smtp_mailbox, values={"to": "bob@example.net", "text": "x"}
    )
    outbox.outgoing_queue(outgoing=draft)  # waits WEBMAIL_UNDO_SECONDS

    assert outbox.outgoing_undo(outgoing=draft)
    OutgoingMessage.objects.filter(pk=draft.pk).update(send_after=timezone.now() - timedelta(seconds=1))

    assert outbox.outgoing_deliver(outgoing_id=draft.pk) == "busy"
    draft.refresh_from_db()
    assert draft.state == OutgoingState.DRAFT
    assert received(smtp) == []


def test_turkish_subject_and_body_arrive_exactly_and_a_reply_threads_and_marks_answered(
    smtp_mailbox: Mailbox, smtp: SmtpServer
) -> None:
    original = stored(smtp_mailbox, mail("Bütçe", sender="Bob <bob@example.net>"))[0]
    text = "Merhaba,\nğüşıöç İĞÜŞÖÇ — ışık\n"
    draft = outbox.outgoing_save(
        owner=smtp_mailbox.owner,
        mailbox=smtp_mailbox,
        values={"to": "Bob <bob@example.net>", "subject": "YNT: Bütçe ğüşıöç İĞÜŞÖÇ", "text": text},
        replying_to=original,
    )
    outbox.outgoing_queue(outgoing=draft, send_at=timezone.now())

    outbox.outgoing_deliver(outgoing_id=draft.pk)

    parsed = mime.parse(received(smtp)[0].content)
    assert parsed.subject == "YNT: Bütçe ğüşıöç İĞÜŞÖÇ"
    assert parsed.text.replace("\r\n", "\n") == text
    assert parsed.in_reply_to == original.message_id
    assert parsed.references[-1] == original.message_id
    original.refresh_from_db()
    assert original.answered


@pytest.mark.parametrize("fault", ["cut", "stall"])
def test_a_dropped_or_silent_connection_is_retried_and_one_copy_arrives(
    smtp: SmtpServer, local_mail_settings: None, fault: str
) -> None:
    proxy = FaultyProxy(target_port=smtp.port)
    proxy.cut_after, proxy.stall_after = (10, None) if fault == "cut" else (None, 10)  # inside the greeting
    proxy.start()
    try:
        through: dict[str, Any] = {
            "email_address": "alice@example.com",
            "smtp_port": proxy.port,
            "smtp_security": "none",
        }
        mailbox = account_mailbox(("alice", MAIL_USERS["alice"]), 995, **through)
        outgoing = queued(mailbox)

        assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "queued"
        assert received(smtp) == []
        proxy.cut_after = proxy.stall_after = None
        OutgoingMessage.objects.filter(pk=outgoing.pk).update(send_after=timezone.now())

        assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "sent"
        assert len(received(smtp)) == 1
    finally:
        proxy.stop()


def test_a_large_message_on_a_line_slower_than_the_time_out_still_leaves(
    smtp: SmtpServer, local_mail_settings: None, settings: Any
) -> None:
    settings.WEBMAIL_MAIL_TIMEOUT = 2  # the whole transfer takes longer; no single wait does
    proxy = FaultyProxy(target_port=smtp.port, bytes_per_second=200_000).start()
    try:
        mailbox = account_mailbox(
            ("alice", MAIL_USERS["alice"]), 995, smtp_port=proxy.port, smtp_security="none"
        )
        outgoing = queued(mailbox, text="Uzun satır ğüşıöç\n" * 12_000)
        assert len(bytes(OutgoingMessage.objects.get(pk=outgoing.pk).raw or b"")) > 400_000

        assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "sent"
    finally:
        proxy.stop()
    assert len(received(smtp)) == 1


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_mail_leaves_over_starttls_and_implicit_tls_with_the_certificate_checked(
    smtp_servers: dict[str, SmtpServer], local_mail_settings: None, mode: str
) -> None:
    server = smtp_servers[mode]
    before = len(server.handler.received)
    secured: dict[str, Any] = {
        "email_address": "alice@example.com",
        "smtp_port": server.port,
        "smtp_security": mode,
    }
    mailbox = account_mailbox(("alice", MAIL_USERS["alice"]), 995, **secured)
    outgoing = queued(mailbox)

    assert outbox.outgoing_deliver(outgoing_id=outgoing.pk) == "sent"

    assert len(server.handler.received) == before + 1
    assert server.handler.received[-1].mail_from == "alice@example.com"


@pytest.mark.parametrize("offered", [True, False])
def test_smtputf8_is_used_when_an_address_needs_it_and_refused_clearly_when_not_offered(
    mail_ca: trustme.CA, local_mail_settings: None, offered: bool
) -> None:
    server = start_smtp(mail_ca, MAIL_USERS, "plain", smtputf8=offered)
    try:
        through: dict[str, Any] = {"smtp_port": server.port, "smtp_security": "none"}
        mailbox = account_mailbox(
            ("alice", MAIL_USERS["alice"]), 995, email_address="alice@example.com", **through
        )
        outgoing = queued(mailbox, to="Çiğdem <çiğdem@örnek.com.tr>")

        state = outbox.outgoing_deliver(outgoing_id=outgoing.pk)

        if offered:
            assert state == "sent"
            assert server.handler.received[0].recipients == ["çiğdem@örnek.com.tr"]
        else:
            outgoing.refresh_from_db()
            assert (state, "SMTPUTF8" in outgoing.last_error) == ("failed", True)
            assert server.handler.received == []
    finally:
        server.stop()


@pytest.mark.parametrize(
    "signature", ["Alice Şahin\nMuhasebe", "-- \nAlice Şahin\nMuhasebe", "--\nAlice Şahin\nMuhasebe"]
)
def test_the_signature_follows_one_separator_in_the_text_and_in_the_html(
    smtp_mailbox: Mailbox, smtp: SmtpServer, signature: str
) -> None:
    Mailbox.objects.filter(pk=smtp_mailbox.pk).update(signature=signature)
    draft = outbox.outgoing_save(
        owner=smtp_mailbox.owner,
        mailbox=Mailbox.objects.get(pk=smtp_mailbox.pk),
        values={"to": "bob@example.net", "subject": "İmzalı", "html": "<p>Merhaba <b>Bob</b></p>"},
    )
    outbox.outgoing_queue(outgoing=draft, send_at=timezone.now())

    assert outbox.outgoing_deliver(outgoing_id=draft.pk) == "sent"

    [delivery] = received(smtp)
    message = message_from_bytes(delivery.content, policy=policy.default)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.count("-- \n") == 1
    assert text.rstrip().endswith("-- \nAlice Şahin\nMuhasebe")
    assert "Alice Şahin<br>Muhasebe" in html
    assert html.count("-- ") == 1
