"""The reading pane in Chromium: switched on from the list and remembered; at 1366 px a row opens
beside the list without a page load, the address follows and Back returns; a message opened there is
read; at 375 px the list and the message stay one column."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from accounts.models import User
from fetcher.models import Message
from tests.factories import mail, stored
from tests.personas import Persona
from tests.webmail.browser.pages import shot, signed_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1366, "height": 800}
PHONE = {"width": 375, "height": 740}


def inbox(persona: Persona) -> list[Message]:
    return stored(
        persona.mailbox,
        mail("Toplantı notları", body="Yarınki toplantı saat 10'da.", date="Fri, 27 Nov 2026 10:00:00 +0300"),
        mail(
            "Bütçe 2027",
            sender="Mehmet Öz <mehmet@example.com>",
            body="Ekte bütçe tablosu var.",
            date="Fri, 27 Nov 2026 11:00:00 +0300",
        ),
    )


def with_pane(persona: Persona) -> None:
    User.objects.filter(pk=persona.user.pk).update(reading_pane=True)


def test_the_pane_is_switched_on_from_the_list_and_remembered(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=WIDE)
    page.goto(f"{live_url}/")

    page.get_by_role("button", name="Read beside the list").click()

    expect(page.get_by_test_id("pane")).to_be_visible()
    assert User.objects.get(pk=alice.user.pk).reading_pane
    page.reload()
    expect(page.get_by_role("button", name="Read in one column")).to_be_visible()


def test_at_1366_px_a_row_opens_beside_the_list_without_a_page_load_and_back_returns(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    with_pane(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=WIDE)
    page.goto(f"{live_url}/")
    page.evaluate("window.samePage = true")

    page.get_by_test_id("message-row").filter(has_text="Bütçe 2027").locator("a.row-link").click()

    pane = page.get_by_test_id("pane")
    expect(pane.get_by_test_id("subject")).to_have_text("Bütçe 2027")
    expect(page).to_have_url(re.compile(r"/mail/m/[0-9a-f-]+/"))
    assert page.evaluate("window.samePage") is True
    listed = page.get_by_test_id("messages").bounding_box()
    shown = pane.bounding_box()
    assert listed is not None
    assert shown is not None
    assert listed["x"] + listed["width"] <= shown["x"]  # side by side: the list left, the message right
    assert shown["y"] < listed["y"] + listed["height"]
    shot(page, "reading-pane")

    page.get_by_test_id("message-row").filter(has_text="Toplantı notları").locator("a.row-link").click()
    expect(pane.get_by_test_id("subject")).to_have_text("Toplantı notları")
    page.go_back()
    expect(pane.get_by_test_id("subject")).to_have_text("Bütçe 2027")
    page.go_back()
    expect(page).to_have_url(f"{live_url}/")
    expect(pane.get_by_test_id("subject")).to_have_count(0)
    assert page.evaluate("window.samePage") is True


def test_a_message_opened_in_the_pane_is_marked_read(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    with_pane(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=WIDE)
    page.goto(f"{live_url}/")

    page.keyboard.press("j")
    page.keyboard.press("Enter")

    expect(page.get_by_test_id("pane").get_by_test_id("subject")).to_have_text("Bütçe 2027")
    expect(page.locator("html")).to_have_attribute("data-marked-read", "1")
    assert Message.objects.get(subject="Bütçe 2027").seen
    assert not Message.objects.get(subject="Toplantı notları").seen
    expect(page.get_by_test_id("message-row").filter(has_text="Bütçe 2027")).not_to_have_class(
        re.compile("unread")
    )


def test_a_reload_in_the_pane_shows_the_list_and_the_message(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    with_pane(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=WIDE)
    page.goto(f"{live_url}/")
    page.get_by_test_id("message-row").filter(has_text="Bütçe 2027").locator("a.row-link").click()
    expect(page.get_by_test_id("pane").get_by_test_id("subject")).to_have_text("Bütçe 2027")

    page.reload()

    expect(page.get_by_test_id("message-row")).to_have_count(2)
    expect(page.get_by_test_id("pane").get_by_test_id("subject")).to_have_text("Bütçe 2027")
    expect(page.locator(".message-row.open")).to_contain_text("Bütçe 2027")


def test_at_375_px_the_pane_layout_is_one_column(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    with_pane(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=PHONE, is_mobile=True)
    page.goto(f"{live_url}/")
    expect(page.get_by_test_id("pane")).to_be_hidden()

    page.get_by_test_id("message-row").filter(has_text="Bütçe 2027").locator("a.row-link").click()

    expect(page.get_by_test_id("subject")).to_have_text("Bütçe 2027")
    expect(page.get_by_test_id("messages")).to_be_hidden()  # the message alone, not squeezed beside the list
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
