"""In Chromium: the mailbox form asks for the days to keep on the server only when the retention
chosen uses them; without JavaScript the field stays, saying what it is for."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from accounts.models import Retention
from tests.personas import Persona
from tests.webmail.browser.pages import alice_has_her_mailbox, signed_in

__all__ = ["alice_has_her_mailbox"]  # a fixture of tests/webmail/browser/pages.py
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DAYS = "Days to keep on the server"
ONLY_FOR_DAYS = "Used only with “Delete from the server after some days”."


def test_the_days_show_only_while_deleting_after_some_days_is_chosen(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mailboxes/new/")
    retention = page.get_by_label("On the server", exact=True)
    expect(retention).to_have_value(Retention.KEEP)
    expect(page.get_by_label(DAYS)).to_be_hidden()

    retention.select_option(Retention.DELETE_AFTER_DAYS)
    expect(page.get_by_label(DAYS)).to_be_visible()
    retention.select_option(Retention.DELETE)
    expect(page.get_by_label(DAYS)).to_be_hidden()


def test_a_mailbox_deleting_after_some_days_opens_with_its_days_shown(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    alice.mailbox.pop3_retention = Retention.DELETE_AFTER_DAYS
    alice.mailbox.pop3_retention_days = 30
    alice.mailbox.save()
    page = signed_in(new_context, live_url, alice.user)
    page.goto(f"{live_url}/mailboxes/{alice.mailbox.id}/")

    expect(page.get_by_label(DAYS)).to_have_value("30")
    expect(page.get_by_label(DAYS)).to_be_visible()


def test_without_javascript_the_days_say_which_choice_uses_them(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    page = signed_in(new_context, live_url, alice.user, java_script_enabled=False)
    page.goto(f"{live_url}/mailboxes/new/")

    expect(page.get_by_label(DAYS)).to_be_visible()
    expect(page.get_by_text(ONLY_FOR_DAYS)).to_be_visible()
