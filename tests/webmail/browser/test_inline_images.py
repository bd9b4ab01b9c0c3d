"""Inline (cid:) images of an HTML message render inside the sandboxed frame in headless Chromium.

The frame has no allow-same-origin, so the images it asks for travel without the session cookie:
they come from signed part links (webmail.part_links), not from the cookie-guarded part view.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.factories import related_mail, stored
from tests.personas import Persona
from tests.webmail.browser.pages import PNG, Attacker, signed_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_inline_image_renders_in_the_frame_and_a_remote_one_still_waits(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona, attacker: Attacker
) -> None:
    html = f'<p>Logomuz:</p><img src="cid:logo@example.com" alt="logo"><img src="{attacker.url}/t.png">'
    message = stored(alice.mailbox, related_mail("Logolu", html, [("logo@example.com", "image/png", PNG)]))[0]
    page = signed_in(new_context, live_url, alice.user)

    page.goto(f"{live_url}/mail/m/{message.public_id}/")
    image = page.frame_locator("[data-testid=mail-frame]").get_by_role("img", name="logo")
    expect(image).to_be_visible()

    image.evaluate("img => img.decode().catch(() => null)")  # settles once it has loaded or failed
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1
    expect(page.get_by_test_id("images-blocked")).to_be_visible()
    assert attacker.requests == []  # the remote image keeps waiting for the reader's consent
