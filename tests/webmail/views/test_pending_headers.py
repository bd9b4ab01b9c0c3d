"""A message stored but not parsed yet shows what its headers already say, in the list and on its
page, read from the first few KB of its raw bytes: never the whole message, in no extra statement."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Mailbox
from fetcher import folders
from fetcher.ingest import storing
from fetcher.models import Message, ParseState
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db

SUBJECT = "Toplantı notları ğüşıöç"


def pending(
    alice: Persona, count: int = 1, *, body: str = "Gövde", mailbox: Mailbox | None = None
) -> list[Message]:
    """Stage one only: raw bytes stored, nothing parsed (no parse task runs inside a test's transaction)."""
    box = mailbox or alice.mailbox
    raws = [mail(f"{SUBJECT} {number}", body=body) for number in range(count)]
    start = Message.objects.filter(mailbox=box).count()
    batch = [storing.Fetched(f"p{start + number}", raw) for number, raw in enumerate(raws)]
    ids = storing.store_pop3_batch(mailbox=box, folder=folders.inbox_of(box), batch=batch)
    found = list(Message.objects.filter(id__in=ids).order_by("id"))
    assert all(message.parse_state == ParseState.PENDING for message in found)
    assert all(message.subject == "" for message in found)
    return found


def test_the_list_shows_a_pending_messages_sender_and_subject(alice: Persona) -> None:
    pending(alice)

    page = alice.client.get(reverse("home")).content.decode()

    assert "Ayşe Yılmaz" in page
    assert f"{SUBJECT} 0" in page
    assert "(no sender)" not in page
    assert "(no subject)" not in page


def test_every_mailboxs_pending_messages_show_their_subjects_in_all_inboxes(alice: Persona) -> None:
    pending(alice)
    other = account_mailbox(("alice-ev", "unused"), 995, owner=alice.user, name="Ev")
    pending(alice, 2, mailbox=other)
    stored(alice.mailbox, mail("Okunmuş ileti"))

    page = alice.client.get(reverse("home")).content.decode()

    assert len(re.findall(rf'<span class="subject" id="s-[^"]+">{SUBJECT}', page)) == 3
    assert re.search(r'<span class="subject" id="s-[^"]+">Okunmuş ileti</span>', page)


def test_the_message_page_shows_a_pending_messages_subject_and_sender(alice: Persona) -> None:
    message = pending(alice)[0]

    page = alice.client.get(reverse("message", args=[message.public_id])).content.decode()

    assert re.search(rf'<h1 data-testid="subject">{SUBJECT} 0</h1>', page)
    assert "Ayşe Yılmaz" in page


def test_the_list_reads_only_the_start_of_pending_messages_in_as_many_statements(alice: Persona) -> None:
    pending(alice, 1, body="x" * 300_000)
    alice.client.get(reverse("home"))  # the session's first write is not the page's
    with CaptureQueriesContext(connection) as one:
        alice.client.get(reverse("home"))
    pending(alice, 30, body="x" * 300_000)
    with CaptureQueriesContext(connection) as many:
        page = alice.client.get(reverse("home")).content.decode()

    assert page.count(SUBJECT) >= 31
    assert len(many.captured_queries) == len(one.captured_queries)
    whole = [
        q["sql"] for q in many.captured_queries if re.search(r'"fetcher_message"\."raw"(?!, 1,)', q["sql"])
    ]
    assert whole == []
