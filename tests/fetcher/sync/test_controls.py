"""Sync now from the browser, the admin and the command line, with a real worker doing the sync."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Mailbox
from fetcher.models import MailboxSync, Message
from tests.conftest import BASE_DIR, WorkerProcess, wait_for
from tests.factories import account_mailbox, raw_message
from tests.personas import Persona
from tests.servers.dovecot import Dovecot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailservers]


@pytest.fixture
def mailbox(dovecot: Dovecot, alice: Persona) -> Mailbox:
    user, password = dovecot.fresh_user()
    for number in range(3):
        dovecot.deliver(user, raw_message(number), f"m{number}")
    not_due = "2099-01-01T00:00:00Z"  # only "sync now" may start it
    return account_mailbox(
        (user, password), dovecot.ports["pop3s"], owner=alice.user, name="Ev", next_sync_at=not_due
    )


def test_alice_syncs_now_from_the_mailbox_list_and_sees_what_was_stored(
    client: Client, mailbox: Mailbox, celery_worker: WorkerProcess
) -> None:
    client.force_login(mailbox.owner)

    response = client.post(reverse("mailbox_sync", args=[mailbox.id]))

    assert response.status_code == 302
    wait_for(
        lambda: Message.objects.filter(mailbox=mailbox, parse_state="parsed").count() == 3, "the sync", 60
    )
    wait_for(
        lambda: not MailboxSync.objects.filter(pk=mailbox.id, sync_lease_until__isnull=False).exists(),
        "the end",
    )
    listing = client.get(reverse("mailbox_list")).content.decode()
    assert "3 messages" in listing
    assert "Sync now" in listing


def test_bob_cannot_sync_alices_mailbox(client: Client, mailbox: Mailbox, bob: Persona) -> None:
    client.force_login(bob.user)

    assert client.post(reverse("mailbox_sync", args=[mailbox.id])).status_code == 404
    assert client.get(reverse("mailbox_sync", args=[mailbox.id])).status_code in {404, 405}
    mailbox.refresh_from_db()
    assert mailbox.sync.next_sync_at is not None
    assert mailbox.sync.next_sync_at.year == 2099


def test_the_admin_syncs_now_and_shows_messages_and_storage(
    client: Client,
    mailbox: Mailbox,
    celery_worker: WorkerProcess,
    charlie: Persona,
) -> None:
    client.force_login(charlie.user)

    client.post("/admin/accounts/mailbox/", {"action": "sync_now", "_selected_action": [mailbox.id]})

    wait_for(
        lambda: Message.objects.filter(mailbox=mailbox, parse_state="parsed").count() == 3, "the sync", 60
    )
    listing = client.get("/admin/accounts/mailbox/").content.decode()
    assert '<td class="field-message_count">3</td>' in listing
    assert "bytes" in listing or "KB" in listing


def test_the_command_line_syncs_and_waits_then_lists_the_count(
    mailbox: Mailbox, celery_worker: WorkerProcess, worker_environment: dict[str, str]
) -> None:
    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "mailbox", *args],
            cwd=BASE_DIR,
            env=worker_environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    synced = manage("sync", mailbox.email_address, "--wait")
    listed = manage("list", "--json")

    assert synced.returncode == 0, synced.stderr
    assert "3 messages stored" in synced.stdout
    assert json.loads(listed.stdout)[0]["messages"] == 3
    wait_for(lambda: Message.objects.filter(parse_state="parsed").count() == 3, "the parse tasks", 60)
