"""The reading pane over HTTP: the preference is the person's own and remembered, the list says which
layout it is in, and a message answers the pane with itself alone and anyone else with the whole page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from tests.factories import mail, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db

PANE = {"HX-Request": "true", "HX-Target": "pane"}


def pane_on(persona: Persona) -> None:
    persona.client.post(reverse("reading_pane_setting"), {"reading_pane": "1", "back": "/"})


def test_the_pane_is_off_until_the_person_turns_it_on(alice: Persona) -> None:
    stored(alice.mailbox, mail("Toplantı"))

    html = alice.client.get(reverse("home")).content.decode()

    assert "data-pane-layout" not in html
    assert 'data-testid="pane-on"' in html


def test_the_lists_switch_turns_the_pane_on_for_that_person_alone(alice: Persona, bob: Persona) -> None:
    stored(alice.mailbox, mail("Toplantı"))

    response = alice.client.post(
        reverse("reading_pane_setting"), {"reading_pane": "1", "back": "/mail/v/sent/"}
    )

    assert response["Location"] == "/mail/v/sent/"
    assert User.objects.get(pk=alice.user.pk).reading_pane
    assert not User.objects.get(pk=bob.user.pk).reading_pane
    assert 'data-testid="pane"' in alice.client.get(reverse("home")).content.decode()


def test_preferences_save_the_pane_and_show_it_next_time(alice: Persona) -> None:
    alice.client.post(
        reverse("preferences"), {"undo_seconds": "10", "conversations": "on", "reading_pane": "on"}
    )

    assert User.objects.get(pk=alice.user.pk).reading_pane
    page = alice.client.get(reverse("preferences")).content.decode()
    assert 'name="reading_pane" id="id_reading_pane" checked' in page


def test_the_lists_switch_turns_the_pane_off_again(alice: Persona) -> None:
    pane_on(alice)

    alice.client.post(reverse("reading_pane_setting"), {"reading_pane": "0", "back": "/"})

    assert not User.objects.get(pk=alice.user.pk).reading_pane


def test_the_pane_gets_the_message_alone(alice: Persona) -> None:
    [message] = stored(alice.mailbox, mail("Bütçe 2027", body="Ekte bütçe tablosu var."))
    pane_on(alice)

    response = alice.client.get(reverse("message", args=[message.public_id]), headers=PANE)

    html = response.content.decode()
    assert "<html" not in html
    assert 'data-testid="conversation"' in html
    assert "Ekte bütçe tablosu var." in html
    assert 'id="message-actions"' in html
    assert "HX-Request" in response["Vary"]


def test_a_reload_of_a_message_in_the_pane_shows_the_whole_page_and_brings_the_list(alice: Persona) -> None:
    [message] = stored(alice.mailbox, mail("Bütçe 2027"))
    pane_on(alice)

    html = alice.client.get(
        reverse("message", args=[message.public_id]) + "?back=/mail/v/inbox/"
    ).content.decode()

    assert "<html" in html
    assert 'data-testid="pane"' in html
    assert 'hx-get="/mail/v/inbox/" hx-trigger="load" hx-select="#list-side"' in html


def test_without_the_pane_a_message_is_the_one_column_page(alice: Persona) -> None:
    [message] = stored(alice.mailbox, mail("Bütçe 2027"))

    html = alice.client.get(reverse("message", args=[message.public_id])).content.decode()

    assert "<html" in html
    assert "data-pane-layout" not in html


def test_the_pane_costs_the_list_no_statement(alice: Persona) -> None:
    stored(alice.mailbox, *[mail(f"Konu {n}") for n in range(5)])
    alice.client.get(reverse("home"))  # the session's first write is not the page's

    counts = []
    for setting in ("0", "1"):
        alice.client.post(reverse("reading_pane_setting"), {"reading_pane": setting, "back": "/"})
        with CaptureQueriesContext(connection) as captured:
            alice.client.get(reverse("home"))
        counts.append(len(captured.captured_queries))

    assert counts[0] == counts[1]
