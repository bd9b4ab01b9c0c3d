"""The mailbox form's own checks, through the add page (no server is reached for them)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from accounts.models import Mailbox
from tests.factories import account_mailbox
from tests.personas import Persona

pytestmark = pytest.mark.django_db


def _typed(**changes: Any) -> dict[str, Any]:
    return {
        "name": "İş (IMAP)",
        "email_address": "Alice@Example.com",
        "display_name": "Alice",
        "colour": "#aa3377",
        "protocol": "imap",
        "incoming_host": "imap.example.net",
        "incoming_security": "ssl",
        "incoming_port": 993,
        "incoming_login": "alice-typed-login",
        "incoming_password": "typed password",
        "pop3_retention": "keep",
        "smtp_host": "smtp.example.net",
        "smtp_security": "ssl",
        "smtp_port": 465,
        "smtp_same_login": "on",
        "poll_interval_minutes": 5,
        "action": "save",
    } | changes


@pytest.mark.parametrize("address", ["alice@example.com", "Alice@Example.com"])  # a 500 before; a second copy
def test_adding_an_address_the_person_already_has_says_which_mailbox_and_keeps_the_input(
    address: str, alice: Persona
) -> None:
    assert alice.mailbox.email_address == "alice@example.com"

    response = alice.client.post(reverse("mailbox_add"), _typed(email_address=address))

    assert response.status_code == 200
    page = response.content.decode()
    assert "You already have a mailbox for this address: “Alice İş”" in page
    assert 'value="imap.example.net"' in page  # what was typed is still there
    assert 'value="alice-typed-login"' in page
    assert Mailbox.objects.filter(owner=alice.user).count() == 1


def test_another_persons_mailbox_with_the_address_is_no_clash(alice: Persona, bob: Persona) -> None:
    account_mailbox(("bob", "unused"), 995, owner=bob.user, email_address="alice@example.com")

    response = alice.client.post(reverse("mailbox_add"), _typed())

    assert "already have a mailbox" not in response.content.decode()
    assert Mailbox.objects.filter(
        owner=alice.user, email_address="Alice@Example.com"
    ).exists()  # saved, disabled
