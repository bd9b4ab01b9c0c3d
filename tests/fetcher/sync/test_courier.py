"""Postane against a second server implementation: Courier IMAP 5 and POP3 (what cPanel-style hosts run)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from accounts.models import Mailbox
from fetcher.mail.imap import ImapSession
from fetcher.mail.net import Endpoint, MailError, NetworkPolicy, Security, Step
from fetcher.mail.pop3 import Pop3Session
from fetcher.mail.session import Secret, ServerConfig
from fetcher.models import Folder, Message, Pop3Ledger
from fetcher.services import message_delete_for_good, message_move, message_set_flags
from tests.conftest import MAIL_USERS
from tests.factories import account_mailbox, raw_message, run_sync
from tests.servers.courier import Courier

pytestmark = [pytest.mark.mailservers, pytest.mark.django_db]


def courier_config(
    courier: Courier, kind: str, security: Security, policy: NetworkPolicy, account: tuple[str, str]
) -> ServerConfig:
    port = courier.port_for(kind, security)
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


@pytest.mark.parametrize("kind", ["imap", "pop3"])
@pytest.mark.parametrize("server_name", ["courier", "dovecot"])
def test_a_refused_login_shows_the_servers_words_not_python_bytes(
    request: pytest.FixtureRequest, local_policy: NetworkPolicy, kind: str, server_name: str
) -> None:
    server = request.getfixturevalue(server_name)
    user, _password = server.fresh_user()
    port = server.port_for(kind, Security.SSL)
    patient = dataclasses.replace(local_policy, timeout=20.0)  # Courier answers a bad login after 5 s
    config = ServerConfig(Endpoint("localhost", port, Security.SSL), user, Secret("wrong"), patient)
    session = ImapSession(config) if kind == "imap" else Pop3Session(config)

    with pytest.raises(MailError) as refused:
        session.__enter__()

    assert refused.value.step is Step.AUTH
    assert refused.value.server_text
    assert "b'" not in refused.value.server_text
    assert 'b"' not in refused.value.server_text
    assert "b'" not in str(refused.value)


def test_pop3_says_utf8_so_courier_serves_raw_utf8_headers_byte_for_byte(
    courier: Courier, local_policy: NetworkPolicy
) -> None:
    account = courier.fresh_user()
    raw = raw_message(1, subject="Günaydın, Çağrı")  # raw UTF-8 in From and Subject, as RFC 6532 allows
    courier.deliver(account[0], raw, "utf8")

    with Pop3Session(courier_config(courier, "pop3", Security.SSL, local_policy, account)) as pop:
        fetched = pop.retr(pop.uidl()[0][0])

    assert fetched == raw


# --- IMAP sync against Courier: UIDs it saves only for folders opened read-write ----------------------


@pytest.fixture
def courier_account(courier: Courier) -> tuple[str, str]:
    return courier.fresh_user()


@pytest.fixture
def courier_mailbox(courier: Courier, courier_account: tuple[str, str], local_mail_settings: None) -> Mailbox:
    return account_mailbox(
        courier_account,
        courier.ports["imaps"],
        protocol="imap",
        name="Courier",
        imap_folders=["INBOX", "INBOX.Archive"],
    )


@pytest.fixture
def observer(courier: Courier, courier_account: tuple[str, str]) -> Iterator[IMAPClient]:
    """Another mail client that only looks (EXAMINE): it must not make Courier save any UIDs."""
    with courier.client(courier_account) as client:
        yield client


def subjects_of(client: IMAPClient, uids: list[int]) -> list[str]:
    found = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    # Courier names the item with the field quoted: BODY[HEADER.FIELDS ("SUBJECT")].
    headers = [next(v for k, v in data.items() if k.startswith(b"BODY[")) for data in found.values()]
    return sorted(header.decode().partition(":")[2].strip() for header in headers)


def on_server(client: IMAPClient, folder: str) -> list[str]:
    client.select_folder(folder, readonly=True)
    return subjects_of(client, client.search(["ALL"]))


def deliver_numbered(courier: Courier, user: str, folder: str, numbers: range) -> dict[int, str]:
    """Deliver "Merhaba <number>" messages; returns their Message-IDs by number."""
    message_ids = {}
    for number in numbers:
        raw = raw_message(number)
        courier.deliver(user, raw, f"m{number}", folder=folder)
        message_ids[number] = raw.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
    return message_ids


def stored_subjects(mailbox: Mailbox, folder: str) -> list[str]:
    found = Message.objects.filter(mailbox=mailbox, folder__name=folder).values_list("raw", flat=True)
    return sorted(bytes(raw).split(b"Subject: ")[1].split(b"\r\n")[0].decode() for raw in found)


def test_a_folder_keeps_its_uidvalidity_from_one_courier_session_to_the_next(
    courier: Courier, courier_account: tuple[str, str], courier_mailbox: Mailbox
) -> None:
    deliver_numbered(courier, courier_account[0], "INBOX.Archive", range(3))
    assert run_sync(courier_mailbox).fetched == 3
    first = Folder.objects.get(mailbox=courier_mailbox, name="INBOX.Archive").uidvalidity

    time.sleep(1.1)  # Courier derives a read-only UIDVALIDITY from the clock
    assert run_sync(courier_mailbox).fetched == 0

    assert Folder.objects.get(mailbox=courier_mailbox, name="INBOX.Archive").uidvalidity == first


def test_a_flag_set_in_postane_reaches_courier(
    courier: Courier, courier_account: tuple[str, str], courier_mailbox: Mailbox, observer: IMAPClient
) -> None:
    ids = deliver_numbered(courier, courier_account[0], "INBOX.Archive", range(2))
    run_sync(courier_mailbox)
    time.sleep(1.1)
    message = Message.objects.get(mailbox=courier_mailbox, message_id=ids[1])

    message_set_flags(message=message, flagged=True)
    run_sync(courier_mailbox)

    observer.select_folder("INBOX.Archive", readonly=True)
    assert subjects_of(observer, observer.search(["FLAGGED"])) == ["Merhaba 1"]
    assert Message.objects.get(pk=message.pk).pending_flags == {}


def test_a_move_then_a_delete_on_courier_keep_every_message_once_and_delete_the_right_one(
    courier: Courier, courier_account: tuple[str, str], courier_mailbox: Mailbox, observer: IMAPClient
) -> None:
    user = courier_account[0]
    ids = deliver_numbered(courier, user, "INBOX", range(3))
    ids |= deliver_numbered(courier, user, "INBOX.Archive", range(10, 12))
    assert run_sync(courier_mailbox).fetched == 5
    archive = Folder.objects.get(mailbox=courier_mailbox, name="INBOX.Archive")
    moved = Message.objects.get(mailbox=courier_mailbox, message_id=ids[0])

    message_move(message=moved, folder=archive)  # a copy into Archive: its unsaved UIDs would shift
    assert run_sync(courier_mailbox).status == "done"
    doomed = Message.objects.get(mailbox=courier_mailbox, message_id=ids[11])
    message_delete_for_good(message=doomed)
    assert run_sync(courier_mailbox).status == "done"
    assert run_sync(courier_mailbox).fetched == 0

    assert on_server(observer, "INBOX") == ["Merhaba 1", "Merhaba 2"]
    assert on_server(observer, "INBOX.Archive") == ["Merhaba 0", "Merhaba 10"]
    assert stored_subjects(courier_mailbox, "INBOX") == ["Merhaba 1", "Merhaba 2"]
    assert stored_subjects(courier_mailbox, "INBOX.Archive") == ["Merhaba 0", "Merhaba 10"]


def test_without_uidplus_a_delete_leaves_what_another_client_only_marked_deleted(
    courier_without_uidplus: Courier, local_mail_settings: None
) -> None:
    server = courier_without_uidplus
    account = server.fresh_user()
    ids = deliver_numbered(server, account[0], "INBOX", range(3))
    mailbox = account_mailbox(account, server.ports["imaps"], protocol="imap", imap_folders=["INBOX"])
    run_sync(mailbox)
    with server.client(account) as other:
        other.select_folder("INBOX")
        assert b"UIDPLUS" not in other.capabilities()
        marked = other.search(["HEADER", "Message-ID", ids[2]])
        other.add_flags(marked, [b"\\Deleted"])  # marked only: that client has not expunged yet

    message_delete_for_good(message=Message.objects.get(mailbox=mailbox, message_id=ids[0]))
    run_sync(mailbox)

    with server.client(account) as other:
        assert on_server(other, "INBOX") == ["Merhaba 1", "Merhaba 2"]
        assert subjects_of(other, other.search(["DELETED"])) == ["Merhaba 2"]


# --- POP3 sync against Courier --------------------------------------------------------------------------


@pytest.fixture
def pop3_mailbox(courier: Courier, courier_account: tuple[str, str], local_mail_settings: None) -> Mailbox:
    return account_mailbox(courier_account, courier.ports["pop3s"], name="Courier POP3")


def rebuild_uidls(courier: Courier, user: str) -> None:
    """What a restore from backup does to Courier: its UID list is rebuilt, every UIDL changes."""
    time.sleep(1.1)  # the new list's UIDVALIDITY (part of each UIDL) comes from the clock
    (courier.maildir(user) / "courierpop3dsizelist").unlink()


def test_a_pop3_sync_on_courier_fetches_once_and_an_unchanged_poll_fetches_nothing(
    courier: Courier, courier_account: tuple[str, str], pop3_mailbox: Mailbox
) -> None:
    deliver_numbered(courier, courier_account[0], "INBOX", range(3))

    assert run_sync(pop3_mailbox).fetched == 3
    assert run_sync(pop3_mailbox).fetched == 0
    assert Message.objects.filter(mailbox=pop3_mailbox).count() == 3


def test_a_rebuilt_uidl_list_downloads_nothing_again_but_keeps_separate_identical_deliveries(
    courier: Courier, courier_account: tuple[str, str], pop3_mailbox: Mailbox, local_policy: NetworkPolicy
) -> None:
    user = courier_account[0]
    twice = raw_message(5)
    courier.deliver(user, twice, "first")
    courier.deliver(user, twice, "second")  # the same message delivered twice: two messages
    deliver_numbered(courier, user, "INBOX", range(2))
    assert run_sync(pop3_mailbox).fetched == 4
    old_uids = set(Pop3Ledger.objects.filter(mailbox=pop3_mailbox).values_list("uid", flat=True))

    rebuild_uidls(courier, user)
    courier.deliver(user, twice, "third")  # and a third, genuinely new delivery of it
    result = run_sync(pop3_mailbox)

    assert result.fetched == 1
    assert Message.objects.filter(mailbox=pop3_mailbox).count() == 5
    ledger = Pop3Ledger.objects.filter(mailbox=pop3_mailbox, deleted_on_server_at__isnull=True)
    config = courier_config(courier, "pop3", Security.SSL, local_policy, courier_account)
    with Pop3Session(config) as pop:
        listed = {uid for _number, uid in pop.uidl()}
    assert set(ledger.values_list("uid", flat=True)) == listed
    assert not listed & old_uids
    assert run_sync(pop3_mailbox).fetched == 0


def test_flags_and_expunges_made_on_courier_come_down_with_the_next_sync(
    courier: Courier, courier_account: tuple[str, str], courier_mailbox: Mailbox
) -> None:
    ids = deliver_numbered(courier, courier_account[0], "INBOX", range(3))
    run_sync(courier_mailbox)
    with courier.client(courier_account) as other:
        other.select_folder("INBOX")
        other.add_flags(other.search(["HEADER", "Message-ID", ids[1]]), [b"\\Seen", b"\\Flagged"])
        other.delete_messages(other.search(["HEADER", "Message-ID", ids[2]]))
        other.expunge()

    assert run_sync(courier_mailbox).fetched == 0

    stored = {m.message_id: (m.seen, m.flagged) for m in Message.objects.filter(mailbox=courier_mailbox)}
    assert stored == {ids[0]: (False, False), ids[1]: (True, True)}
