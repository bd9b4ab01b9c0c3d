"""In Chromium, measured: controls laid out where a person expects them. The rich editor is tall
enough to write in, a checkbox sits on its label's line, and the mailbox table's actions are apart."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, FloatRect, Locator, expect

from tests.personas import Persona
from tests.webmail.browser.pages import alice_has_her_mailbox, signed_in

__all__ = ["alice_has_her_mailbox"]  # a fixture of tests/webmail/browser/pages.py
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}


def box(locator: Locator) -> FloatRect:
    found = locator.bounding_box()
    assert found is not None, "the element is not laid out"
    return found


@pytest.mark.parametrize("screen", [{}, PHONE], ids=["desktop", "phone"])
def test_the_rich_editor_is_tall_enough_to_write_in_and_grows(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, screen: dict[str, object]
) -> None:
    page = signed_in(new_context, live_url, alice.user, **screen)
    page.goto(f"{live_url}/mail/compose/")
    page.get_by_role("checkbox", name="Rich text").check()
    editor = page.get_by_test_id("rich-editor")
    expect(editor).to_be_visible()
    line = float(editor.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))

    empty = box(editor)["height"]
    editor.click()
    page.keyboard.type("satır\n" * 40)
    written = box(editor)["height"]

    assert empty >= 15 * line, f"{empty}px is fewer than 15 lines of {line}px"
    assert written > empty  # it grows with what is written rather than scrolling inside


@pytest.mark.parametrize("screen", [{}, PHONE], ids=["desktop", "phone"])
def test_a_preference_checkbox_sits_on_its_labels_line_and_the_label_ticks_it(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, screen: dict[str, object]
) -> None:
    page = signed_in(new_context, live_url, alice.user, **screen)
    page.goto(f"{live_url}/account/preferences/")
    checkbox = page.get_by_role("checkbox", name="Group mail into conversations")
    label = page.locator("label[for=id_conversations]")
    expect(checkbox).to_be_checked()

    tick, text = box(checkbox), box(label)
    label.click()

    assert tick["y"] < text["y"] + text["height"]  # the rows overlap: one line
    assert text["y"] < tick["y"] + tick["height"]
    assert tick["x"] + tick["width"] <= text["x"]  # the box first, then its label
    assert text["x"] - (tick["x"] + tick["width"]) < 24  # beside it, not across the page
    expect(checkbox).not_to_be_checked()


def test_a_long_checkbox_label_wraps_beside_its_box_on_a_phone(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    page = signed_in(new_context, live_url, alice.user, **PHONE)
    page.goto(f"{live_url}/mailboxes/{alice.mailbox.id}/")
    checkbox = page.get_by_role("checkbox", name="Also delete on the server when I delete here")
    label = page.locator("label[for=id_pop3_delete_with_local]")

    tick, text = box(checkbox), box(label)

    assert text["y"] < tick["y"] + tick["height"]  # its first line is the box's line
    assert tick["x"] + tick["width"] <= text["x"]


@pytest.mark.parametrize("screen", [{}, PHONE], ids=["desktop", "phone"])
def test_the_mailbox_tables_actions_stand_apart(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, screen: dict[str, object]
) -> None:
    page = signed_in(new_context, live_url, alice.user, **screen)
    page.goto(f"{live_url}/mailboxes/")
    actions = page.locator(f'[data-mailbox="{alice.mailbox.email_address}"] .actions')
    shown = [
        box(actions.get_by_role("button", name="Sync now")),
        box(actions.get_by_role("link", name="Edit")),
        box(actions.get_by_role("link", name="Remove")),
    ]

    for left, right in itertools.pairwise(shown):
        apart = right["x"] >= left["x"] + left["width"] + 6 or right["y"] >= left["y"] + left["height"] + 4
        assert apart, f"{left} and {right} touch"
