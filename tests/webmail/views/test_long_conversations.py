"""A long conversation reads like Gmail's and Thunderbird's: the read messages are a line each, the
unread ones and the one the link named are open, and the page starts at the newest unread one
(issue #13.8)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from fetcher.models import Message
from tests.factories import conversation
from tests.personas import Persona

pytestmark = pytest.mark.django_db


def shown(persona: Persona, message: Message) -> list[tuple[str, bool, bool]]:
    """Each message of the page as (id, open, where the page starts), oldest first."""
    response = persona.client.get(reverse("message", args=[message.public_id]))
    assert response.status_code == 200
    tags = re.findall(
        r'<details class="mail( focus)?" id="m-([0-9a-f-]+)" data-testid="mail"( open)?',
        response.content.decode(),
    )
    return [(public_id, bool(opened), bool(focus)) for focus, public_id, opened in tags]


def test_a_read_conversation_of_twenty_opens_only_the_message_the_link_named(alice: Persona) -> None:
    messages = conversation(alice.mailbox, 20, unread=set())

    page = shown(alice, messages[-1])

    assert len(page) == 20
    assert [opened for _id, opened, _focus in page] == [False] * 19 + [True]
    assert page[-1] == (str(messages[-1].public_id), True, True)


def test_unread_messages_are_open_and_the_page_starts_at_the_newest_of_them(alice: Persona) -> None:
    messages = conversation(alice.mailbox, 20, unread={12, 15})

    page = shown(alice, messages[-1])

    open_ones = [number for number, (_id, opened, _focus) in enumerate(page) if opened]
    assert open_ones == [12, 15, 19]  # the unread ones, and the newest that the row's link named
    assert [number for number, (_id, _opened, focus) in enumerate(page) if focus] == [15]


def test_an_older_message_named_by_a_search_result_is_open_among_its_collapsed_conversation(
    alice: Persona,
) -> None:
    messages = conversation(alice.mailbox, 6, unread=set())

    page = shown(alice, messages[2])

    assert [opened for _id, opened, _focus in page] == [False, False, True, False, False, False]
    assert page[2][2]  # and the page starts there


def test_a_collapsed_message_says_who_when_and_what_on_its_one_line(alice: Persona) -> None:
    messages = conversation(alice.mailbox, 3, unread=set())

    html = alice.client.get(reverse("message", args=[messages[-1].public_id])).content.decode()

    first = html[html.index(f'id="m-{messages[1].public_id}"') :]
    line = first[: first.index("</summary>")]
    assert "Ayşe Yılmaz" in line
    assert "Yanıt 1" in line  # its snippet
    assert "<time" in line
