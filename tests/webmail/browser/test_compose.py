"""Writing mail in headless Chromium: compose with an attachment, undo, a draft that survives a
reload, and a reply and a forward started from the keyboard."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from accounts.models import User
from fetcher.models import OutgoingMessage, OutgoingState
from tests.conftest import wait_for
from tests.factories import mail, stored
from tests.personas import Persona
from tests.webmail.browser.pages import alice_has_her_mailbox, shot, signed_in

__all__ = ["alice_has_her_mailbox"]  # a fixture of tests/webmail/browser/pages.py
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_compose_with_an_attachment_send_and_undo(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, tmp_path: Path
) -> None:
    attachment = tmp_path / "Çalışma planı.pdf"
    attachment.write_bytes(b"%PDF-1.4 plan")
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/")

    page.keyboard.press("c")
    page.get_by_label("To").fill("Bob Öztürk <bob@example.net>")
    page.get_by_label("Subject").fill("Toplantı ğüşıöç İĞÜŞÖÇ")
    page.get_by_label("Message", exact=True).fill("Merhaba Bob,\nplan ekte.")
    page.get_by_label("Attachments", exact=True).set_input_files(str(attachment))
    shot(page, "compose")
    page.get_by_test_id("send").click()

    expect(page.get_by_test_id("waiting")).to_contain_text("Toplantı ğüşıöç İĞÜŞÖÇ")
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingState.QUEUED
    assert [a.filename for a in outgoing.attachments.all()] == ["Çalışma planı.pdf"]
    page.get_by_test_id("undo").click()

    expect(page.get_by_label("Subject")).to_have_value("Toplantı ğüşıöç İĞÜŞÖÇ")
    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingState.DRAFT


def test_a_saved_draft_survives_a_reload(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mail/compose/")
    page.get_by_label("To").fill("cem@example.net")
    page.get_by_label("Message", exact=True).fill("Yarım kalan ileti")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".flash")).to_contain_text("Draft saved.")  # the save's own page has loaded

    page.reload()

    expect(page.get_by_label("To")).to_have_value("cem@example.net")
    expect(page.get_by_label("Message", exact=True)).to_have_value("Yarım kalan ileti")


def test_reply_and_forward_from_the_keyboard(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    original = stored(
        alice.mailbox, mail("Bütçe", sender="Mehmet Öz <mehmet@example.com>", body="Rakamlar ekte.")
    )[0]
    page = signed_in(new_context, live_url, alice.user)

    page.goto(f"{live_url}/mail/m/{original.public_id}/")
    page.keyboard.press("r")
    expect(page.get_by_label("Subject")).to_have_value("Re: Bütçe")
    expect(page.get_by_label("To")).to_have_value("Mehmet Öz <mehmet@example.com>")
    quoted = page.get_by_label("Message", exact=True).input_value()
    assert quoted.startswith("\n")  # room to answer above the quote
    assert "Mehmet Öz" in quoted
    assert "> Rakamlar ekte." in quoted

    page.goto(f"{live_url}/mail/m/{original.public_id}/")
    page.keyboard.press("f")
    expect(page.get_by_label("Subject")).to_have_value("Fwd: Bütçe")
    expect(page.get_by_label("Message", exact=True)).to_have_value("")  # a note above the original
    expect(page.get_by_test_id("forwarded")).to_contain_text("> Rakamlar ekte.")


def test_a_draft_saves_itself_while_typing_and_when_the_page_is_left(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mail/compose/")
    page.get_by_label("To").fill("dilek@example.net")
    page.get_by_label("Message", exact=True).fill("Kendiliğinden kaydedilen")

    expect(page.locator("html")).to_have_attribute("data-draft-saved", re.compile("."), timeout=10_000)
    expect(page).to_have_url(re.compile(r"/mail/compose/[0-9a-f-]{36}/$"))
    page.reload()
    expect(page.get_by_label("Message", exact=True)).to_have_value("Kendiliğinden kaydedilen")

    page.get_by_label("Subject").fill("Son anda yazılan konu")
    page.goto(f"{live_url}/")  # leaving before the timer: the page saves on its way out
    wait_for(
        lambda: OutgoingMessage.objects.filter(subject="Son anda yazılan konu").exists(),
        "the draft saved when the page was left",
    )


def test_the_to_field_suggests_people_already_written_with(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    stored(alice.mailbox, mail("Bütçe", sender="Mehmet Öz <mehmet@example.com>"))
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mail/compose/")

    page.get_by_label("To").fill("cem@example.net, meh")
    page.get_by_role("button", name="Mehmet Öz <mehmet@example.com>").click()

    expect(page.get_by_label("To")).to_have_value("cem@example.net, Mehmet Öz <mehmet@example.com>, ")
    page.close()  # closing the tab saves the draft on the way out
    draft = wait_for(OutgoingMessage.objects.first, "the draft saved as the tab closed")
    assert [r["address"] for r in draft.to] == ["cem@example.net", "mehmet@example.com"]


def test_rich_text_in_the_vetted_editor_without_breaking_the_content_security_policy(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    page = signed_in(new_context, live_url, alice.user)
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto(f"{live_url}/mail/compose/")
    page.get_by_label("To").fill("bob@example.net")

    page.get_by_role("checkbox", name="Rich text").check()
    editor = page.get_by_test_id("rich-editor")
    expect(editor).to_be_visible()
    expect(page.locator("#id_text")).to_be_hidden()
    editor.click()
    page.keyboard.type("Merhaba ")
    page.locator("trix-toolbar [data-trix-attribute=bold]").click()  # the editor's own toolbar
    page.keyboard.type("Bob")
    page.get_by_test_id("send").click()

    expect(page.get_by_test_id("waiting")).to_be_visible()
    outgoing = OutgoingMessage.objects.get()
    assert "<strong>Bob</strong>" in outgoing.html_body
    assert outgoing.text_body.strip() == "Merhaba Bob"
    assert refused == []


def test_attachments_upload_with_a_progress_bar(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, tmp_path: Path
) -> None:
    big = tmp_path / "sunum.pdf"
    big.write_bytes(b"%PDF-1.4 " + b"x" * (3 * 1024 * 1024))
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mail/compose/")
    page.get_by_label("To").fill("bob@example.net")
    page.get_by_label("Attachments", exact=True).set_input_files(str(big))

    def slow_answer(route: Any) -> None:  # the server takes its time: the bar stays up meanwhile
        page.wait_for_timeout(1500)
        route.continue_()

    page.route("**/mail/compose/", slow_answer)
    page.get_by_test_id("send").click()

    expect(page.get_by_test_id("upload-progress")).to_be_visible()
    expect(page.get_by_test_id("waiting")).to_be_visible(timeout=15_000)
    assert OutgoingMessage.objects.get().attachments.get().size == big.stat().st_size


def upload_too_large(
    new_context: Callable[..., BrowserContext], live_url: str, user: User, tmp_path: Path
) -> list[str]:
    """Send a 2 MB attachment; the POSTs the page made to compose."""
    big = tmp_path / "sunum.pdf"
    big.write_bytes(b"%PDF-1.4 " + b"x" * (2 * 1024 * 1024))
    page = signed_in(new_context, live_url, user)
    page.goto(f"{live_url}/mail/compose/")
    page.get_by_label("To").fill("bob@example.net")
    page.get_by_label("Attachments", exact=True).set_input_files(str(big))
    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("upload-error")).to_contain_text("Attachments may add up to")
    page.wait_for_timeout(500)
    assert not OutgoingMessage.objects.exclude(state=OutgoingState.DRAFT).exists()
    return [url for url in posts if url.endswith("/mail/compose/")]


def test_attachments_over_the_limit_are_refused_by_the_page_before_any_upload(
    new_context: Callable[..., BrowserContext],
    live_url: str,
    alice: Persona,
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.WEBMAIL_MAX_ATTACHMENTS_MB = 1
    assert upload_too_large(new_context, live_url, alice.user, tmp_path) == []


def test_an_upload_the_server_refuses_for_its_size_is_not_sent_a_second_time(
    new_context: Callable[..., BrowserContext],
    live_url: str,
    alice: Persona,
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.WEBMAIL_MAX_REQUEST_BYTES = 1024 * 1024  # only the server knows: it answers 413
    assert len(upload_too_large(new_context, live_url, alice.user, tmp_path)) == 1
