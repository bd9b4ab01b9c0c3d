"""A POP3 server without UIDL: the connection test says so, and sync falls back to fingerprints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import Mailbox
from fetcher import sync
from fetcher.mail.net import Endpoint, NetworkPolicy, Security
from fetcher.mail.probe import probe
from fetcher.mail.session import Secret, ServerConfig
from fetcher.models import Message, Pop3Ledger
from tests.factories import raw_message
from tests.personas import Persona
from tests.servers.fake_pop3 import NoUidlPop3


@pytest.fixture
def server() -> Iterator[NoUidlPop3]:
    fake = NoUidlPop3([raw_message(number) for number in range(3)]).start()
    yield fake
    fake.stop()


def test_the_connection_test_passes_and_notes_the_missing_uidl(
    server: NoUidlPop3, local_policy: NetworkPolicy
) -> None:
    config = ServerConfig(
        Endpoint("localhost", server.port, Security.NONE), "alice", Secret("secret"), local_policy
    )

    report = probe("pop3", config)

    assert report.ok
    assert report.facts["uidl"] is False


@pytest.mark.django_db
def test_sync_recognises_messages_by_fingerprint_and_never_fetches_one_twice(
    server: NoUidlPop3, local_policy: NetworkPolicy, settings: Any, alice: Persona
) -> None:
    settings.WEBMAIL_ALLOWED_MAIL_NETWORKS = list(local_policy.allowed_networks)
    settings.WEBMAIL_ALLOWED_MAIL_PORTS = None
    mailbox = Mailbox(
        owner=alice.user,
        name="Old",
        email_address="alice@example.com",
        incoming_host="localhost",
        incoming_port=server.port,
        incoming_security="none",
        incoming_login="alice",
        smtp_host="localhost",
        pop3_retention="delete",
    )
    mailbox.set_incoming_password("secret")
    mailbox.save()

    first = sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=30)
    server.deleted.clear()  # pretend the server kept them after all
    second = sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=30)

    assert first.fetched == 3
    assert second.fetched == 0
    assert Message.objects.filter(mailbox=mailbox).count() == 3
    assert all(uid.startswith("fp:") for uid in Pop3Ledger.objects.values_list("uid", flat=True))
