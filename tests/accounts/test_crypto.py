"""Mailbox passwords at rest: encrypted, rotatable, and a worker without the key refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from accounts import crypto
from accounts.models import Mailbox
from fetcher.config import incoming_config
from fetcher.mail.session import Secret
from tests.conftest import BASE_DIR
from tests.personas import Persona

OLD_KEY = "dGVzdC1rZXktb25lLTMyLWJ5dGVzLWxvbmctLS0tLS0="
NEW_KEY = "bmV3LWtleS10d28tMzItYnl0ZXMtbG9uZy0tLS0tLS0="


@pytest.fixture
def mailbox(alice: Persona, settings: Any) -> Mailbox:
    settings.WEBMAIL_ENCRYPTION_KEYS = [OLD_KEY]
    box = Mailbox(owner=alice.user, name="W", email_address="a@example.com", incoming_host="mail.example.com")
    box.incoming_port, box.incoming_login, box.smtp_host = 995, "alice", "mail.example.com"
    box.set_incoming_password("çok-gizli-parola")
    box.save()
    return box


def test_a_password_is_stored_encrypted_and_read_back_with_the_key(mailbox: Mailbox) -> None:
    stored = Mailbox.objects.get().incoming_password_encrypted

    assert "çok-gizli" not in stored
    assert crypto.decrypt(stored) == "çok-gizli-parola"


def test_rotation_re_encrypts_under_the_new_key_so_the_old_one_can_go(
    mailbox: Mailbox, settings: Any
) -> None:
    settings.WEBMAIL_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    before = Mailbox.objects.get().incoming_password_encrypted

    call_command("reencrypt_secrets", stdout=open(os.devnull, "w"))  # noqa: SIM115, PTH123

    settings.WEBMAIL_ENCRYPTION_KEYS = [NEW_KEY]
    after = Mailbox.objects.get()
    assert after.incoming_password_encrypted != before
    assert incoming_config(after).password.reveal() == "çok-gizli-parola"


def test_a_wrong_key_fails_closed_with_a_clear_message(mailbox: Mailbox, settings: Any) -> None:
    settings.WEBMAIL_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(crypto.EncryptionKeyError, match="not in WEBMAIL_ENCRYPTION_KEYS"):
        incoming_config(Mailbox.objects.get())
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("reencrypt_secrets")


def test_no_key_means_nothing_can_be_encrypted(settings: Any) -> None:
    settings.WEBMAIL_ENCRYPTION_KEYS = []

    with pytest.raises(crypto.EncryptionKeyError, match="not set"):
        crypto.encrypt("x")


def test_a_worker_without_keys_refuses_to_start() -> None:
    env = {**os.environ, "DEBUG": "true", "WEBMAIL_ENCRYPTION_KEYS": ""}

    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "webmail", "worker", "--pool", "solo"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "WEBMAIL_ENCRYPTION_KEYS is required to run a worker" in result.stderr


def test_a_secret_never_shows_itself() -> None:
    secret = Secret("hunter2")

    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
