"""Stage one's batches: a UIDL another worker stored first does not fail the rest of the batch."""

from __future__ import annotations

import pytest

from accounts.models import Mailbox
from fetcher import enqueue, folders
from fetcher.ingest import storing
from fetcher.models import Message, Pop3Ledger
from tests.factories import account_mailbox, mail

pytestmark = pytest.mark.django_db(transaction=True)  # the batch commits, as a sync's does


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)
    return account_mailbox(("racer", "unused"), 995)


def test_a_batch_with_a_uidl_already_stored_stores_the_rest_one_by_one(mailbox: Mailbox) -> None:
    inbox = folders.inbox_of(mailbox)
    [first] = storing.store_pop3_batch(
        mailbox=mailbox, folder=inbox, batch=[storing.Fetched("u1", mail("Bir"))]
    )
    batch = [
        storing.Fetched("u1", mail("Bir")),
        storing.Fetched("u2", mail("İki")),
        storing.Fetched("u3", mail("Üç")),
    ]

    new = storing.store_pop3_batch(mailbox=mailbox, folder=inbox, batch=batch)  # another worker had u1

    assert len(new) == 2
    assert Message.objects.filter(mailbox=mailbox).count() == 3  # no duplicate of u1, nothing lost
    assert Pop3Ledger.objects.get(mailbox=mailbox, uid="u1").message_id == first
    assert set(
        Pop3Ledger.objects.filter(mailbox=mailbox, uid__in=["u2", "u3"]).values_list("message_id", flat=True)
    ) == set(new)
