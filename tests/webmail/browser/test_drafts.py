"""Discard in compose, in headless Chromium: the draft the page saved by itself goes, even when that
save is still on its way as Discard is pressed, and leaving the page saves nothing again."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Route, expect

from fetcher.models import OutgoingMessage
from tests.personas import Persona
from tests.webmail.browser.pages import alice_has_her_mailbox, signed_in

__all__ = ["alice_has_her_mailbox"]  # a fixture of tests/webmail/browser/pages.py
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_discard_removes_the_draft_the_page_saved_by_itself(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mail/compose/")
    page.get_by_label("To").fill("dilek@example.net")
    page.get_by_label("Message", exact=True).fill("Vazgeçilecek")
    expect(page.locator("html")).to_have_attribute("data-draft-saved", re.compile("."), timeout=10_000)
    assert OutgoingMessage.objects.count() == 1

    page.get_by_test_id("discard").click()

    expect(page).to_have_url(re.compile(r"/mail/v/drafts/$"))
    expect(page.locator(".flash")).to_contain_text("Draft discarded.")
    assert not OutgoingMessage.objects.exists()


def test_discard_pressed_while_the_first_save_is_on_its_way_discards_that_draft(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    page = signed_in(new_context, live_url, alice.user)
    held: list[Route] = []

    def hold(route: Route) -> None:  # a function, not list.append: Playwright marks its handlers
        held.append(route)

    page.route(re.compile(r".*/mail/compose/autosave/$"), hold)  # the save waits here
    page.goto(f"{live_url}/mail/compose/")
    page.get_by_label("Message", exact=True).fill("Yolda olan kayıt")
    for _tick in range(100):  # Playwright runs the route handler while the page waits
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page's first save never left"

    page.get_by_test_id("discard").click()
    held[0].continue_()  # the save reaches the server (and makes the draft) after Discard was pressed

    expect(page).to_have_url(re.compile(r"/mail/v/drafts/$"))
    expect(page.locator(".flash")).to_contain_text("Draft discarded.")
    page.goto(f"{live_url}/")
    time.sleep(0.5)  # what a save on leaving would have written by now
    assert not OutgoingMessage.objects.exists()
