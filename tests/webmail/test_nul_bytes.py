"""A NUL byte typed or sent anywhere answers normally: PostgreSQL text cannot hold one."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from fetcher.models import OutgoingMessage
from tests.factories import mail, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db

NUL = "\x00"


@pytest.mark.parametrize(
    "query",
    [
        f"mer{NUL}haba",
        NUL,
        f"from:{NUL}bob",
        f"to:a{NUL}",
        f"subject:{NUL}x",
        f"in:{NUL}inbox",
        f"in:{NUL}",
        f"before:2026-01-0{NUL}1",
        f"after:{NUL}",
        f"is:{NUL}read",
        f"has:{NUL}attachment",
        f'"mer{NUL}haba"',
    ],
)
def test_search_with_a_nul_answers_normally(alice: Persona, query: str) -> None:
    stored(alice.mailbox, mail("Merhaba", sender="Bob <bob@example.net>"))

    response = alice.client.get(reverse("search"), {"q": query})

    assert response.status_code == 200


def test_search_finds_the_words_around_a_nul(alice: Persona) -> None:
    stored(alice.mailbox, mail("Merhaba dünya", sender="Bob <bob@example.net>"))

    # The word is marked: "merhaba" is one of the query's prefixes (its stem "merhap" is not a prefix of it).
    assert (
        "<mark>Merhaba</mark> dünya"
        in alice.client.get(reverse("search"), {"q": f"merhaba{NUL}"}).content.decode()
    )
    assert "Merhaba dünya" in alice.client.get(reverse("search"), {"q": f"from:bob{NUL}"}).content.decode()


def test_address_suggestions_with_a_nul_answer_normally(alice: Persona) -> None:
    stored(alice.mailbox, mail("x", sender="Meltem Kaya <meltem@example.org>"))

    response = alice.client.get(reverse("address_suggestions"), {"q": f"mel{NUL}"})

    assert response.status_code == 200
    assert response.json()["suggestions"] == ["Meltem Kaya <meltem@example.org>"]


def test_autosave_with_nul_in_every_field_keeps_the_draft_without_them(alice: Persona) -> None:
    fields = {
        "mailbox": str(alice.mailbox.pk),
        "to": f"dilek@exa{NUL}mple.net",
        "cc": NUL,
        "bcc": f"{NUL}x@example.net",
        "subject": f"Yar{NUL}ım",
        "text": f"Ya{NUL}zı",
        "rich": "on",
        "html": f"<p>Ya{NUL}zı</p>",
    }

    response = alice.client.post(reverse("compose_autosave"), fields)

    assert response.status_code == 200
    draft = OutgoingMessage.objects.get(owner=alice.user)
    assert draft.subject == "Yarım"
    assert draft.text_body.strip() == "Yazı"
    assert NUL not in draft.html_body
    assert NUL not in str(draft.to) + str(draft.cc) + str(draft.bcc)


@pytest.mark.parametrize("field", ["to", "subject", "text", "send_at"])
def test_the_compose_form_answers_a_nul_with_a_form_error(alice: Persona, field: str) -> None:
    data = {
        "mailbox": str(alice.mailbox.pk),
        "to": "bob@example.net",
        "subject": "S",
        "text": "T",
        "action": "save",
    }

    response = alice.client.post(reverse("compose"), data | {field: f"a{NUL}b"})

    assert response.status_code == 200
    assert not OutgoingMessage.objects.exists()


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("compose", {"reply": NUL}),
        ("compose", {"forward": f"{NUL}1"}),
        ("home", {"after": NUL}),
        ("search", {"q": "x", "after": NUL}),
    ],
)
def test_other_parameters_with_a_nul_never_give_a_server_error(
    alice: Persona, url: str, params: dict[str, str]
) -> None:
    assert alice.client.get(reverse(url), params).status_code < 500


def test_a_nul_in_the_login_form_is_a_normal_failed_login(client: Client) -> None:
    response = client.post("/login/", {"username": f"ali{NUL}ce", "password": f"x{NUL}"})

    assert response.status_code == 200


def test_a_nul_in_a_message_action_is_a_404_not_a_500(alice: Persona) -> None:
    data = {"action": "move", "message": [NUL], "folder": NUL}

    assert alice.client.post(reverse("messages_action"), data).status_code < 500


@pytest.mark.parametrize(
    "url", ["/admin/accounts/mailbox/", "/admin/accounts/user/", "/admin/axes/accessattempt/"]
)
def test_an_admin_search_with_a_nul_never_gives_a_server_error(
    client: Client, url: str, charlie: Persona
) -> None:
    client.force_login(charlie.user)

    assert client.get(url, {"q": f"ali{NUL}ce"}).status_code < 500
