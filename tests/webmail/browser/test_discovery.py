"""Adding a mailbox from its address in Chromium (issue #14): the steps appear while the discovery
runs, then what was found and its real connection test, and one click adds the mailbox."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from accounts.models import Mailbox, MailboxDiscovery
from fetcher.discovery import discovery_run
from tests.conftest import MAIL_USERS, WorkerProcess, wait_for
from tests.personas import Persona
from tests.webmail.browser.pages import signed_in

pytestmark = [pytest.mark.slow, pytest.mark.mailservers, pytest.mark.django_db(transaction=True)]


def test_the_page_shows_the_steps_as_they_happen_and_adds_the_tested_mailbox(
    new_context: Callable[..., BrowserContext],
    live_url: str,
    alice: Persona,
    discovering: list[str],
    celery_worker: WorkerProcess,
) -> None:
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mailboxes/add/")
    page.get_by_label("Email address").fill("alice@dovecot.test")
    page.get_by_label("Password").fill(MAIL_USERS["alice"])
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("steps")).to_contain_text("Looking…")
    page.evaluate("window.samePage = true")

    discovery_run(discovery_id=wait_for(lambda: discovering and discovering[0], "the discovery to be queued"))

    expect(page.get_by_test_id("source")).to_contain_text("The provider's own settings", timeout=15_000)
    expect(page.get_by_test_id("save")).to_be_visible(timeout=30_000)  # the worker's connection test passed
    assert page.evaluate("window.samePage") is True  # brought up to date by htmx, not reloaded
    page.get_by_test_id("save").click()
    expect(page.get_by_text("Mailbox “alice@dovecot.test” saved.")).to_be_visible()
    assert Mailbox.objects.get(owner=alice.user).protocol == "imap"
    assert not MailboxDiscovery.objects.exists()
