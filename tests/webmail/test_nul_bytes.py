"""A NUL byte typed or sent anywhere answers normally: PostgreSQL text cannot hold one."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from fetcher.models import OutgoingMessage
from tests.factories import mail, stored
from tests.webmail.views.test_reading import alice

__all__ = ["alice"]
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
def test_search_with_a_nul_answers_normally(alice: Any, query: str) -> None:
    stored(alice[1], mail("Merhaba", sender="Bob <bob@example.net>"))

    response = alice[2].get(reverse("search"), {"q": query})

    assert response.status_code == 200


def test_search_finds_the_words_around_a_nul(alice: Any) -> None:
    stored(alice[1], mail("Merhaba dünya", sender="Bob <bob@example.net>"))

    # The word is marked: "merhaba" is one of the query's prefixes (its stem "merhap" is not a prefix of it).
    assert (
        "<mark>Merhaba</mark> dünya"
        in alice[2].get(reverse("search"), {"q": f"merhaba{NUL}"}).content.decode()
    )
    assert "Merhaba dünya" in alice[2].get(reverse("search"), {"q": f"from:bob{NUL}"}).content.decode()


def test_address_suggestions_with_a_nul_answer_normally(alice: Any) -> None:
    stored(alice[1], mail("x", sender="Meltem Kaya <meltem@example.org>"))

    response = alice[2].get(reverse("address_suggestions"), {"q": f"mel{NUL}"})

    assert response.status_code == 200
    assert response.json()["suggestions"] == ["Meltem Kaya <meltem@example.org>"]


def test_autosave_with_nul_in_every_field_keeps_the_draft_without_them(alice: Any) -> None:
    fields = {
        "mailbox": str(alice[1].pk),
        "to": f"dilek@exa{NUL}mple.net",
        "cc": NUL,
        "bcc": f"{NUL}x@example.net",
        "subject": f"Yar{NUL}ım",
        "text": f"Ya{NUL}zı",
        "rich": "on",
        "html": f"<p>Ya{NUL}zı</p>",
    }

    response = alice[2].post(reverse("compose_autosave"), fields)

    assert response.status_code == 200
    draft = OutgoingMessage.objects.get(owner=alice[0])
    assert draft.subject == "Yarım"
    assert draft.text_body.strip() == "Yazı"
    assert NUL not in draft.html_body
    assert NUL not in str(draft.to) + str(draft.cc) + str(draft.bcc)


@pytest.mark.parametrize("field", ["to", "subject", "text", "send_at"])
def test_the_compose_form_answers_a_nul_with_a_form_error(alice: Any, field: str) -> None:
    data = {
        "mailbox": str(alice[1].pk),
        "to": "bob@example.net",
        "subject": "S",
        "text": "T",
        "action": "save",
    }

    response = alice[2].post(reverse("compose"), data | {field: f"a{NUL}b"})

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
    alice: Any, url: str, params: dict[str, str]
) -> None:
    assert alice[2].get(reverse(url), params).status_code < 500


def test_a_nul_in_the_login_form_is_a_normal_failed_login(client: Client) -> None:
    response = client.post("/login/", {"username": f"ali{NUL}ce", "password": f"x{NUL}"})

    assert response.status_code == 200


def test_a_nul_in_a_message_action_is_a_404_not_a_500(alice: Any) -> None:
    data = {"action": "move", "message": [NUL], "folder": NUL}

    assert alice[2].post(reverse("messages_action"), data).status_code < 500


@pytest.mark.parametrize(
    "url", ["/admin/accounts/mailbox/", "/admin/accounts/user/", "/admin/axes/accessattempt/"]
)
def test_an_admin_search_with_a_nul_never_gives_a_server_error(client: Client, url: str) -> None:
    client.force_login(User.objects.create_superuser("root", password="root password long enough"))

    assert client.get(url, {"q": f"ali{NUL}ce"}).status_code < 500
