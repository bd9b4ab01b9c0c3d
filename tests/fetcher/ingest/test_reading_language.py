"""Mail in an undeclared legacy charset is read by the owner's language, which the browser tells us."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from fetcher.models import Message
from tests.factories import account_mailbox, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db

# Raw windows-1254 in the header and the body, with no charset declared anywhere: old Turkish mailers.
TURKISH_1254 = (
    "Subject: Iğdır şubesi açılışı\r\nFrom: Şube <sube@example.com>\r\nTo: alice@example.com\r\n\r\n"
    "Açılış töreni çarşamba günü.\r\n"
).encode("cp1254")


def test_a_signed_in_persons_language_is_kept_on_their_account(alice: Persona) -> None:
    client = Client(headers={"accept-language": "tr"})
    client.force_login(alice.user)

    client.get("/")

    alice.user.refresh_from_db()
    assert alice.user.language == "tr"


def test_undeclared_8bit_mail_is_read_as_windows_1254_for_a_turkish_reader() -> None:
    mailbox = account_mailbox(("alice", "unused"), 995)
    User.objects.filter(pk=mailbox.owner_id).update(language="tr")

    [message] = stored(mailbox, TURKISH_1254)

    message = Message.objects.get(pk=message.pk)
    assert message.subject == "Iğdır şubesi açılışı"
    assert message.from_name == "Şube"
    assert "Açılış töreni çarşamba günü." in message.text_body
