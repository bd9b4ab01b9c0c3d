"""A 20-message conversation in Chromium: a screen or two tall, not 34,000 px, and a read message
opens where it is clicked (issue #13.8)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.factories import conversation
from tests.personas import Persona
from tests.webmail.browser.pages import alice_has_her_mailbox, signed_in

__all__ = ["alice_has_her_mailbox"]  # a fixture of tests/webmail/browser/pages.py
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_long_read_conversation_is_a_line_a_message_and_one_opens_on_a_click(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    messages = conversation(alice.mailbox, 20, unread={19})
    page = signed_in(new_context, live_url, alice.user, viewport={"width": 1366, "height": 800})

    page.goto(f"{live_url}/mail/m/{messages[-1].public_id}/")

    expect(page.locator("html")).to_have_attribute("data-marked-read", "1")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 3 * 800, height  # 19 lines and one open message
    fifth = page.get_by_test_id("mail").nth(4)
    expect(fifth.get_by_test_id("plain-body")).to_be_hidden()
    fifth.get_by_test_id("mail-line").click()
    expect(fifth.get_by_test_id("plain-body")).to_contain_text("Yanıt 4")
