"""In Chromium: add a mailbox through the form, test the connection for real, see it listed."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from accounts.models import Mailbox
from tests.conftest import MAIL_USERS, WorkerProcess
from tests.personas import PASSWORD, Persona
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.slow, pytest.mark.mailservers, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(new_context: Callable[..., BrowserContext], live_url: str, alice: Persona) -> Page:
    context = new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{live_url}/login/")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("empty-mailbox")).to_be_visible()
    return page


def test_alice_adds_a_mailbox_tests_it_and_sees_it_listed(
    page: Page, celery_worker: WorkerProcess, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    page.get_by_role("link", name="Add mailbox").click()
    page.get_by_role("link", name="Enter the server settings yourself").click()  # not discovered
    page.get_by_label("Name", exact=True).fill("Home")
    page.get_by_label("Email address").fill("alice@example.com")
    page.get_by_label("Incoming protocol").select_option("imap")
    page.get_by_label("Incoming server").fill("localhost")
    page.locator("#id_incoming_security").select_option("ssl")
    # The form proposes IMAP's implicit-TLS port; this test server listens elsewhere.
    expect(page.locator("#id_incoming_port")).to_have_value("993")
    page.locator("#id_incoming_port").fill(str(dovecot.ports["imaps"]))
    page.get_by_label("Login", exact=True).fill("alice")
    page.locator("#id_incoming_password").fill(MAIL_USERS["alice"])
    page.get_by_label("Outgoing (SMTP) server").fill("localhost")
    page.locator("#id_smtp_security").select_option("ssl")
    expect(page.locator("#id_smtp_port")).to_have_value("465")
    page.locator("#id_smtp_port").fill(str(smtp_servers["ssl"].port))
    expect(page.get_by_label("Days to keep on the server")).to_be_hidden()

    page.get_by_role("button", name="Test connection").click()

    expect(page.get_by_test_id("test-passed")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("connection-test")).to_contain_text("Folder list")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("mailbox-list")).to_contain_text("alice@example.com")
    expect(page.get_by_role("navigation")).to_contain_text("Home")
    assert Mailbox.objects.get().protocol == "imap"


def test_a_failed_test_names_the_step_in_the_browser(
    page: Page, celery_worker: WorkerProcess, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    page.get_by_role("link", name="Add mailbox").click()
    page.get_by_role("link", name="Enter the server settings yourself").click()  # not discovered
    page.get_by_label("Name", exact=True).fill("Home")
    page.get_by_label("Email address").fill("alice@example.com")
    page.get_by_label("Incoming server").fill("localhost")
    page.locator("#id_incoming_port").fill(str(dovecot.ports["pop3s"]))
    page.get_by_label("Login", exact=True).fill("alice")
    page.locator("#id_incoming_password").fill("not her password")
    page.get_by_label("Outgoing (SMTP) server").fill("localhost")
    page.locator("#id_smtp_security").select_option("ssl")
    page.locator("#id_smtp_port").fill(str(smtp_servers["ssl"].port))

    page.get_by_role("button", name="Test connection").click()

    failed = page.locator('[data-kind="pop3"] [data-step="auth"]')
    expect(failed).to_contain_text("Login", timeout=30_000)
    expect(failed).to_contain_text("Authentication failed")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("Test the connection")
    assert not Mailbox.objects.exists()
