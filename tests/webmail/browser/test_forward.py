"""Forwarding in headless Chromium: the original's attachments are listed on the forward's page, one
is ticked off while the page saves itself, and what is queued carries the original and the rest."""

from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from playwright.sync_api import BrowserContext, expect

from fetcher.models import OutgoingMessage, OutgoingState
from tests.factories import mail, stored
from tests.personas import Persona
from tests.webmail.browser.pages import shot, signed_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_forward_goes_with_the_original_and_without_the_file_ticked_off(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    files = [("Bütçe tablosu.pdf", "application/pdf", b"%PDF-1.4 butce"), ("eski.txt", "text/plain", b"eski")]
    original = stored(
        alice.mailbox,
        mail("Bütçe", body="Rakamlar ekte.", html="<p>Rakamlar <b>ekte</b>.</p>", attachments=files),
    )[0]
    page = signed_in(new_context, live_url, alice.user)

    page.goto(f"{live_url}/mail/m/{original.public_id}/")
    page.keyboard.press("f")
    expect(page.get_by_test_id("attached-file")).to_have_count(2)
    page.get_by_label("To").fill("cem@example.net")
    page.get_by_label("Message", exact=True).fill("Cem, aşağıda.")
    expect(page.locator("html")).to_have_attribute("data-draft-saved", re.compile("."), timeout=10_000)
    page.get_by_label("Remove eski.txt").check()
    shot(page, "forward")
    page.get_by_test_id("send").click()

    expect(page.get_by_test_id("waiting")).to_contain_text("Fwd: Bütçe")
    outgoing = OutgoingMessage.objects.get()  # the autosave's draft, sent: no second one
    assert outgoing.state == OutgoingState.QUEUED
    sent = message_from_bytes(bytes(outgoing.raw or b""), policy=policy.default)
    assert isinstance(sent, EmailMessage)
    assert [part.get_filename() for part in sent.iter_attachments()] == ["Bütçe tablosu.pdf"]
    html = sent.get_body(("html",))
    assert html is not None
    assert "Rakamlar <b>ekte</b>" in html.get_content()
