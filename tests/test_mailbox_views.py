"""Adding and editing mailboxes in the browser's forms, with the connection test run by a real worker."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import ConnectionTest, Mailbox, User
from tests.conftest import MAIL_USERS, WorkerProcess, database_url_for_subprocess
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailservers]


@pytest.fixture
def alice(transactional_db: None) -> User:
    return User.objects.create_user("alice", password="alice's web password")


@pytest.fixture
def bob(transactional_db: None) -> User:
    return User.objects.create_user("bob", password="bob's web password")


@pytest.fixture
def alice_client(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def form_data(dovecot: Dovecot, smtp: SmtpServer, **changes: Any) -> dict[str, Any]:
    data = {
        "name": "Work",
        "email_address": "alice@example.com",
        "display_name": "Alice Yılmaz",
        "colour": "#aa3377",
        "protocol": "pop3",
        "incoming_host": "localhost",
        "incoming_security": "ssl",
        "incoming_port": dovecot.ports["pop3s"],
        "incoming_login": "alice",
        "incoming_password": MAIL_USERS["alice"],
        "incoming_fingerprint": "",
        "pop3_retention": "keep",
        "pop3_retention_days": "",
        "imap_folders": "",
        "smtp_host": "localhost",
        "smtp_security": "ssl",
        "smtp_port": smtp.port,
        "smtp_same_login": "on",
        "smtp_login": "",
        "smtp_password": "",
        "smtp_fingerprint": "",
        "poll_interval_minutes": 5,
        "signature": "-- \nAlice",
        "enabled": "on",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def run_test(client: Client, data: dict[str, Any], url: str | None = None) -> tuple[str, ConnectionTest]:
    response = client.post(url or reverse("mailbox_add"), {**data, "action": "test"})
    assert response.status_code == 200
    test = ConnectionTest.objects.latest("created_at")
    return response.content.decode(), test


def failed_step(report: dict[str, Any] | None) -> str | None:
    assert report is not None
    return report["failed_step"]  # type: ignore[no-any-return]


def test_a_mailbox_is_tested_for_real_then_saved_with_its_password_encrypted(
    alice_client: Client, celery_worker: WorkerProcess, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"])

    page, test = run_test(alice_client, data)

    assert test.passed, (test.incoming_report, test.outgoing_report)
    assert 'data-testid="test-passed"' in page
    assert MAIL_USERS["alice"] not in page
    response = alice_client.post(
        reverse("mailbox_add"),
        {**data, "incoming_password": "", "connection_test": test.id, "action": "save"},
    )
    assert response.status_code == 302
    mailbox = Mailbox.objects.get()
    assert mailbox.enabled
    assert mailbox.owner.username == "alice"
    assert mailbox.incoming_password_encrypted.startswith("gAAAA")
    assert MAIL_USERS["alice"] not in mailbox.incoming_password_encrypted
    assert not ConnectionTest.objects.exists()
    listing = alice_client.get(reverse("mailbox_list")).content.decode()
    assert "alice@example.com" in listing


def test_an_enabled_mailbox_cannot_be_saved_untested(
    alice_client: Client, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    response = alice_client.post(
        reverse("mailbox_add"), {**form_data(dovecot, smtp_servers["ssl"]), "action": "save"}
    )

    assert response.status_code == 200
    assert "Test the connection with these settings first" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_a_mailbox_saved_disabled_needs_no_test(
    alice_client: Client, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"], enabled=None, incoming_host="mail.unreachable.example")

    response = alice_client.post(reverse("mailbox_add"), {**data, "action": "save"})

    assert response.status_code == 302
    assert Mailbox.objects.get().state == "disabled"


def test_a_wrong_password_is_reported_with_the_servers_words_and_cannot_be_saved(
    alice_client: Client, celery_worker: WorkerProcess, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"], incoming_password="wrong password")

    page, test = run_test(alice_client, data)

    assert not test.passed
    assert failed_step(test.incoming_report) == "auth"
    assert 'data-step="auth"' in page
    assert "Authentication failed" in page
    saved = alice_client.post(reverse("mailbox_add"), {**data, "connection_test": test.id, "action": "save"})
    assert saved.status_code == 200
    assert not Mailbox.objects.exists()


def test_settings_changed_after_the_test_must_be_tested_again(
    alice_client: Client, celery_worker: WorkerProcess, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"])
    _page, test = run_test(alice_client, data)
    assert test.passed

    changed_host = {**data, "incoming_host": "127.0.0.1", "connection_test": test.id, "action": "save"}
    changed_password = {**data, "incoming_password": "another", "connection_test": test.id, "action": "save"}

    for attempt in (changed_host, changed_password):
        assert alice_client.post(reverse("mailbox_add"), attempt).status_code == 200
    assert not Mailbox.objects.exists()


def test_the_refused_certificate_is_shown_for_the_user_to_check(
    alice_client: Client,
    celery_worker: WorkerProcess,
    dovecot_without_tls: Dovecot,
    smtp_servers: dict[str, SmtpServer],
) -> None:
    data = form_data(
        dovecot_without_tls,
        smtp_servers["plain"],
        incoming_security="starttls",
        incoming_port=dovecot_without_tls.ports["pop3"],
        smtp_security="starttls",
    )

    page, test = run_test(alice_client, data)

    assert failed_step(test.incoming_report) == "starttls"
    assert failed_step(test.outgoing_report) == "starttls"
    assert page.count('data-step="starttls"') == 2


def test_the_password_is_never_sent_back_to_the_browser(
    alice_client: Client, alice: User, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"], enabled=None)
    alice_client.post(reverse("mailbox_add"), {**data, "action": "save"})
    mailbox = Mailbox.objects.get()

    page = alice_client.get(reverse("mailbox_edit", args=[mailbox.id])).content.decode()

    assert MAIL_USERS["alice"] not in page
    assert mailbox.incoming_password_encrypted not in page
    assert re.search(r'name="incoming_password"[^>]*value=', page) is None


def test_a_dump_of_the_database_holds_no_plaintext_password(
    alice_client: Client, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    secret = "pässword-ÇĞİÖŞÜ-in-the-dump-test"
    data = form_data(dovecot, smtp_servers["ssl"], enabled=None, incoming_password=secret)
    data |= {"smtp_same_login": "", "smtp_login": "alice-smtp", "smtp_password": secret + "-smtp"}
    assert alice_client.post(reverse("mailbox_add"), {**data, "action": "test"}).status_code == 200
    assert alice_client.post(reverse("mailbox_add"), {**data, "action": "save"}).status_code == 302

    dump = subprocess.run(
        ["pg_dump", "--data-only", database_url_for_subprocess()], capture_output=True, check=True
    ).stdout

    assert Mailbox.objects.exists()
    assert ConnectionTest.objects.exists()
    assert b"alice-smtp" in dump  # the dump does hold the mailbox
    for needle in (secret, secret.encode().hex(), "pässword"):
        assert needle.encode() not in dump


def test_bob_gets_404_for_every_url_of_alices_mailbox(
    alice_client: Client, bob: User, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    alice_client.post(
        reverse("mailbox_add"), {**form_data(dovecot, smtp_servers["ssl"], enabled=None), "action": "save"}
    )
    mailbox = Mailbox.objects.get()
    alice_client.post(
        reverse("mailbox_edit", args=[mailbox.id]),
        {**form_data(dovecot, smtp_servers["ssl"]), "action": "test"},
    )
    test = ConnectionTest.objects.get()
    bob_client = Client()
    bob_client.force_login(bob)

    for url in (reverse("mailbox_edit", args=[mailbox.id]), reverse("mailbox_remove", args=[mailbox.id])):
        assert bob_client.get(url).status_code == 404, url
        for action in ("save", "test"):
            assert bob_client.post(url, {"action": action}).status_code == 404, url
    assert bob_client.get(reverse("connection_test_status", args=[test.id])).status_code == 404
    assert mailbox.name not in bob_client.get(reverse("mailbox_list")).content.decode()
    Mailbox.objects.get(id=mailbox.id)  # still there


def test_the_connection_test_is_rate_limited(
    alice_client: Client, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer], settings: Any
) -> None:
    settings.WEBMAIL_CONNECTION_TESTS_PER_10_MINUTES = 2
    data = form_data(dovecot, smtp_servers["ssl"])
    headers = {"HX-Request": "true"}
    cache.clear()
    for _ in range(2):
        alice_client.post(reverse("mailbox_add"), {**data, "action": "test"}, headers=headers)

    third = alice_client.post(reverse("mailbox_add"), {**data, "action": "test"}, headers=headers)

    assert "Too many connection tests" in third.content.decode()
    assert ConnectionTest.objects.count() == 2


def test_alice_removes_her_mailbox(
    alice_client: Client, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    alice_client.post(
        reverse("mailbox_add"), {**form_data(dovecot, smtp_servers["ssl"], enabled=None), "action": "save"}
    )
    mailbox = Mailbox.objects.get()

    assert alice_client.get(reverse("mailbox_remove", args=[mailbox.id])).status_code == 200
    assert alice_client.post(reverse("mailbox_remove", args=[mailbox.id])).status_code == 302
    assert not Mailbox.objects.exists()
