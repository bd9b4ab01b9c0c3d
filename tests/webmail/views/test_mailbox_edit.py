"""Editing a mailbox: only a change that affects the connection needs a new connection test; the rest
(name, colour, signature, poll interval...) saves at once. The form says that a password is stored and
that leaving the field empty keeps it, without ever sending the password to the browser."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from accounts.models import ConnectionTest, Mailbox
from tests.factories import account_mailbox
from tests.personas import Persona

pytestmark = pytest.mark.django_db

STORED = "stored-secret-ğüşıöç"
UNTESTED = "Test the connection with these settings first"


@pytest.fixture
def mailbox(alice: Persona) -> Mailbox:
    """Enabled, so its settings passed a test when they were saved."""
    box = account_mailbox(("alice", STORED), 995, owner=alice.user, name="İş", signature="-- \nAlice")
    box.smtp_port, box.smtp_security = 465, "ssl"
    box.save()
    return box


def edit_data(mailbox: Mailbox, **changes: Any) -> dict[str, Any]:
    """The edit form as the page sends it back: every value as stored, no password typed."""
    data: dict[str, Any] = {
        name: getattr(mailbox, name)
        for name in (
            *("name", "email_address", "display_name", "colour", "protocol", "incoming_host"),
            *("incoming_security", "incoming_port", "incoming_login", "incoming_fingerprint"),
            *("pop3_retention", "smtp_host", "smtp_security", "smtp_port", "smtp_login", "smtp_fingerprint"),
            *("poll_interval_minutes", "signature"),
        )
    }
    data |= {"pop3_retention_days": "", "imap_folders": "", "incoming_password": "", "smtp_password": ""}
    data |= {"smtp_same_login": "on" if mailbox.smtp_same_login else "", "enabled": "on", "action": "save"}
    data |= changes
    return {name: value for name, value in data.items() if value is not None}


def save(persona: Persona, mailbox: Mailbox, **changes: Any) -> Any:
    return persona.client.post(reverse("mailbox_edit", args=[mailbox.id]), edit_data(mailbox, **changes))


@pytest.mark.parametrize(
    "change",
    [
        {"name": "İş (eski)"},
        {"colour": "#aa3377"},
        {"signature": "-- \nAlice Yılmaz\nMuhasebe"},
        {"poll_interval_minutes": 15},
        {"display_name": "Alice Yılmaz"},
        {"pop3_delete_with_local": "on"},
    ],
)
def test_a_change_that_does_not_touch_the_connection_saves_without_a_test(
    alice: Persona, mailbox: Mailbox, change: dict[str, Any]
) -> None:
    response = save(alice, mailbox, **change)

    assert response.status_code == 302, response.context["form"].errors
    saved = Mailbox.objects.get(pk=mailbox.pk)
    for name, value in change.items():
        assert getattr(saved, name) == (True if value == "on" else value)
    assert saved.enabled
    assert saved.incoming_password_encrypted == mailbox.incoming_password_encrypted  # kept as it was
    assert not ConnectionTest.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"incoming_host": "127.0.0.1", "incoming_password": STORED},
        {"incoming_port": 1995, "incoming_password": STORED},
        {"incoming_security": "starttls", "incoming_password": STORED},
        {"incoming_login": "alice2", "incoming_password": STORED},
        {"protocol": "imap", "incoming_password": STORED},
        {"incoming_fingerprint": "ab" * 32, "incoming_password": STORED},
        {"incoming_password": "a new password"},
        {"smtp_host": "smtp.example.net", "incoming_password": STORED},
        {"smtp_port": 587, "incoming_password": STORED},
        {"smtp_security": "starttls", "incoming_password": STORED},
        {"smtp_fingerprint": "cd" * 32, "incoming_password": STORED},
        {"smtp_same_login": "", "smtp_login": "gonderen", "smtp_password": "smtp-secret"},
    ],
)
def test_a_change_that_affects_the_connection_still_needs_a_test(
    alice: Persona, mailbox: Mailbox, change: dict[str, Any]
) -> None:
    response = save(alice, mailbox, **change)

    assert response.status_code == 200
    assert UNTESTED in response.content.decode()
    assert Mailbox.objects.get(pk=mailbox.pk).incoming_host == mailbox.incoming_host


def test_enabling_a_disabled_mailbox_needs_a_test(alice: Persona, mailbox: Mailbox) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).update(enabled=False)

    response = save(alice, mailbox, colour="#aa3377")

    assert response.status_code == 200
    assert UNTESTED in response.content.decode()
    assert not Mailbox.objects.get(pk=mailbox.pk).enabled


def test_the_edit_form_says_a_password_is_stored_and_empty_keeps_it_but_never_shows_it(
    alice: Persona, mailbox: Mailbox
) -> None:
    page = alice.client.get(reverse("mailbox_edit", args=[mailbox.id])).content.decode()

    assert page.count("A password is stored. Leave this empty to keep it") == 1  # incoming; SMTP shares it
    assert STORED not in page
    assert mailbox.incoming_password_encrypted not in page


def test_a_form_shown_again_with_an_error_still_says_the_password_is_kept(
    alice: Persona, mailbox: Mailbox
) -> None:
    response = save(alice, mailbox, poll_interval_minutes=0)

    page = response.content.decode()
    assert response.status_code == 200
    assert "A password is stored. Leave this empty to keep it" in page
    assert STORED not in page


def test_a_separate_smtp_password_is_said_to_be_stored_too(alice: Persona, mailbox: Mailbox) -> None:
    mailbox.smtp_same_login, mailbox.smtp_login = False, "gonderen"
    mailbox.set_smtp_password("smtp-secret")
    mailbox.save()

    page = alice.client.get(reverse("mailbox_edit", args=[mailbox.id])).content.decode()

    assert page.count("A password is stored. Leave this empty to keep it") == 2
    assert "smtp-secret" not in page


def test_a_new_mailbox_has_no_stored_password_to_speak_of(alice: Persona) -> None:
    page = alice.client.get(reverse("mailbox_add")).content.decode()

    assert "A password is stored" not in page
    assert "Leave empty to keep the stored password" not in page
