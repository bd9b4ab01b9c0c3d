"""Writing mail over HTTP: compose, reply, reply all, forward, drafts, the outbox and undo."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import Mailbox
from fetcher.models import Folder, Message, OutgoingMessage, OutgoingState
from tests.factories import mail, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db


def send(client: Client, mailbox: Mailbox, **fields: Any) -> Any:
    data = {"mailbox": str(mailbox.pk), "to": "Bob <bob@example.net>", "subject": "Merhaba", "text": "Gövde"}
    return client.post(reverse("compose"), data | fields)


def test_a_message_is_queued_shown_in_the_outbox_and_undone_back_to_a_draft(alice: Persona) -> None:
    response = send(alice.client, alice.mailbox, action="send")

    assert response.status_code == 302
    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert outgoing.state == OutgoingState.QUEUED
    assert outgoing.raw
    outbox = alice.client.get(reverse("outbox")).content.decode()
    assert "Merhaba" in outbox
    assert 'data-testid="undo"' in outbox

    alice.client.post(reverse("outgoing_undo", args=[outgoing.public_id]))

    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingState.DRAFT
    page = alice.client.get(reverse("compose_edit", args=[outgoing.public_id])).content.decode()
    assert "Bob &lt;bob@example.net&gt;" in page


def test_a_draft_is_saved_with_its_attachment_and_not_sent(alice: Persona) -> None:
    upload = SimpleUploadedFile("Çalışma planı.pdf", b"%PDF-1.4", content_type="application/pdf")

    send(alice.client, alice.mailbox, action="save", attachments=upload)

    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert outgoing.state == OutgoingState.DRAFT
    assert [(a.filename, bytes(a.content)) for a in outgoing.attachments.all()] == [
        ("Çalışma planı.pdf", b"%PDF-1.4")
    ]


def test_attachments_over_the_limit_are_refused(alice: Persona, settings: Any) -> None:
    settings.WEBMAIL_MAX_ATTACHMENTS_MB = 1
    upload = SimpleUploadedFile("büyük.bin", b"x" * (1024 * 1024 + 1))

    response = send(alice.client, alice.mailbox, action="send", attachments=upload)

    assert response.status_code == 200
    assert 'data-testid="error-attachments"' in response.content.decode()
    assert not OutgoingMessage.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", "bob@example.net\r\nBcc: evil@example.org"),
        ("subject", "x\nBcc: evil@example.org"),
        ("cc", "nope"),
    ],
)
def test_header_injection_is_refused_on_the_form(alice: Persona, field: str, value: str) -> None:
    response = send(alice.client, alice.mailbox, action="send", **{field: value})

    assert response.status_code == 200
    assert f'data-testid="error-{field}"' in response.content.decode()
    assert not OutgoingMessage.objects.exists()


def test_reply_and_reply_all_start_right_and_thread(alice: Persona) -> None:
    original = stored(
        alice.mailbox,
        mail(
            "Bütçe",
            sender="Bob Öz <bob@example.net>",
            to="alice@example.com, Cem <cem@example.net>",
            headers="Cc: dilek@example.org",
            body="Rakamlar ekte.",
        ),
    )[0]
    client = alice.client

    reply = client.get(reverse("compose"), {"reply": str(original.public_id)}).content.decode()
    reply_all = client.get(reverse("compose"), {"all": str(original.public_id)}).content.decode()
    forward = client.get(reverse("compose"), {"forward": str(original.public_id)}).content.decode()

    assert 'value="Re: Bütçe"' in reply
    assert "Bob Öz &lt;bob@example.net&gt;" in reply
    assert "&gt; Rakamlar ekte." in reply
    assert "cem@example.net" in reply_all
    assert "dilek@example.org" in reply_all
    assert "alice@example.com" not in reply_all.split('name="to"')[1].split("</textarea>")[0].split(">")[0]
    assert 'value="Fwd: Bütçe"' in forward
    client.post(
        reverse("compose"),
        {
            "mailbox": str(alice.mailbox.pk),
            "to": "bob@example.net",
            "subject": "Re: Bütçe",
            "text": "Tamam",
            "original": str(original.public_id),
            "mode": "reply",
            "action": "send",
        },
    )
    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert outgoing.in_reply_to == original.message_id
    assert outgoing.replying_to == original


def test_someone_elses_draft_and_message_are_404(alice: Persona, bob: Persona) -> None:
    send(bob.client, bob.mailbox, action="save")
    draft = OutgoingMessage.objects.get(owner=bob.user)
    secret = stored(bob.mailbox, mail("Gizli"))[0]

    assert alice.client.get(reverse("compose_edit", args=[draft.public_id])).status_code == 404
    assert alice.client.post(reverse("outgoing_undo", args=[draft.public_id])).status_code == 404
    assert alice.client.get(reverse("compose"), {"reply": str(secret.public_id)}).status_code == 404
    assert send(alice.client, bob.mailbox, action="send").status_code == 200  # not alice's to choose
    assert not OutgoingMessage.objects.filter(owner=alice.user).exists()


def test_a_failed_message_can_be_edited_and_sent_again(alice: Persona) -> None:
    send(alice.client, alice.mailbox, action="send")
    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    OutgoingMessage.objects.filter(pk=outgoing.pk).update(
        state=OutgoingState.FAILED, last_error="550 no such user"
    )
    assert "550 no such user" in alice.client.get(reverse("outbox")).content.decode()

    reopened = alice.client.post(reverse("outgoing_reopen", args=[outgoing.public_id]))
    assert reopened["Location"] == reverse("compose_edit", args=[outgoing.public_id])
    alice.client.post(
        reverse("compose_edit", args=[outgoing.public_id]),
        {"mailbox": str(alice.mailbox.pk), "to": "bob@example.org", "subject": "Merhaba", "action": "send"},
    )

    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingState.QUEUED
    assert outgoing.to == [{"name": "", "address": "bob@example.org"}]


def test_opening_a_failed_message_changes_nothing_until_the_button_is_pressed(
    alice: Persona, bob: Persona
) -> None:
    send(alice.client, alice.mailbox, action="send")
    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    OutgoingMessage.objects.filter(pk=outgoing.pk).update(state=OutgoingState.FAILED, last_error="550 no")
    edit = reverse("compose_edit", args=[outgoing.public_id])
    reopen = reverse("outgoing_reopen", args=[outgoing.public_id])

    opened = alice.client.get(edit)
    posted_elsewhere = alice.client.post(
        edit, {"mailbox": str(alice.mailbox.pk), "to": "x@example.org", "action": "send"}
    )

    assert opened.status_code == posted_elsewhere.status_code == 302
    assert OutgoingMessage.objects.get(pk=outgoing.pk).state == OutgoingState.FAILED
    assert f'action="{reopen}"' in alice.client.get(reverse("outbox")).content.decode()
    assert alice.client.get(reopen).status_code == 405
    assert bob.client.post(reopen).status_code == 404
    assert OutgoingMessage.objects.get(pk=outgoing.pk).state == OutgoingState.FAILED


def test_forward_as_attachment_sends_the_original_as_an_eml(alice: Persona) -> None:
    original = stored(alice.mailbox, mail("Sözleşme", sender="Bob <bob@example.net>", body="Ekte."))[0]
    page = alice.client.get(reverse("compose"), {"attach": str(original.public_id)}).content.decode()
    assert 'data-testid="forwarded-as-attachment"' in page

    fields = {
        "mailbox": str(alice.mailbox.pk),
        "to": "cem@example.net",
        "subject": "Fwd: Sözleşme",
        "action": "send",
    }
    alice.client.post(
        reverse("compose"), fields | {"original": str(original.public_id), "mode": "attach", "action": "send"}
    )

    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    [attached] = outgoing.attachments.all()
    assert (attached.filename, attached.content_type) == ("Sözleşme.eml", "message/rfc822")
    assert bytes(attached.content) == bytes(Message.objects.get(pk=original.pk).raw)
    assert outgoing.in_reply_to == ""


def test_a_message_forwarded_as_attachment_gets_a_name_without_bidi_controls(alice: Persona) -> None:
    original = stored(alice.mailbox, mail("Fatura\u202efdp.exe"))[0]
    fields = {"mailbox": str(alice.mailbox.pk), "to": "cem@example.net", "subject": "Fwd", "action": "save"}

    alice.client.post(reverse("compose"), fields | {"original": str(original.public_id), "mode": "attach"})

    [attached] = OutgoingMessage.objects.get(owner=alice.user).attachments.all()
    assert attached.filename == "Faturafdp.exe.eml"


def test_autosave_keeps_what_it_can_and_never_refuses(alice: Persona, bob: Persona) -> None:
    url = reverse("compose_autosave")
    fields = {"mailbox": str(alice.mailbox.pk), "to": "dilek@example.net", "subject": "Yarım", "text": "Yazı"}

    first = alice.client.post(url, fields).json()
    second = alice.client.post(
        first["autosave_url"], fields | {"to": "dil", "subject": "Yarım\r\nBcc: x@y.z"}
    ).json()

    assert first["id"] == second["id"]
    draft = OutgoingMessage.objects.get(owner=alice.user)
    assert draft.to == [{"name": "", "address": "dilek@example.net"}]  # "dil" is not an address yet
    assert draft.subject == "Yarım Bcc: x@y.z"  # no line break ever reaches a header
    assert draft.state == OutgoingState.DRAFT
    assert bob.client.post(first["autosave_url"], fields).status_code == 404


def test_address_suggestions_rank_people_by_how_often_mail_went_between_them(
    alice: Persona, bob: Persona
) -> None:
    stored(alice.mailbox, *[mail(f"n{n}", sender="Mehmet Öz <mehmet@example.com>") for n in range(2)])
    stored(alice.mailbox, mail("x", sender="Meltem Kaya <meltem@example.org>"))
    stored(bob.mailbox, *[mail(f"b{n}", sender="Mert <mert@example.net>") for n in range(5)])
    send(alice.client, alice.mailbox, action="send", to="Meltem Kaya <meltem@example.org>")
    OutgoingMessage.objects.update(state=OutgoingState.SENT)
    send(alice.client, alice.mailbox, action="send", to="meltem@example.org")
    OutgoingMessage.objects.update(state=OutgoingState.SENT)

    found = alice.client.get(reverse("address_suggestions"), {"q": "me"}).json()["suggestions"]

    assert found == ["Meltem Kaya <meltem@example.org>", "Mehmet Öz <mehmet@example.com>"]
    assert alice.client.get(reverse("address_suggestions"), {"q": "kaya"}).json()["suggestions"] == [
        "Meltem Kaya <meltem@example.org>"
    ]


def test_drafts_written_here_are_listed_in_drafts(alice: Persona, bob: Persona) -> None:
    send(alice.client, alice.mailbox, action="save", subject="Yarım kalan")
    send(bob.client, bob.mailbox, action="save", subject="Bob'un taslağı")

    page = alice.client.get(reverse("mail_view", args=["drafts"])).content.decode()

    assert 'data-draft="' in page  # in the one list, beside the servers' drafts
    assert "Yarım kalan" in page
    assert "taslağı" not in page


def test_rich_text_is_sanitised_and_sent_beside_a_plain_text_part(alice: Persona) -> None:
    html = '<div>Merhaba <strong>Bob</strong><script>alert(1)</script><img src=x onerror="steal()"></div>'

    send(alice.client, alice.mailbox, action="send", rich="on", html=html, text="")

    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert "<strong>Bob</strong>" in outgoing.html_body
    assert "script" not in outgoing.html_body
    assert "onerror" not in outgoing.html_body
    assert outgoing.text_body.strip() == "Merhaba Bob"
    raw = bytes(outgoing.raw or b"")
    assert b"multipart/alternative" in raw
    assert b"text/html" in raw
    assert b"text/plain" in raw


def test_the_undo_window_is_each_persons_own_setting(alice: Persona) -> None:
    page = alice.client.get(reverse("preferences")).content.decode()
    assert 'value="10" selected' in page  # the site's default until the person chooses

    alice.client.post(reverse("preferences"), {"undo_seconds": "30", "conversations": "on"})
    send(alice.client, alice.mailbox, action="send")

    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert outgoing.send_after is not None
    wait = (outgoing.send_after - outgoing.updated_at).total_seconds()
    assert 29 < wait <= 30


def test_a_draft_and_its_copy_in_the_servers_drafts_are_listed_once(alice: Persona) -> None:
    send(alice.client, alice.mailbox, action="save", subject="Tek sefer")
    draft = OutgoingMessage.objects.get(owner=alice.user)
    copy = stored(alice.mailbox, mail("Tek sefer", headers=f"Message-ID: {draft.message_id}"))[0]
    drafts = Folder.objects.create(mailbox=alice.mailbox, name="Drafts", role="drafts")
    Message.objects.filter(pk=copy.pk).update(folder=drafts)

    page = alice.client.get(reverse("mail_view", args=["drafts"])).content.decode()

    assert page.count("Tek sefer") == 1
