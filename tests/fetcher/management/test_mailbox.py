"""`manage.py mailbox ...` run as a separate process, as a script would, against real servers."""

from __future__ import annotations

import json

import pytest

from accounts.models import Mailbox
from tests.conftest import MAIL_USERS
from tests.fetcher.management.conftest import Manage
from tests.personas import Persona
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailservers]


def add_args(dovecot: Dovecot, smtp: SmtpServer, *extra: str) -> list[str]:
    return [
        "add",
        "alice",
        *("--address", "alice@example.com", "--protocol", "pop3", "--host", "localhost"),
        *("--port", str(dovecot.ports["pop3s"]), "--security", "ssl", "--login", "alice"),
        *("--smtp-host", "localhost", "--smtp-port", str(smtp.port), "--smtp-security", "ssl"),
        *extra,
    ]


def test_add_tests_the_servers_and_takes_the_password_from_stdin(
    manage: Manage, alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    result = manage(*add_args(dovecot, smtp_servers["ssl"], "--password-stdin"), stdin=MAIL_USERS["alice"])

    assert result.returncode == 0, result.stderr
    assert "pop3: ok" in result.stdout
    assert "smtp: ok" in result.stdout
    mailbox = Mailbox.objects.get()
    assert mailbox.enabled
    assert mailbox.incoming_port == dovecot.ports["pop3s"]
    assert MAIL_USERS["alice"] not in result.stdout + result.stderr


def test_add_takes_the_password_from_an_environment_variable(
    manage: Manage, alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    args = add_args(dovecot, smtp_servers["ssl"], "--password-env", "ALICE_PW")

    result = manage(*args, env={"ALICE_PW": MAIL_USERS["alice"]})

    assert result.returncode == 0, result.stderr


def test_add_refuses_a_password_on_the_command_line_and_saves_nothing_when_the_test_fails(
    manage: Manage, alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    no_password = manage(*add_args(dovecot, smtp_servers["ssl"]))
    wrong = manage(*add_args(dovecot, smtp_servers["ssl"], "--password-stdin"), stdin="wrong")
    on_argv = manage(*add_args(dovecot, smtp_servers["ssl"], "--password", "x"))

    assert no_password.returncode == 1
    assert "never on the command line" in no_password.stderr
    assert wrong.returncode == 1
    assert "pop3: FAILED at auth" in wrong.stdout
    assert "Authentication failed" in wrong.stdout
    assert on_argv.returncode != 0
    assert not Mailbox.objects.exists()
    for result in (no_password, wrong, on_argv):
        assert "Traceback" not in result.stderr


def test_list_json_gives_owner_address_protocol_state_and_last_error(
    manage: Manage, alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    manage(*add_args(dovecot, smtp_servers["ssl"], "--password-stdin", "--disabled"), stdin="anything")

    result = manage("list", "--json")

    rows = json.loads(result.stdout)
    assert rows == [
        {
            **rows[0],
            "owner": "alice",
            "address": "alice@example.com",
            "protocol": "pop3",
            "state": "disabled",
            "enabled": False,
            "last_error": None,
        }
    ]


def test_test_enable_disable_and_remove_name_a_mailbox_by_address_or_id(
    manage: Manage, alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    manage(
        *add_args(dovecot, smtp_servers["ssl"], "--password-stdin", "--disabled"), stdin=MAIL_USERS["alice"]
    )
    mailbox = Mailbox.objects.get()

    tested = manage("test", "alice@example.com")
    enabled = manage("enable", str(mailbox.id))
    assert Mailbox.objects.get().enabled
    disabled = manage("disable", "ALICE@example.com")
    assert not Mailbox.objects.get().enabled
    missing = manage("test", "nobody@example.com")
    removed = manage("remove", "alice@example.com")

    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "pop3: ok" in tested.stdout
    assert enabled.returncode == disabled.returncode == removed.returncode == 0
    assert missing.returncode == 1
    assert missing.stderr.strip() == "CommandError: no mailbox 'nobody@example.com'"
    assert not Mailbox.objects.exists()


def test_a_missing_encryption_key_fails_closed_with_one_line(
    manage: Manage, alice: Persona, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> None:
    manage(
        *add_args(dovecot, smtp_servers["ssl"], "--password-stdin", "--disabled"), stdin=MAIL_USERS["alice"]
    )
    other_key = "b3RoZXIta2V5LTMyLWJ5dGVzLWxvbmctLS0tLS0tLS0="

    result = manage("test", "alice@example.com", env={"WEBMAIL_ENCRYPTION_KEYS": other_key})

    assert result.returncode == 1
    assert "cannot be decrypted" in result.stderr
    assert "Traceback" not in result.stderr
