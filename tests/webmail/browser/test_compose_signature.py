"""In Chromium: the signature under the body follows the "From" mailbox, and stays out of the body."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from accounts.models import Mailbox
from fetcher.models import OutgoingMessage
from tests.conftest import wait_for
from tests.factories import account_mailbox
from tests.personas import Persona
from tests.webmail.browser.pages import alice_has_her_mailbox, signed_in

__all__ = ["alice_has_her_mailbox"]  # a fixture of tests/webmail/browser/pages.py
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_signature_follows_the_from_mailbox(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    Mailbox.objects.filter(pk=alice.mailbox.pk).update(signature="Alice Şahin\nMuhasebe")
    home = account_mailbox(("alice-ev", "unused"), 995, owner=alice.user, name="Ev", signature="Ev adresim")
    plain = account_mailbox(("alice-yok", "unused"), 995, owner=alice.user, name="Yok")
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mail/compose/")
    signature = page.get_by_test_id("signature")
    expect(page.get_by_label("From")).to_have_value(str(alice.mailbox.pk))  # "Alice İş" sorts first
    expect(signature).to_contain_text("Muhasebe")

    page.get_by_label("From").select_option(str(home.pk))
    expect(signature.locator("[data-signature-text]")).to_have_text("-- \nEv adresim")
    page.get_by_label("From").select_option(str(plain.pk))
    expect(signature).to_be_hidden()
    page.get_by_label("From").select_option(str(alice.mailbox.pk))
    expect(signature).to_contain_text("Alice Şahin")
    expect(page.get_by_label("Message", exact=True)).to_have_value("")

    page.get_by_label("Message", exact=True).fill("Merhaba")
    page.get_by_role("button", name="Save draft").click()
    draft = wait_for(lambda: OutgoingMessage.objects.filter(owner=alice.user).first(), "the draft")
    assert draft.text_body == "Merhaba"
