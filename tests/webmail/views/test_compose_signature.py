"""Compose shows the chosen mailbox's signature under the body, as it will be sent, and never in
the body itself: sending adds it, once."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest
from django.urls import reverse

from accounts.models import Mailbox
from fetcher.models import OutgoingMessage
from tests.factories import account_mailbox
from tests.personas import Persona

pytestmark = pytest.mark.django_db

SIGNATURE = "Alice Şahin\nMuhasebe <b>bölümü</b>"
SHOWN = "-- \nAlice Şahin\nMuhasebe &lt;b&gt;bölümü&lt;/b&gt;"


def signed_mailbox(alice: Persona, signature: str = SIGNATURE) -> Mailbox:
    Mailbox.objects.filter(pk=alice.mailbox.pk).update(signature=signature)
    return alice.mailbox


def shown_signature(page: str) -> str:
    section = re.search(r'<section class="field signature"[^>]*>.*?</section>', page, re.DOTALL)
    assert section is not None, "no signature section"
    return section[0]


def test_compose_shows_the_signature_under_the_body_with_its_separator(alice: Persona) -> None:
    signed_mailbox(alice)

    page = alice.client.get(reverse("compose")).content.decode()

    assert SHOWN in shown_signature(page)
    assert page.index('id="id_text"') < page.index('data-testid="signature"')


def test_the_signature_is_not_put_into_the_body(alice: Persona) -> None:
    signed_mailbox(alice)

    page = alice.client.get(reverse("compose")).content.decode()

    textarea = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert textarea is not None
    assert "Muhasebe" not in textarea[1]


def test_a_draft_shows_the_signature_of_its_own_mailbox(alice: Persona) -> None:
    signed_mailbox(alice)
    other = account_mailbox(("alice-ev", "unused"), 995, owner=alice.user, name="Ev", signature="Ev adresim")
    alice.client.post(reverse("compose"), {"mailbox": str(other.pk), "text": "Taslak", "action": "save"})
    draft = OutgoingMessage.objects.get(owner=alice.user)

    page = alice.client.get(reverse("compose_edit", args=[draft.public_id])).content.decode()

    assert "-- \nEv adresim" in shown_signature(page)
    assert "Muhasebe" not in shown_signature(page)
    assert "Muhasebe" in page  # in the other mailbox's entry of the list the page switches with


def test_a_mailbox_without_a_signature_shows_none(alice: Persona) -> None:
    signed_mailbox(alice, signature="  \n")

    page = alice.client.get(reverse("compose")).content.decode()

    assert " hidden>" in shown_signature(page)


def test_a_sent_message_carries_the_signature_once(alice: Persona) -> None:
    signed_mailbox(alice, signature="-- \nAlice Şahin")
    data = {"mailbox": str(alice.mailbox.pk), "to": "bob@example.net", "text": "Merhaba", "action": "send"}

    alice.client.post(reverse("compose"), data)

    outgoing = OutgoingMessage.objects.get(owner=alice.user)
    assert outgoing.text_body == "Merhaba"
    assert outgoing.raw is not None
    sent = email.message_from_bytes(bytes(outgoing.raw), policy=email.policy.default)
    assert isinstance(sent, EmailMessage)
    assert sent.get_content().replace("\r\n", "\n") == "Merhaba\n\n-- \nAlice Şahin\n"
