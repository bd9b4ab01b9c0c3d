"""Postane against a second server implementation: Courier IMAP 5 and POP3 (what cPanel-style hosts run)."""

from __future__ import annotations

import pytest

from fetcher.mailnet import Endpoint, NetworkPolicy, Security
from fetcher.protocols import ImapSession, Pop3Session, Secret, ServerConfig
from tests.conftest import MAIL_USERS
from tests.servers.courier import Courier
from tests.test_connection_probe import PORT_FOR
from tests.test_pop3_sync import raw_message

pytestmark = pytest.mark.mailservers


def courier_config(
    courier: Courier, kind: str, security: Security, policy: NetworkPolicy, account: tuple[str, str]
) -> ServerConfig:
    port = courier.ports[PORT_FOR[kind, security]]
    return ServerConfig(Endpoint("localhost", port, security), account[0], Secret(account[1]), policy)


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.SSL])
def test_postane_logs_in_to_courier_imap_and_reads_its_folders(
    courier: Courier, local_policy: NetworkPolicy, security: Security
) -> None:
    user, password = courier.fresh_user()
    courier.deliver(user, raw_message(1), "one")
    courier.deliver(user, raw_message(2), "sent", folder="INBOX.Sent")

    with ImapSession(courier_config(courier, "imap", security, local_policy, (user, password))) as imap:
        names = {folder.name for folder in imap.folders()}
        imap.select("INBOX")
        uids = imap.uids()

    assert "Courier-IMAP" in imap.greeting
    assert names == {"INBOX", "INBOX.Sent"}
    assert len(uids) == 1


@pytest.mark.parametrize("security", [Security.STARTTLS, Security.SSL])
def test_postane_logs_in_to_courier_pop3_and_downloads(
    courier: Courier, local_policy: NetworkPolicy, security: Security
) -> None:
    user, password = courier.fresh_user()
    ascii_only = b"From: ayse@example.com\r\nSubject: Merhaba\r\nMessage-ID: <p1@example.com>\r\n\r\nBody\r\n"
    courier.deliver(user, ascii_only, "one")

    with Pop3Session(courier_config(courier, "pop3", security, local_policy, (user, password))) as pop:
        listing = pop.uidl()
        raw = pop.retr(listing[0][0])

    assert len(listing) == 1
    assert raw == ascii_only


def test_a_turkish_password_logs_in_to_courier(courier: Courier, local_policy: NetworkPolicy) -> None:
    account = ("zeynep", MAIL_USERS["zeynep"])
    with ImapSession(courier_config(courier, "imap", Security.SSL, local_policy, account)) as imap:
        assert imap.folders()
    with Pop3Session(courier_config(courier, "pop3", Security.SSL, local_policy, account)) as pop:
        assert pop.uidl() == []
