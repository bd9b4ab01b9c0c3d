"""The list's density in Chromium, near Gmail's default: one line a row on a wide screen, two on a
phone, unread rows bold with a marker, chosen rows tinted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, expect

from fetcher.models import Message
from tests.factories import mail, stored
from tests.personas import Persona
from tests.webmail.browser.pages import signed_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1366, "height": 800}
PHONE = {"width": 375, "height": 740}


def inbox(persona: Persona) -> None:
    read, _unread = stored(
        persona.mailbox,
        mail("Okunmuş bülten", sender="Haber <bulten@example.com>", body="Kasım sayısı çıktı."),
        mail(
            "Bütçe 2027",
            sender="Mehmet Öz <mehmet@example.com>",
            body="Ekte bütçe tablosu var, pazartesiye kadar bakabilir misin?",
            attachments=[("Bütçe.pdf", "application/pdf", b"%PDF-1.4")],
            date="Fri, 27 Nov 2026 11:00:00 +0300",
        ),
    )
    Message.objects.filter(pk=read.pk).update(seen=True)


def middle(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None
    return box["y"] + box["height"] / 2


def height(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None
    return box["height"]


def test_on_a_wide_screen_a_row_is_one_line(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=WIDE)
    page.goto(f"{live_url}/")
    row = page.get_by_test_id("message-row").filter(has_text="Bütçe 2027")

    line = middle(row.locator(".from"))
    for part in [".subject", ".snippet", "time", ".attachment-mark"]:
        assert abs(middle(row.locator(part)) - line) < 4, part
    assert height(row) <= 44


def test_on_a_phone_a_row_is_two_lines(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=PHONE, is_mobile=True)
    page.goto(f"{live_url}/")
    row = page.get_by_test_id("message-row").filter(has_text="Bütçe 2027")

    assert middle(row.locator(".subject")) > middle(row.locator(".from")) + 10
    assert abs(middle(row.locator(".snippet")) - middle(row.locator(".subject"))) < 4
    assert height(row) <= 64
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375


def test_unread_rows_are_bold_with_a_marker_and_chosen_rows_are_tinted(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=WIDE)
    page.goto(f"{live_url}/")
    unread = page.get_by_test_id("message-row").filter(has_text="Bütçe 2027")
    read = page.get_by_test_id("message-row").filter(has_text="Okunmuş bülten")

    expect(unread.locator(".subject")).to_have_css("font-weight", "700")
    expect(read.locator(".subject")).to_have_css("font-weight", "400")
    marker = "(row) => getComputedStyle(row, '::before').width"
    assert unread.evaluate(marker) == "3px"
    assert read.evaluate(marker) == "auto"  # no marker
    expect(unread.get_by_role("link")).to_contain_text("Unread:")  # for a screen reader too

    before = read.evaluate("(row) => getComputedStyle(row).backgroundColor")
    read.get_by_role("checkbox").check()
    assert read.evaluate("(row) => getComputedStyle(row).backgroundColor") != before
