"""Adding and editing mailboxes in the browser's forms, with the connection test run by a real worker."""

from __future__ import annotations

import contextlib
import functools
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import crypto
from accounts.models import CONNECTION_FIELDS, ConnectionTest, Mailbox
from accounts.services import MissingPasswordError, Passwords, connection_settings, mailbox_save
from accounts.tasks import purge_connection_tests
from fetcher.services import connection_test_start
from tests.conftest import MAIL_USERS, WorkerProcess, database_url_for_subprocess, wait_for
from tests.personas import Persona
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from webmail.forms import MailboxForm

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailservers]


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
    alice: Persona, celery_worker: WorkerProcess, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"])

    page, test = run_test(alice.client, data)

    assert test.passed, (test.incoming_report, test.outgoing_report)
    assert 'data-testid="test-passed"' in page
    assert MAIL_USERS["alice"] not in page
    response = alice.client.post(
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
    listing = alice.client.get(reverse("mailbox_list")).content.decode()
    assert "alice@example.com" in listing


def test_an_enabled_mailbox_cannot_be_saved_untested(
    alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    response = alice.client.post(
        reverse("mailbox_add"), {**form_data(dovecot, smtp_servers["ssl"]), "action": "save"}
    )

    assert response.status_code == 200
    assert "Test the connection with these settings first" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_a_mailbox_saved_disabled_needs_no_test(
    alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"], enabled=None, incoming_host="mail.unreachable.example")

    response = alice.client.post(reverse("mailbox_add"), {**data, "action": "save"})

    assert response.status_code == 302
    assert Mailbox.objects.get().sync.state == "disabled"


def test_a_wrong_password_is_reported_with_the_servers_words_and_cannot_be_saved(
    alice: Persona, celery_worker: WorkerProcess, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"], incoming_password="wrong password")

    page, test = run_test(alice.client, data)

    assert not test.passed
    assert failed_step(test.incoming_report) == "auth"
    assert 'data-step="auth"' in page
    assert "Authentication failed" in page
    saved = alice.client.post(reverse("mailbox_add"), {**data, "connection_test": test.id, "action": "save"})
    assert saved.status_code == 200
    assert not Mailbox.objects.exists()


def test_settings_changed_after_the_test_must_be_tested_again(
    alice: Persona, celery_worker: WorkerProcess, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"])
    _page, test = run_test(alice.client, data)
    assert test.passed

    changed_host = {**data, "incoming_host": "127.0.0.1", "connection_test": test.id, "action": "save"}
    changed_password = {**data, "incoming_password": "another", "connection_test": test.id, "action": "save"}

    for attempt in (changed_host, changed_password):
        assert alice.client.post(reverse("mailbox_add"), attempt).status_code == 200
    assert not Mailbox.objects.exists()


def test_the_refused_certificate_is_shown_for_the_user_to_check(
    alice: Persona,
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

    page, test = run_test(alice.client, data)

    assert failed_step(test.incoming_report) == "starttls"
    assert failed_step(test.outgoing_report) == "starttls"
    assert page.count('data-step="starttls"') == 2


def test_the_password_is_never_sent_back_to_the_browser(
    alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    data = form_data(dovecot, smtp_servers["ssl"], enabled=None)
    alice.client.post(reverse("mailbox_add"), {**data, "action": "save"})
    mailbox = Mailbox.objects.get()

    page = alice.client.get(reverse("mailbox_edit", args=[mailbox.id])).content.decode()

    assert MAIL_USERS["alice"] not in page
    assert mailbox.incoming_password_encrypted not in page
    assert re.search(r'name="incoming_password"[^>]*value=', page) is None


def test_a_dump_of_the_database_holds_no_plaintext_password(
    alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    secret = "pässword-ÇĞİÖŞÜ-in-the-dump-test"
    data = form_data(dovecot, smtp_servers["ssl"], enabled=None, incoming_password=secret)
    data |= {"smtp_same_login": "", "smtp_login": "alice-smtp", "smtp_password": secret + "-smtp"}
    assert alice.client.post(reverse("mailbox_add"), {**data, "action": "test"}).status_code == 200
    assert alice.client.post(reverse("mailbox_add"), {**data, "action": "save"}).status_code == 302

    dump = subprocess.run(
        ["pg_dump", "--data-only", database_url_for_subprocess()], capture_output=True, check=True
    ).stdout

    assert Mailbox.objects.exists()
    assert ConnectionTest.objects.exists()
    assert b"alice-smtp" in dump  # the dump does hold the mailbox
    for needle in (secret, secret.encode().hex(), "pässword"):
        assert needle.encode() not in dump


def test_bob_gets_404_for_every_url_of_alices_mailbox(
    alice: Persona, bob: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    alice.client.post(
        reverse("mailbox_add"), {**form_data(dovecot, smtp_servers["ssl"], enabled=None), "action": "save"}
    )
    mailbox = Mailbox.objects.get()
    alice.client.post(
        reverse("mailbox_edit", args=[mailbox.id]),
        {**form_data(dovecot, smtp_servers["ssl"]), "action": "test"},
    )
    test = ConnectionTest.objects.get()
    bob_client = bob.client

    for url in (reverse("mailbox_edit", args=[mailbox.id]), reverse("mailbox_remove", args=[mailbox.id])):
        assert bob_client.get(url).status_code == 404, url
        for action in ("save", "test"):
            assert bob_client.post(url, {"action": action}).status_code == 404, url
    assert bob_client.get(reverse("connection_test_status", args=[test.id])).status_code == 404
    assert mailbox.name not in bob_client.get(reverse("mailbox_list")).content.decode()
    Mailbox.objects.get(id=mailbox.id)  # still there


def test_the_connection_test_is_rate_limited(
    alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer], settings: Any
) -> None:
    settings.WEBMAIL_CONNECTION_TESTS_PER_10_MINUTES = 2
    data = form_data(dovecot, smtp_servers["ssl"])
    headers = {"HX-Request": "true"}
    cache.clear()
    for _ in range(2):
        alice.client.post(reverse("mailbox_add"), {**data, "action": "test"}, headers=headers)

    third = alice.client.post(reverse("mailbox_add"), {**data, "action": "test"}, headers=headers)

    assert "Too many connection tests" in third.content.decode()
    assert ConnectionTest.objects.count() == 2


def test_alice_removes_her_mailbox(
    alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    alice.client.post(
        reverse("mailbox_add"), {**form_data(dovecot, smtp_servers["ssl"], enabled=None), "action": "save"}
    )
    mailbox = Mailbox.objects.get()

    assert alice.client.get(reverse("mailbox_remove", args=[mailbox.id])).status_code == 200
    assert alice.client.post(reverse("mailbox_remove", args=[mailbox.id])).status_code == 302
    assert not Mailbox.objects.exists()


class RecordingServer:
    """A TCP server on 127.0.0.1 that answers like a POP3 server and keeps every byte it is sent."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _address = self._listener.accept()
                self.connections += 1
                threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError), conn.makefile("rb") as reader:
            conn.sendall(b"+OK harvester ready\r\n")
            for line in reader:
                self.received += line
                conn.sendall(b"+OK\r\n")

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def harvester() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()


@pytest.fixture
def data_for(dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]) -> Callable[..., dict[str, Any]]:
    """form_data for the test servers, with these changes."""
    return functools.partial(form_data, dovecot, smtp_servers["ssl"])


@pytest.fixture
def saved_mailbox(alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]) -> Mailbox:
    data = form_data(dovecot, smtp_servers["ssl"], enabled=None)
    assert alice.client.post(reverse("mailbox_add"), {**data, "action": "save"}).status_code == 302
    return Mailbox.objects.get()


def test_a_changed_host_never_gets_the_stored_password(
    alice: Persona,
    celery_worker: WorkerProcess,
    saved_mailbox: Mailbox,
    data_for: Callable[..., dict[str, Any]],
    harvester: RecordingServer,
) -> None:
    elsewhere = data_for(
        incoming_host="127.0.0.1",
        incoming_port=harvester.port,
        incoming_security="none",
        incoming_password="",
    )

    response = alice.client.post(
        reverse("mailbox_edit", args=[saved_mailbox.id]), {**elsewhere, "action": "test"}
    )

    page = response.content.decode()
    assert "You changed the incoming server, the incoming port, the incoming security" in page
    assert not ConnectionTest.objects.exists()
    time.sleep(1)  # what a worker would have sent by now, had the test been queued
    assert MAIL_USERS["alice"].encode() not in harvester.received
    assert harvester.connections == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"incoming_port": 1}, "the incoming port"),
        ({"incoming_security": "starttls"}, "the incoming security"),
        ({"incoming_login": "alice2"}, "the login"),
        ({"incoming_fingerprint": "ab" * 32}, "the incoming certificate"),
        ({"protocol": "imap"}, "the protocol"),
        ({"smtp_host": "smtp.evil.example"}, "the SMTP server"),  # shared login
        ({"smtp_port": 2525}, "the SMTP port"),
    ],
)
def test_every_change_of_where_the_password_goes_asks_for_it_again(
    alice: Persona,
    saved_mailbox: Mailbox,
    data_for: Callable[..., dict[str, Any]],
    change: dict[str, Any],
    named: str,
) -> None:
    data = data_for(enabled=None, incoming_password="", **change)
    url = reverse("mailbox_edit", args=[saved_mailbox.id])

    for action in ("test", "save"):
        response = alice.client.post(url, {**data, "action": action})
        assert response.status_code == 200, action
        assert named in response.context["form"].errors["incoming_password"][0], action
    assert not ConnectionTest.objects.exists()
    assert Mailbox.objects.get().incoming_port == saved_mailbox.incoming_port


def test_a_changed_smtp_server_asks_for_the_smtp_password_again(
    alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    separate = {"smtp_same_login": "", "smtp_login": "alice", "smtp_password": MAIL_USERS["alice"]}
    data = form_data(dovecot, smtp_servers["ssl"], enabled=None, **separate)
    assert alice.client.post(reverse("mailbox_add"), {**data, "action": "save"}).status_code == 302
    mailbox = Mailbox.objects.get()
    url = reverse("mailbox_edit", args=[mailbox.id])

    for change in ({"smtp_host": "127.0.0.1"}, {"smtp_security": "none"}, {"smtp_login": "someone"}):
        moved = {**data, "incoming_password": "", "smtp_password": "", **change, "action": "test"}
        errors = alice.client.post(url, moved).context["form"].errors
        assert "smtp_password" in errors, change
        assert "incoming_password" not in errors, change
    assert not ConnectionTest.objects.exists()


def test_the_password_typed_again_is_tested_and_saved_with_the_new_host(
    alice: Persona,
    celery_worker: WorkerProcess,
    saved_mailbox: Mailbox,
    data_for: Callable[..., dict[str, Any]],
) -> None:
    url = reverse("mailbox_edit", args=[saved_mailbox.id])
    moved = data_for(incoming_host="127.0.0.1")  # the password typed again

    _page, test = run_test(alice.client, moved, url)
    saved = alice.client.post(
        url, {**moved, "incoming_password": "", "connection_test": test.id, "action": "save"}
    )

    assert test.passed, test.incoming_report
    assert saved.status_code == 302
    assert Mailbox.objects.get().incoming_host == "127.0.0.1"


def test_unchanged_settings_are_tested_with_the_stored_password(
    alice: Persona,
    celery_worker: WorkerProcess,
    saved_mailbox: Mailbox,
    data_for: Callable[..., dict[str, Any]],
) -> None:
    renamed = data_for(name="Renamed", incoming_password="")

    _page, test = run_test(alice.client, renamed, reverse("mailbox_edit", args=[saved_mailbox.id]))

    assert test.passed, test.incoming_report
    assert test.incoming_password_encrypted == saved_mailbox.incoming_password_encrypted


def test_the_services_refuse_the_stored_password_for_a_changed_host(
    alice: Persona, saved_mailbox: Mailbox
) -> None:
    values = {name: getattr(saved_mailbox, name) for name in CONNECTION_FIELDS} | {
        "incoming_host": "evil.example"
    }

    with pytest.raises(MissingPasswordError):
        connection_test_start(owner=alice.user, mailbox=saved_mailbox, values=values, passwords=Passwords())
    with pytest.raises(MissingPasswordError):
        mailbox_save(owner=alice.user, mailbox=saved_mailbox, values=values, passwords=Passwords())
    assert not ConnectionTest.objects.exists()
    assert Mailbox.objects.get().incoming_host == "localhost"


def test_beat_purges_connection_tests_and_their_passwords_once_no_save_can_use_them(
    alice: Persona, celery_worker: WorkerProcess, settings: Any
) -> None:
    def test_row(age: timedelta) -> ConnectionTest:
        row = ConnectionTest.objects.create(
            owner=alice.user, settings={}, incoming_password_encrypted=crypto.encrypt("held for a save")
        )
        ConnectionTest.objects.filter(id=row.id).update(created_at=timezone.now() - age)
        return row

    old, recent = test_row(timedelta(hours=1, minutes=1)), test_row(timedelta(minutes=59))
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "accounts.tasks.purge_connection_tests" in schedule

    purge_connection_tests.delay()

    wait_for(lambda: not ConnectionTest.objects.filter(id=old.id).exists(), "the old test to be purged")
    assert ConnectionTest.objects.filter(id=recent.id).exists()


def test_a_test_past_its_use_cannot_lend_its_password_to_a_save(
    alice: Persona, data_for: Callable[..., dict[str, Any]]
) -> None:
    data = data_for(enabled=None)
    form = MailboxForm(data, owner=alice.user)
    assert form.is_valid(), form.errors
    old = ConnectionTest.objects.create(
        owner=alice.user,
        settings=connection_settings(form.cleaned_data),
        incoming_password_encrypted=crypto.encrypt(MAIL_USERS["alice"]),
        incoming_password_digest=crypto.secret_digest(MAIL_USERS["alice"]),
    )
    ConnectionTest.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(hours=2))

    response = alice.client.post(
        reverse("mailbox_add"), {**data, "incoming_password": "", "connection_test": old.id, "action": "save"}
    )

    assert response.status_code == 200
    assert "Enter the password." in response.content.decode()
    assert not Mailbox.objects.exists()
