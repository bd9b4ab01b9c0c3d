"""Reading mail in headless Chromium: the inbox, a message, images, attachments, search, actions,
keys, conversations, Turkish, a phone, and hostile HTML that must run nothing and fetch nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from accounts.models import Mailbox
from fetcher.models import Folder, Message
from tests.conftest import wait_for
from tests.factories import earlier_today, mail, stored
from tests.hostile_html import HOSTILE
from tests.personas import Persona
from tests.webmail.browser.pages import (
    Attacker,
    alice_has_her_mailbox,
    shot,
    signed_in,
)

__all__ = ["alice_has_her_mailbox"]  # a fixture of tests/webmail/browser/pages.py
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def inbox_of_alice(mailbox: Mailbox) -> list[Message]:
    return stored(
        mailbox,
        mail("Toplantı notları", body="Yarınki toplantı saat 10'da.\nGündem: https://ornek.com.tr/gundem"),
        mail(
            "Bütçe 2027",
            sender="Mehmet Öz <mehmet@example.com>",
            body="Ekte bütçe tablosu var.",
            attachments=[("Bütçe tablosu.pdf", "application/pdf", b"%PDF-1.4 butce")],
            date="Fri, 27 Nov 2026 11:00:00 +0300",
        ),
        mail(
            "Bülten",
            sender="Haber <bulten@example.com>",
            html="<h1>Kasım bülteni</h1><p>Merhaba <b>Alice</b></p>",
            date="Fri, 27 Nov 2026 09:00:00 +0300",
        ),
    )


def test_reading_the_inbox_a_message_and_marking_it_read(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox_of_alice(alice.mailbox)
    page = signed_in(new_context, live_url, alice.user)

    page.goto(f"{live_url}/")
    rows = page.get_by_test_id("message-row")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Bütçe 2027")  # newest first
    expect(page).to_have_title(re.compile(r"^\(3\) All inboxes"))
    expect(rows.first.locator(".attachment-mark")).to_be_visible()
    shot(page, "inbox")

    rows.filter(has_text="Toplantı notları").locator("a.row-link").click()
    expect(page.get_by_test_id("subject")).to_have_text("Toplantı notları")
    link = page.get_by_test_id("plain-body").get_by_role("link")
    expect(link).to_have_attribute("href", "https://ornek.com.tr/gundem")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(page.locator("html")).to_have_attribute("data-marked-read", "1")
    shot(page, "message")

    page.keyboard.press("u")
    expect(page.get_by_test_id("message-row").filter(has_text="Toplantı notları")).not_to_have_class(
        re.compile("unread")
    )
    assert Message.objects.get(subject="Toplantı notları").seen


def test_new_mail_appears_in_the_open_list_and_in_the_tab_title(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox_of_alice(alice.mailbox)
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/")
    expect(page.get_by_test_id("message-row")).to_have_count(3)

    stored(alice.mailbox, mail("Yeni gelen", date="Fri, 27 Nov 2026 13:00:00 +0300"))
    page.locator("[data-unread-url]").dispatch_event("poll")  # what the 30-second timer does

    expect(page.get_by_test_id("message-row")).to_have_count(4)
    expect(page.get_by_test_id("message-row").first).to_contain_text("Yeni gelen")
    expect(page).to_have_title(re.compile(r"^\(4\) All inboxes"))


def test_keys_move_through_the_list_star_and_open(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox_of_alice(alice.mailbox)
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/")

    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator(".message-row.current")).to_contain_text("Toplantı notları")
    page.keyboard.press("s")
    starred = page.locator(".message-row").filter(has_text="Toplantı notları").locator(".star.on")
    expect(starred).to_be_visible()
    page.keyboard.press("?")
    expect(page.get_by_test_id("shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("subject")).to_have_text("Bütçe 2027")
    assert Message.objects.get(subject="Toplantı notları").flagged


def test_images_wait_for_the_reader_and_attachments_download(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, attacker: Attacker
) -> None:
    newsletter = stored(
        alice.mailbox,
        mail(
            "Bülten",
            html=f'<h1>Kasım bülteni</h1><img src="{attacker.url}/logo.png" alt="logo" width="40">',
            attachments=[("../Bütçe tablosu.pdf", "application/pdf", b"%PDF-1.4 butce")],
        ),
    )[0]
    page = signed_in(new_context, live_url, alice.user)

    page.goto(f"{live_url}/mail/m/{newsletter.public_id}/")
    frame = page.frame_locator("[data-testid=mail-frame]")
    expect(frame.get_by_role("heading")).to_have_text("Kasım bülteni")
    assert attacker.requests == []
    page.get_by_test_id("show-images").click()
    expect(page.frame_locator("[data-testid=mail-frame]").get_by_role("img")).to_have_attribute(
        "src", f"{attacker.url}/logo.png"
    )
    for _ in range(50):  # the frame loads the image on its own time
        if attacker.requests:
            break
        page.wait_for_timeout(100)
    assert attacker.requests == ["/logo.png"]

    with page.expect_download() as download:
        page.get_by_test_id("attachment").click()
    assert download.value.suggested_filename == "Bütçe tablosu.pdf"
    assert Path(download.value.path()).read_bytes() == b"%PDF-1.4 butce"


def test_search_with_an_operator_move_and_a_conversation(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    messages = inbox_of_alice(alice.mailbox)
    stored(
        alice.mailbox,
        mail(
            "YNT: Toplantı notları",
            sender="Alice <alice@example.com>",
            headers=f"In-Reply-To: {messages[0].message_id}\nReferences: {messages[0].message_id}",
            date="Fri, 27 Nov 2026 12:00:00 +0300",
        ),
    )
    Folder.objects.create(mailbox=alice.mailbox, name="Projeler")
    page = signed_in(new_context, live_url, alice.user)

    page.goto(f"{live_url}/")
    page.keyboard.press("/")
    page.keyboard.type("from:mehmet bütçe")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("message-row")).to_have_count(1)
    expect(page.get_by_test_id("message-row").locator("mark").first).to_have_text("Bütçe")
    shot(page, "search")

    page.get_by_test_id("message-row").locator("input[name=message]").check()
    page.locator("select[name=folder]").select_option(label="Projeler")
    page.get_by_role("button", name="Move", exact=True).click()
    wait_for(
        lambda: Message.objects.filter(subject="Bütçe 2027", folder__name="Projeler").exists(),
        "the message to be in Projeler",
    )

    page.goto(f"{live_url}/")
    thread = page.get_by_test_id("message-row").filter(has_text="Toplantı notları")
    expect(thread.locator(".thread-count")).to_have_text("2")
    thread.locator("a.row-link").click()
    expect(page.get_by_test_id("mail")).to_have_count(2)


def test_turkish_on_a_phone(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    inbox_of_alice(alice.mailbox)
    arrived = earlier_today("Europe/Istanbul")
    stored(alice.mailbox, mail("Bugün gelen", date=format_datetime(arrived)))
    phone = {"width": 375, "height": 740}
    page = signed_in(
        new_context,
        live_url,
        alice.user,
        locale="tr-TR",
        viewport=phone,
        is_mobile=True,
        timezone_id="Europe/Istanbul",
    )

    page.goto(f"{live_url}/")
    page.reload()  # the first page told the server the browser's time zone
    expect(page.get_by_role("navigation")).to_contain_text("Tüm gelen kutuları")
    today = page.get_by_test_id("message-row").filter(has_text="Bugün gelen").locator("time")
    expect(today).to_have_text(arrived.strftime("%H:%M"))  # today: the time, in the browser's zone
    expect(page.get_by_role("button", name="Okundu yap")).to_be_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    shot(page, "phone-tr")
    page.get_by_test_id("message-row").first.locator("a.row-link").click()
    expect(page.get_by_test_id("subject")).to_be_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375


def test_hostile_html_runs_nothing_and_fetches_nothing_even_when_its_links_are_clicked(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, attacker: Attacker
) -> None:
    raws = [mail(f"Zararlı: {name}", html=html.format(evil=attacker.url)) for name, html in HOSTILE.items()]
    messages = stored(alice.mailbox, *raws)
    page = signed_in(new_context, live_url, alice.user)
    dialogs: list[str] = []
    elsewhere: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_request(request: Any) -> None:
        elsewhere.append(request.url)

    page.on("dialog", on_dialog)
    page.context.on("request", on_request)

    for message in messages:
        page.goto(f"{live_url}/mail/m/{message.public_id}/")
        expect(page.frame_locator("[data-testid=mail-frame]").locator("body")).to_be_attached()
        page.wait_for_load_state("networkidle")
        assert page.title().startswith("Zararlı"), message.subject
        assert [url for url in elsewhere if not url.startswith(live_url)] == [], message.subject
        click_every_link(page, message)
        assert {
            url.removeprefix(attacker.url) for url in elsewhere if not url.startswith(live_url)
        } <= CLICKED
        elsewhere.clear()

    assert dialogs == []
    assert set(attacker.requests) <= CLICKED


# Clicking the ordinary link opens its page in a new tab, and the browser asks that site for its icon.
CLICKED = {"/ordinary", "/favicon.ico"}


def click_every_link(page: Page, message: Message) -> None:
    """A link opens apart (new tab, no opener) and only to http(s); a stripped one does nothing."""
    for link in page.frame_locator("[data-testid=mail-frame]").locator("a").all():
        href = link.get_attribute("href") or ""
        assert href.startswith(("http://", "https://")) or not href, (message.subject, href)
        if not href:
            link.click()
            continue
        with page.context.expect_page() as opened:
            link.click()
        assert opened.value.evaluate("window.opener") is None
        opened.value.close()
    assert page.url.endswith(f"/mail/m/{message.public_id}/")
