"""`manage.py mailbox discover ADDRESS` and `add --discover`, as a script runs them, against a real DNS
server (dnsmasq), a real HTTPS server holding the shared ISPDB, and Dovecot answering on the ports
the SRV records name (issue #14)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import trustme

from accounts.models import Mailbox
from tests.conftest import MAIL_USERS
from tests.fetcher.management.conftest import Manage
from tests.paths import PROJECT
from tests.personas import Persona
from tests.servers.dnsmasq import DnsServer, start_dnsmasq
from tests.servers.dovecot import Dovecot
from tests.servers.https import HttpsServer, ispdb_index, start_https
from tests.servers.smtp import SmtpServer

ISPDB = PROJECT.parent / "shared" / "ispdb" / "xml"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.mailservers,
    pytest.mark.skipif(not ISPDB.is_dir(), reason=f"Mozilla's ISPDB is not at {ISPDB} (../shared)"),
]


@pytest.fixture(scope="module")
def ispdb(mail_ca: trustme.CA) -> Iterator[HttpsServer]:
    server = start_https(mail_ca, ("ispdb.test",))
    server.ispdb = ispdb_index(ISPDB)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dns_server(
    tmp_path_factory: pytest.TempPathFactory, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> Iterator[DnsServer]:
    records = [
        "host-record=ispdb.test,127.0.0.1",
        "host-record=localhost,127.0.0.1",
        f"srv-host=_imaps._tcp.dovecot.test,localhost,{dovecot.ports['imaps']},0,0",
        f"srv-host=_pop3s._tcp.dovecot.test,localhost,{dovecot.ports['pop3s']},0,0",
        f"srv-host=_submissions._tcp.dovecot.test,localhost,{smtp_servers['ssl'].port},0,0",
    ]
    server = start_dnsmasq(tmp_path_factory.mktemp("dnsmasq"), records)
    yield server
    server.stop()


@pytest.fixture
def env(dns_server: DnsServer, ispdb: HttpsServer) -> dict[str, str]:
    return {
        "WEBMAIL_DNS_SERVERS": dns_server.address,
        "WEBMAIL_ISPDB_URL": f"https://ispdb.test:{ispdb.port}/v1.1/",
    }


def test_discover_prints_what_it_found_where_and_every_step(manage: Manage, env: dict[str, str]) -> None:
    result = manage("discover", "ayse@aol.com", env=env)

    assert result.returncode == 0, result.stderr
    assert "from Mozilla's ISPDB: https://ispdb.test:" in result.stdout
    assert "imap imap.aol.com:993 ssl login ayse@aol.com" in result.stdout
    assert "no    Postane's provider table: aol.com (not a provider it knows)" in result.stdout


def test_discover_json_names_the_source_and_the_steps(manage: Manage, env: dict[str, str]) -> None:
    result = manage("discover", "ayse@dovecot.test", "--json", env=env)

    found = json.loads(result.stdout)
    assert found["source"] == "The domain's SRV records"
    assert found["servers"][0]["host"] == "localhost"
    assert {
        "step": "The domain's SRV records",
        "asked": "_imaps._tcp.dovecot.test",
        "outcome": "found",
    } in found["tried"]


def test_nothing_found_fails_with_every_step_tried(manage: Manage, env: dict[str, str]) -> None:
    result = manage("discover", "ayse@hicbiryer.test", env=env)

    assert result.returncode == 1
    assert "nothing found for ayse@hicbiryer.test" in result.stderr
    assert "Mozilla's ISPDB" in result.stdout


def test_add_discover_finds_dovecot_by_srv_tests_it_and_saves_imap(
    manage: Manage, env: dict[str, str], alice: Persona, dovecot: Dovecot
) -> None:
    args = [
        "add",
        "alice",
        "--address",
        "alice@dovecot.test",
        "--discover",
        "--login",
        "alice",
        "--password-stdin",
    ]

    result = manage(*args, stdin=MAIL_USERS["alice"], env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "imap: ok" in result.stdout
    mailbox = Mailbox.objects.get()
    assert (mailbox.protocol, mailbox.incoming_port, mailbox.incoming_security) == (
        "imap",
        dovecot.ports["imaps"],
        "ssl",
    )
    assert mailbox.smtp_security == "ssl"
