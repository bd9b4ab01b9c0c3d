"""Adding a mailbox from its address and password (issue #14): the page shows where Postane looked,
what it found and from where, the real connection test of it, and saves it; the full form stays one
click away, filled in. Against dnsmasq, a real HTTPS server with the provider's own autoconfig,
Dovecot and the SMTP server, and a real worker running the connection test."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import Mailbox, MailboxDiscovery
from fetcher.discovery import discovery_run
from tests.conftest import MAIL_USERS, WorkerProcess, wait_for
from tests.personas import Persona
from tests.servers.dovecot import Dovecot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mailservers]


def page(persona: Persona, discovery_id: str) -> str:
    response = persona.client.get(reverse("discovery", args=[discovery_id]))
    assert response.status_code == 200
    return response.content.decode()


def test_an_address_and_a_password_are_enough_to_add_an_imap_mailbox(
    alice: Persona, discovering: list[str], celery_worker: WorkerProcess, dovecot: Dovecot
) -> None:
    response = alice.client.post(
        reverse("mailbox_new"), {"address": "alice@dovecot.test", "password": MAIL_USERS["alice"]}
    )
    assert response.status_code == 302
    [discovery_id] = discovering
    assert response["Location"] == reverse("discovery", args=[discovery_id])

    discovery_run(discovery_id=discovery_id)

    done = wait_for(
        lambda: "Add this mailbox" in (html := page(alice, discovery_id)) and html, "the test to pass"
    )
    assert "From The provider&#x27;s own settings" in done
    assert "https://autoconfig.dovecot.test:" in done
    assert MAIL_USERS["alice"] not in done  # the password never comes back to the browser
    assert re.search(r"<td>IMAP</td><td>localhost</td><td>\d+</td><td>ssl</td><td>alice</td>", done)
    saved = alice.client.post(reverse("discovery_save", args=[discovery_id]))
    assert saved["Location"] == reverse("mailbox_list")
    mailbox = Mailbox.objects.get(owner=alice.user)
    assert (mailbox.protocol, mailbox.incoming_port, mailbox.incoming_login) == (
        "imap",
        dovecot.ports["imaps"],
        "alice",
    )
    assert mailbox.incoming_password_encrypted  # the tested password, kept encrypted
    assert not MailboxDiscovery.objects.exists()


def test_pop3_can_be_chosen_instead_and_is_tested_before_it_is_saved(
    alice: Persona, discovering: list[str], celery_worker: WorkerProcess, dovecot: Dovecot
) -> None:
    alice.client.post(
        reverse("mailbox_new"), {"address": "alice@dovecot.test", "password": MAIL_USERS["alice"]}
    )
    [discovery_id] = discovering
    discovery_run(discovery_id=discovery_id)
    wait_for(lambda: "Add this mailbox" in page(alice, discovery_id), "the IMAP test to pass")

    alice.client.post(reverse("discovery", args=[discovery_id]), {"protocol": "pop3"})

    wait_for(
        lambda: "Use IMAP instead" in (html := page(alice, discovery_id)) and "Add this mailbox" in html,
        "POP3",
    )
    alice.client.post(reverse("discovery_save", args=[discovery_id]))
    assert Mailbox.objects.get(owner=alice.user).protocol == "pop3"


def test_a_wrong_password_is_refused_by_the_test_and_nothing_is_saved(
    alice: Persona, discovering: list[str], celery_worker: WorkerProcess
) -> None:
    alice.client.post(
        reverse("mailbox_new"), {"address": "alice@dovecot.test", "password": "not the password"}
    )
    [discovery_id] = discovering
    discovery_run(discovery_id=discovery_id)

    html = wait_for(
        lambda: 'data-step="auth"' in (found := page(alice, discovery_id)) and found, "the refusal"
    )

    assert "Add this mailbox" not in html
    assert alice.client.post(reverse("discovery_save", args=[discovery_id])).status_code == 302
    assert not Mailbox.objects.exists()


def test_when_nothing_is_found_the_form_is_one_click_away_with_the_address(
    alice: Persona, discovering: list[str]
) -> None:
    alice.client.post(reverse("mailbox_new"), {"address": "ayse@hicbiryer.test", "password": "x"})
    [discovery_id] = discovering
    discovery_run(discovery_id=discovery_id)

    html = page(alice, discovery_id)
    form = alice.client.get(reverse("mailbox_add"), {"discovery": discovery_id}).content.decode()

    assert 'data-testid="nothing-found"' in html
    assert "Mozilla&#x27;s ISPDB" in html
    assert 'value="ayse@hicbiryer.test"' in form


def test_someone_elses_discovery_is_404(alice: Persona, bob: Persona, discovering: list[str]) -> None:
    alice.client.post(reverse("mailbox_new"), {"address": "alice@dovecot.test", "password": "x"})
    [discovery_id] = discovering

    assert bob.client.get(reverse("discovery", args=[discovery_id])).status_code == 404
    assert bob.client.post(reverse("discovery_save", args=[discovery_id])).status_code == 404
    assert bob.client.post(reverse("discovery", args=[discovery_id]), {"protocol": "pop3"}).status_code == 404
