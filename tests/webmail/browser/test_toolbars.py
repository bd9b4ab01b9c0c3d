"""The toolbars in Chromium: an icon beside a label that names each control; on a phone the list's
first actions and a "More" menu, and a message whose body starts within the first screen."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from fetcher.models import Message
from tests.factories import mail, stored
from tests.personas import Persona
from tests.webmail.browser.pages import shot, signed_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1366, "height": 800}
PHONE = {"width": 375, "height": 740}
LIST_ACTIONS = ["Mark read", "Mark unread", "Star", "Unstar", "Archive", "Delete", "Move"]


def a_letter(persona: Persona, html: str | None = None) -> Message:
    [message] = stored(
        persona.mailbox,
        mail(
            "Kasım toplantısı ve bütçe görüşmesi",
            sender="Mehmet Öz <mehmet.oz@uzun-bir-alan-adi.example.com>",
            body="Merhaba,\nYarınki toplantı saat 10'da.\n",
            html=html,
        ),
    )
    assert isinstance(message, Message)
    return message


def test_every_list_action_is_an_icon_and_a_label_on_a_wide_screen(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    a_letter(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=WIDE)
    page.goto(f"{live_url}/")
    toolbar = page.get_by_role("toolbar", name="Actions on the chosen messages")

    for name in LIST_ACTIONS:
        button = toolbar.get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        expect(button).to_contain_text(name)  # the label is shown, not only the icon
        expect(button.locator("svg.icon")).to_have_attribute("aria-hidden", "true")
    expect(toolbar.get_by_test_id("more")).to_be_hidden()  # nothing waits behind a menu here


def test_every_message_action_is_named_on_a_wide_screen(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    message = a_letter(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=WIDE)
    page.goto(f"{live_url}/mail/m/{message.public_id}/")
    toolbar = page.get_by_role("toolbar", name="Actions on this message")

    for name in ["Reply", "Reply all", "Forward", "Forward as attachment"]:
        expect(toolbar.get_by_role("link", name=name, exact=True)).to_be_visible()
    for name in ["Archive", "Delete", "Star", "Move"]:
        expect(toolbar.get_by_role("button", name=name, exact=True)).to_be_visible()
    shot(page, "message-toolbar")


def test_on_a_phone_the_list_shows_a_few_actions_and_a_menu_of_the_rest(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    a_letter(alice)
    page = signed_in(new_context, live_url, alice.user, viewport=PHONE, is_mobile=True)
    page.goto(f"{live_url}/")
    toolbar = page.get_by_role("toolbar", name="Actions on the chosen messages")

    for name in ["Mark read", "Archive", "Delete"]:
        expect(toolbar.get_by_role("button", name=name, exact=True)).to_be_visible()
    expect(toolbar.get_by_test_id("more")).to_be_visible()  # a <details> menu's summary
    expect(toolbar.get_by_test_id("more")).to_have_text(
        "More"
    )  # named for a screen reader, an icon on screen
    expect(toolbar.get_by_role("button", name="Star", exact=True)).to_be_hidden()
    box = toolbar.bounding_box()
    assert box is not None
    assert box["height"] < 60  # one row of actions

    toolbar.get_by_test_id("more").click()

    for name in ["Mark unread", "Star", "Unstar", "Move"]:
        expect(toolbar.get_by_role("button", name=name, exact=True)).to_be_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    shot(page, "phone-more")


@pytest.mark.parametrize("body", ["plain", "html"])
def test_on_a_phone_a_message_shows_its_body_in_the_first_screen(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, body: str
) -> None:
    message = a_letter(
        alice, **({"html": "<p>Merhaba, <b>yarın</b> görüşelim.</p>"} if body == "html" else {})
    )
    page = signed_in(new_context, live_url, alice.user, viewport=PHONE, is_mobile=True)
    page.goto(f"{live_url}/mail/m/{message.public_id}/")

    shown = page.get_by_test_id("mail-frame" if body == "html" else "plain-body")
    expect(shown).to_be_visible()
    top = shown.bounding_box()
    assert top is not None
    assert top["y"] + 40 < PHONE["height"]  # its first lines, not only its top edge, on the first screen
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    if body == "plain":
        shot(page, "phone-message")
