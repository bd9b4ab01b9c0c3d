"""The list's rows for a keyboard and a screen reader: each checkbox says which message it chooses,
the star is a button of its own, and every page starts with a link past the menus (issue #13.13)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from fetcher.models import Message
from tests.factories import mail, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db


def test_each_rows_checkbox_is_named_by_its_sender_and_subject(alice: Persona) -> None:
    stored(alice.mailbox, mail("Bütçe", sender="Mehmet Öz <mehmet@example.com>"), mail("Toplantı"))

    html = alice.client.get(reverse("home")).content.decode()

    assert re.search(r'<span id="choose-word" hidden>Choose</span>', html)
    names = []
    for ids in re.findall(
        r'<input type="checkbox" name="message" value="[^"]+" aria-labelledby="([^"]+)">', html
    ):
        first, sender, subject = ids.split()
        assert first == "choose-word"
        names.append(tuple(_text_of(html, part) for part in (sender, subject)))
    assert sorted(names) == [("Ayşe Yılmaz", "Toplantı"), ("Mehmet Öz", "Bütçe")]
    assert html.count("Bütçe") == 1  # named by reference: the subject is not written twice


def test_a_rows_star_is_a_button_that_stars_that_message_alone(alice: Persona) -> None:
    starred, other = stored(alice.mailbox, mail("Yıldızlı"), mail("Öteki"))
    html = alice.client.get(reverse("home")).content.decode()
    button = re.search(
        rf'<button class="star" form="(\w+-one)" name="message" value="{starred.public_id}"', html
    )
    assert button is not None
    form = re.search(rf'<form method="post" action="([^"]+)" id="{button[1]}" hidden>(.*?)</form>', html)
    assert form is not None
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form[2]))

    alice.client.post(form[1], fields | {"message": str(starred.public_id)})

    assert fields["action"] == "star"
    assert Message.objects.get(pk=starred.pk).flagged
    assert not Message.objects.get(pk=other.pk).flagged
    again = alice.client.get(reverse("home")).content.decode()
    assert (
        f'form="unstar-one" name="message" value="{starred.public_id}" aria-label="Star" aria-pressed="true"'
        in again
    )


@pytest.mark.parametrize("url", ["/", "/login/", "/nowhere/"])
def test_every_page_starts_with_a_link_past_the_menus_to_its_main_part(
    url: str, alice: Persona, client: Client
) -> None:
    signed_in = alice.client if url != "/login/" else client

    html = signed_in.get(url).content.decode()

    body = html[html.index("<body") :]
    first_link = re.search(r"<a [^>]*>", body)
    assert first_link is not None
    assert 'href="#main"' in first_link[0]
    assert 'id="main"' in body


def _text_of(html: str, element_id: str) -> str:
    """The text of the span with this id, its markup (a mailbox's colour chip) left out."""
    found = re.search(rf'id="{element_id}">(.*?)</span>', html)
    assert found is not None, element_id
    return re.sub(r"<[^>]+>", "", found[1]).strip()
