"""The list from the keyboard in Chromium: s, e and # act where the cursor is and keep it there (no
page load), a row's star is clicked like a button, and Tab reaches a skip link first (issue #13.13)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from fetcher.models import Message
from tests.conftest import wait_for
from tests.factories import mail, stored
from tests.personas import Persona
from tests.webmail.browser.pages import signed_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def inbox(persona: Persona) -> list[Message]:
    """Four messages, newest first as the list shows them."""
    messages = stored(
        persona.mailbox,
        *[mail(f"Konu {n}", date=f"Fri, 27 Nov 2026 1{n}:00:00 +0300") for n in range(4)],
    )
    return messages[::-1]


def current_subject(page: Page) -> str:
    return page.locator(".message-row.current .subject").inner_text()


def test_s_and_e_act_on_the_row_under_the_cursor_and_keep_it_there(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    newest_first = inbox(alice)
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/")
    page.evaluate("window.samePage = true")

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("s")

    expect(page.locator("html")).to_have_attribute("data-acted", "1")
    assert current_subject(page) == "Konu 2"
    expect(page.locator(".message-row.current .star")).to_have_attribute("aria-pressed", "true")
    assert Message.objects.get(pk=newest_first[1].pk).flagged
    page.keyboard.press("e")
    expect(page.locator("html")).to_have_attribute("data-acted", "2")
    expect(page.get_by_test_id("message-row")).to_have_count(3)
    assert current_subject(page) == "Konu 1"  # the row after the archived one
    expect(page.get_by_test_id("notices")).to_contain_text("1 conversation archived")
    assert page.evaluate("window.samePage") is True  # the page never loaded again
    page.keyboard.press("j")
    assert current_subject(page) == "Konu 0"


def test_a_rows_star_is_clicked_like_a_button(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    newest_first = inbox(alice)
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/")

    expect(page.get_by_role("checkbox", name="Choose Ayşe Yılmaz Konu 1", exact=True)).to_have_count(1)
    page.get_by_test_id("message-row").nth(2).get_by_role("button", name="Star").click()

    wait_for(lambda: Message.objects.get(pk=newest_first[2].pk).flagged, "the third message to be starred")
    expect(page.get_by_test_id("message-row").nth(2).get_by_test_id("star")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert not Message.objects.filter(flagged=True).exclude(pk=newest_first[2].pk).exists()


def test_the_first_tab_reaches_the_skip_link_and_it_leads_to_the_list(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/")

    page.keyboard.press("Tab")

    skip = page.get_by_test_id("skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")  # on a link: the list's own Enter (open the row) must not take it
    page.wait_for_url(f"{live_url}/#main")
    expect(page.locator("main")).to_be_focused()


def test_enter_opens_the_row_right_after_the_shortcuts_close(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/")
    page.keyboard.press("j")
    page.keyboard.press("?")
    expect(page.get_by_test_id("shortcuts")).to_be_visible()

    # Escape closes the dialog, but focus stays on its hidden Close button for a moment; an Enter then
    # (here sent to it at once, as a fast typist's does) is the list's, not the closed button's.
    page.get_by_test_id("shortcuts").evaluate(
        "(help) => { help.close(); help.querySelector('button').dispatchEvent("
        "new KeyboardEvent('keydown', { key: 'Enter', bubbles: true })); }"
    )

    expect(page).to_have_url(re.compile(r"/mail/m/"))
    expect(page.get_by_test_id("subject")).to_have_text("Konu 3")
