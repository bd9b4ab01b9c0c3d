"""In headless Chromium: "Move to" offers only the folders the chosen rows can go to, and an action on a
conversation row ends with a notice whose Undo puts the whole conversation back (issue #13)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from fetcher import enqueue, folders
from fetcher.models import FolderRole, Message
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona
from tests.webmail.browser.pages import signed_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def parsed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """stored() parses at once; no parse task may outlive the test (it would race the teardown)."""
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)


def test_the_move_menu_follows_the_chosen_rows_and_undo_brings_a_conversation_back(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    root = "<kok@example.com>"
    stored(alice.mailbox, mail("Proje", headers=f"Message-ID: {root}"))
    reply = f"In-Reply-To: {root}\nReferences: {root}"
    stored(
        alice.mailbox,
        *(mail("Re: Proje", headers=reply, date=f"Fri, 27 Nov 2026 11:0{n}:00 +0300") for n in range(2)),
    )
    home = account_mailbox(("alice-ev", "unused"), 995, owner=alice.user, name="Ev")
    stored(home, mail("Ev işi", date="Thu, 26 Nov 2026 10:00:00 +0300"))
    folders.pop3_folder(home, FolderRole.ARCHIVE)
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/")
    rows = page.get_by_test_id("message-row")
    mine, theirs = rows.filter(has_text="Proje"), rows.filter(has_text="Ev işi")
    menu = page.locator("#list-form select[name=folder]")

    mine.locator("input[name=message]").check()
    expect(menu.locator(f'optgroup[data-mailbox="{home.id}"]')).to_be_disabled()
    expect(menu.locator(f'optgroup[data-mailbox="{alice.mailbox.id}"]')).to_be_enabled()
    theirs.locator("input[name=message]").check()
    expect(menu.locator(f'optgroup[data-mailbox="{alice.mailbox.id}"]')).to_be_disabled()
    expect(menu.get_by_test_id("move-roles")).to_be_enabled()
    theirs.locator("input[name=message]").uncheck()

    page.get_by_role("button", name="Archive", exact=True).click()
    notice = page.get_by_test_id("notices")
    expect(notice).to_contain_text("1 conversation archived.")
    archived = Message.objects.filter(mailbox=alice.mailbox, folder__role=FolderRole.ARCHIVE)
    assert archived.count() == 3
    expect(rows).to_have_count(1)

    notice.get_by_test_id("undo").click()
    expect(page.get_by_test_id("notices")).to_contain_text("Undone.")
    expect(rows).to_have_count(2)
    assert not archived.exists()
