"""What the engine keeps about each mailbox (fetcher.MailboxSync): made with the mailbox, started
afresh by new settings, claimed as the lease was on the mailbox row, and read with the mailboxes."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Mailbox
from accounts.services import Passwords, mailbox_save, mailbox_set_enabled
from fetcher.models import MailboxState, MailboxSync
from fetcher.sync.claim import mailbox_claim
from tests.factories import account_mailbox
from tests.personas import Persona

SETTINGS: dict[str, Any] = {
    "name": "Work",
    "email_address": "alice@example.com",
    "protocol": "pop3",
    "incoming_host": "mail.example.com",
    "incoming_port": 995,
    "incoming_security": "ssl",
    "incoming_login": "alice",
    "incoming_fingerprint": "",
    "smtp_host": "mail.example.com",
    "smtp_port": 587,
    "smtp_security": "starttls",
    "smtp_same_login": True,
    "smtp_login": "",
    "smtp_fingerprint": "",
    "poll_interval_minutes": 5,
    "pop3_retention": "keep",
}


def _troubled(mailbox: Mailbox) -> None:
    """Left paused after login failures, in the middle of a folder listing's note."""
    MailboxSync.objects.filter(mailbox=mailbox).update(
        state=MailboxState.ERROR,
        paused=True,
        consecutive_failures=3,
        next_sync_at=timezone.now() + timedelta(hours=6),
        folders_listed_at=timezone.now(),
        last_error_kind="auth",
    )


def test_every_new_mailbox_has_its_record_however_it_is_made(alice: Persona) -> None:
    by_hand = account_mailbox(("hand", "pw"), 995, owner=alice.user)
    saved = mailbox_save(
        owner=alice.user, mailbox=None, values={**SETTINGS, "enabled": False}, passwords=Passwords("pw")
    )

    assert MailboxSync.objects.get(pk=by_hand.pk).state == MailboxState.IDLE
    assert MailboxSync.objects.get(pk=saved.pk).state == MailboxState.DISABLED
    assert MailboxSync.objects.count() == Mailbox.objects.count() == 2


def test_the_admin_adds_a_mailbox_with_its_record(client: Client, alice: Persona, charlie: Persona) -> None:
    client.force_login(charlie.user)
    form = {**SETTINGS, "owner": alice.user.pk, "colour": "#1f5fa8", "enabled": "on", "imap_folders": "[]"}

    response = client.post("/admin/accounts/mailbox/add/", {**form, "paused": "on"})

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Mailbox.objects.get().sync.paused


def test_new_settings_start_the_engine_afresh_and_keep_a_running_syncs_claim(alice: Persona) -> None:
    mailbox = account_mailbox(("alice", "pw"), 995, owner=alice.user)
    _troubled(mailbox)
    claim = mailbox_claim(mailbox.id)
    assert claim is None  # paused
    MailboxSync.objects.filter(mailbox=mailbox).update(paused=False)
    claim = mailbox_claim(mailbox.id)
    assert claim is not None

    mailbox_save(
        owner=alice.user,
        mailbox=Mailbox.objects.get(pk=mailbox.pk),
        values={"name": "Ev"},
        passwords=Passwords(),
    )

    engine = MailboxSync.objects.get(pk=mailbox.pk)
    assert (engine.state, engine.paused, engine.consecutive_failures) == (MailboxState.IDLE, False, 0)
    assert engine.next_sync_at is None
    assert engine.folders_listed_at is None
    assert engine.last_error_kind == "auth"  # the record of what happened stays
    assert (engine.sync_lease_token, engine.sync_lease_until) == (
        claim[0],
        claim[1].sync.sync_lease_until,
    )


def test_disabling_and_enabling_show_in_the_state_alone(alice: Persona) -> None:
    mailbox = account_mailbox(("alice", "pw"), 995, owner=alice.user)
    _troubled(mailbox)

    mailbox_set_enabled(mailbox=mailbox, enabled=False)
    assert MailboxSync.objects.get(pk=mailbox.pk).state == MailboxState.DISABLED
    mailbox_set_enabled(mailbox=mailbox, enabled=True)

    engine = MailboxSync.objects.get(pk=mailbox.pk)
    assert (engine.state, engine.paused, engine.consecutive_failures) == (MailboxState.IDLE, True, 3)


@pytest.mark.django_db(transaction=True)
def test_a_claim_waits_for_a_disable_being_committed_and_then_claims_nothing() -> None:
    mailbox = account_mailbox(("alice", "pw"), 995)
    claimed: list[object] = []

    def claim() -> None:
        try:
            claimed.append(mailbox_claim(mailbox.id))
        finally:
            connections.close_all()

    with transaction.atomic():
        mailbox_set_enabled(mailbox=mailbox, enabled=False)
        worker = threading.Thread(target=claim)
        worker.start()
        worker.join(timeout=1)
        assert worker.is_alive(), "the claim should wait for the disable to commit"
    worker.join(timeout=10)

    assert claimed == [None]
    assert MailboxSync.objects.get(pk=mailbox.pk).sync_lease_token == ""


def _queries(client: Client, url: str) -> int:
    client.get(url)  # the session's first write is not the page's
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    "page", ["mailbox list", "admin mailboxes", "admin mailbox", "admin user"], ids=lambda page: page
)
def test_a_page_showing_health_sends_as_many_statements_for_three_mailboxes(
    alice: Persona, page: str, charlie: Persona
) -> None:
    admin = charlie.user
    first = account_mailbox(("one", "pw"), 995, owner=alice.user)
    urls = {
        "mailbox list": reverse("mailbox_list"),
        "admin mailboxes": "/admin/accounts/mailbox/",
        "admin mailbox": f"/admin/accounts/mailbox/{first.pk}/change/",
        "admin user": f"/admin/accounts/user/{alice.user.pk}/change/",
    }
    client = Client()
    client.force_login(alice.user if page == "mailbox list" else admin)

    one = _queries(client, urls[page])
    for name in ("two", "three"):
        account_mailbox((name, "pw"), 995, owner=alice.user)
    MailboxSync.objects.update(state=MailboxState.ERROR, last_error_message="The server refused the login.")

    assert _queries(client, urls[page]) == one


def test_the_admin_filters_sorts_and_shows_mailboxes_by_the_engines_record(
    client: Client,
    alice: Persona,
    charlie: Persona,
) -> None:
    client.force_login(charlie.user)
    calm = account_mailbox(("calm", "pw"), 995, owner=alice.user)
    troubled = account_mailbox(("troubled", "pw"), 995, owner=alice.user)
    _troubled(troubled)
    MailboxSync.objects.filter(mailbox=troubled).update(last_error_message="The server refused the login.")

    errors = client.get("/admin/accounts/mailbox/", {"state__exact": "error"}).content.decode()
    by_state = client.get("/admin/accounts/mailbox/", {"o": "6"}).content.decode()  # not by name
    change = client.get(f"/admin/accounts/mailbox/{troubled.pk}/change/").content.decode()

    assert troubled.email_address in errors
    assert calm.email_address not in errors
    assert by_state.index(troubled.email_address) < by_state.index(calm.email_address)  # error < idle
    assert "The server refused the login." in change
    assert 'id="id_paused" checked' in change
