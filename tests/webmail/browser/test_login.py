"""A person in headless Chromium logs in and lands on the empty mailbox screen."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.personas import PASSWORD, Persona

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def log_in(page: Page, live_url: str, button: str) -> None:
    page.goto(f"{live_url}/")
    page.get_by_label(re.compile("User name|Kullanıcı adı")).fill("alice")
    page.get_by_label(re.compile("Password|Parola")).fill(PASSWORD)
    page.get_by_role("button", name=button).click()


def test_a_user_logs_in_and_sees_the_empty_mailbox_screen_in_english(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    context = new_context(locale="en-US")
    page = context.new_page()
    failed_requests: list[str] = []
    page.on("requestfailed", lambda request: failed_requests.append(request.url))

    log_in(page, live_url, "Log in")

    expect(page.get_by_test_id("empty-mailbox")).to_contain_text("There is no mail here yet.")
    expect(page.get_by_role("navigation")).to_contain_text("All inboxes")
    expect(page.locator(".user-menu summary")).to_have_text("alice")
    # The vendored stylesheet and htmx loaded from our own server (no CDN, nothing blocked).
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("getComputedStyle(document.querySelector('.layout')).display") == "grid"
    assert failed_requests == []


def test_a_turkish_browser_gets_turkish_screens(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    context = new_context(locale="tr-TR")
    page = context.new_page()

    page.goto(f"{live_url}/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Giriş yap")
    log_in(page, live_url, "Giriş yap")

    expect(page.get_by_test_id("empty-mailbox")).to_contain_text("Burada henüz posta yok.")
    expect(page.get_by_role("navigation")).to_contain_text("Tüm gelen kutuları")
    expect(page.locator("html")).to_have_attribute("lang", "tr")


def test_a_user_switches_the_language_from_the_user_menu(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    context = new_context(locale="en-US")
    page = context.new_page()
    log_in(page, live_url, "Log in")

    page.locator(".user-menu summary").click()
    page.get_by_label("Language").select_option("tr")
    page.get_by_role("button", name="Change").click()

    expect(page.get_by_test_id("empty-mailbox")).to_contain_text("Burada henüz posta yok.")
    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="Çıkış yap").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Giriş yap")


def test_the_screen_fits_a_phone(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    context = new_context(locale="en-US", viewport={"width": 375, "height": 740})
    page = context.new_page()
    log_in(page, live_url, "Log in")

    expect(page.get_by_test_id("empty-mailbox")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
