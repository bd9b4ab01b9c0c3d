"""The discovery chain (fetcher.mail.discover) against a real DNS server (dnsmasq), a real HTTPS
server standing in for providers' autoconfig and for Mozilla's ISPDB (the shared copy, read in
place), in the chain's order, with every step it tried on record (issue #14)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
import trustme

from fetcher.mail import discover
from fetcher.mail.autoconfig import Server
from fetcher.mail.net import NetworkPolicy, Security
from fetcher.mail.resolver import Resolver
from tests.paths import PROJECT
from tests.servers.dnsmasq import DnsServer, start_dnsmasq
from tests.servers.https import Answer, HttpsServer, ispdb_index, start_https

ISPDB = PROJECT.parent / "shared" / "ispdb" / "xml"
pytestmark = pytest.mark.skipif(not ISPDB.is_dir(), reason=f"Mozilla's ISPDB is not at {ISPDB} (../shared)")
NAMES = ("autoconfig.auto.test", "wellknown.test", "autoconfig.bomb.test", "ispdb.test", "localhost")


def own_config(host: str) -> bytes:
    return (
        '<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="x">'
        f'<incomingServer type="imap"><hostname>{host}</hostname><port>993</port><socketType>SSL</socketType>'
        "<username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication></incomingServer>"
        f'<outgoingServer type="smtp"><hostname>{host}</hostname><port>465</port><socketType>SSL</socketType>'
        "<username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication></outgoingServer>"
        "</emailProvider></clientConfig>"
    ).encode()


@pytest.fixture(scope="module")
def web(mail_ca: trustme.CA) -> Iterator[HttpsServer]:
    server = start_https(mail_ca, NAMES)
    server.ispdb = ispdb_index(ISPDB)
    server.answers["/mail/config-v1.1.xml"] = Answer(body=own_config("mail.auto.test"))
    server.answers["/.well-known/autoconfig/mail/config-v1.1.xml"] = Answer(
        body=own_config("mail.wellknown.test")
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    records = [
        *(f"host-record={name},127.0.0.1" for name in NAMES if name != "localhost"),
        "mx-host=kurumsal.test,alt2.aspmx.l.google.com,10",  # Google Workspace on a company's domain
        "mx-host=aolmx.test,mx.aol.com,10",  # a provider the table lacks: its base domain in ISPDB
        "srv-host=_imaps._tcp.srv.test,imap.srv.test,993,0,0",
        "srv-host=_imap._tcp.srv.test,imap.srv.test,143,0,0",
        "srv-host=_pop3s._tcp.srv.test",  # not offered
        "srv-host=_submissions._tcp.srv.test,smtp.srv.test,465,0,0",
        "host-record=mail.guess.test,127.0.0.1",  # only mail.: imap., pop., smtp. do not exist
        "host-record=imap.cpanel.test,127.0.0.1",
    ]
    server = start_dnsmasq(tmp_path_factory.mktemp("dnsmasq"), records)
    yield server
    server.stop()


@pytest.fixture
def sources(web: HttpsServer, dns_server: DnsServer, local_policy: NetworkPolicy) -> discover.Sources:
    policy = dataclasses.replace(local_policy, dns_servers=(dns_server.address,), timeout=3.0)
    return discover.Sources(
        policy=policy,
        resolver=Resolver([dns_server.address], timeout=3.0),
        ispdb_url=f"https://ispdb.test:{web.port}/v1.1/",
        https_port=web.port,
    )


def test_a_provider_of_the_table_is_found_without_asking_anyone(
    sources: discover.Sources, web: HttpsServer
) -> None:
    before = len(web.requests)

    found = discover.discover("ayse@yandex.com.tr", sources)

    assert found.source == "Postane's provider table"
    assert found.settings is not None
    assert found.settings.incoming_for() == Server(
        "imap", "imap.yandex.com", 993, Security.SSL, "ayse@yandex.com.tr"
    )
    assert found.provider is not None
    assert found.provider.sign_in == "app-password"
    assert len(web.requests) == before


def test_the_providers_own_autoconfig_comes_before_ispdb(sources: discover.Sources, web: HttpsServer) -> None:
    found = discover.discover("cem@auto.test", sources)

    assert found.source == "The provider's own settings"
    assert found.source_detail.startswith("https://autoconfig.auto.test:")
    assert "emailaddress=cem@auto.test" in web.requests[-1]
    assert found.settings is not None
    assert found.settings.incoming_for() == Server(
        "imap", "mail.auto.test", 993, Security.SSL, "cem@auto.test"
    )


def test_the_well_known_address_is_asked_when_there_is_no_autoconfig_host(sources: discover.Sources) -> None:
    found = discover.discover("cem@wellknown.test", sources)

    assert found.source == "The provider's own settings"
    assert "/.well-known/autoconfig/" in found.source_detail
    assert [tried.outcome for tried in found.tried][:2] == [
        "not a provider it knows",
        "The name autoconfig.wellknown.test could not be resolved.",
    ]


def test_ispdb_is_asked_by_the_domain(sources: discover.Sources) -> None:
    found = discover.discover("ayse@aol.com", sources)

    assert found.source == "Mozilla's ISPDB"
    assert found.settings is not None
    incoming = found.settings.incoming_for()
    assert incoming is not None
    assert incoming.host == "imap.aol.com"


def test_a_company_domain_is_known_by_its_mx(sources: discover.Sources) -> None:
    workspace = discover.discover("ayse@kurumsal.test", sources)
    via_base = discover.discover("ayse@aolmx.test", sources)

    assert workspace.source == "Postane's provider table, by the domain's MX record"
    assert workspace.provider is not None
    assert workspace.provider.id == "gmail"
    assert via_base.source == "Mozilla's ISPDB"  # mx.aol.com -> aol.com, which ISPDB knows
    assert via_base.settings is not None
    incoming = via_base.settings.incoming_for()
    assert incoming is not None
    assert (incoming.host, incoming.login) == ("imap.aol.com", "ayse@aolmx.test")


def test_srv_records_are_read_implicit_tls_first(sources: discover.Sources) -> None:
    found = discover.discover("ayse@srv.test", sources)

    assert found.source == "The domain's SRV records"
    assert found.settings is not None
    assert found.settings.incoming_for() == Server(
        "imap", "imap.srv.test", 993, Security.SSL, "ayse@srv.test"
    )
    assert found.settings.outgoing_server() == Server(
        "smtp", "smtp.srv.test", 465, Security.SSL, "ayse@srv.test"
    )


def test_when_nothing_is_found_every_step_tried_says_why(sources: discover.Sources) -> None:
    found = discover.discover("ayse@hicbiryer.test", sources)

    assert found.settings is None
    steps = [tried.step for tried in found.tried]
    assert steps[:4] == [
        "Postane's provider table",
        "The provider's own settings",
        "The provider's own settings",
        "Mozilla's ISPDB",
    ]
    assert "The domain's MX record" in steps
    assert steps.count("The domain's SRV records") == 6
    assert all(tried.outcome and tried.outcome != "found" for tried in found.tried)


def test_a_hostile_document_is_one_failed_step_and_the_chain_goes_on(
    sources: discover.Sources, web: HttpsServer
) -> None:
    bomb = b"<!DOCTYPE x [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]><clientConfig>&b;</clientConfig>"
    web.answers["/mail/config-v1.1.xml"] = Answer(body=bomb)
    try:
        found = discover.discover("ayse@bomb.test", sources)
    finally:
        web.answers["/mail/config-v1.1.xml"] = Answer(body=own_config("mail.auto.test"))

    assert found.tried[1].outcome.startswith("the document is not XML Postane may read")
    assert found.settings is None  # nothing else knows bomb.test


@pytest.fixture(scope="module")
def tls_server(mail_ca: trustme.CA) -> Iterator[Callable[[str], HttpsServer]]:
    """A TLS server with a certificate for the name given: all a guess's handshake talks to."""
    started: list[HttpsServer] = []

    def start(name: str) -> HttpsServer:
        started.append(start_https(mail_ca, (name,)))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def guessing(sources: discover.Sources, server: HttpsServer) -> discover.Sources:
    return dataclasses.replace(sources, guess_ports=dict.fromkeys(("imap", "pop3", "smtp"), server.port))


def test_when_nothing_else_answers_names_are_guessed_and_checked_by_their_certificates(
    sources: discover.Sources, tls_server: Callable[[str], HttpsServer]
) -> None:
    server = tls_server("mail.guess.test")

    found = discover.discover("ayse@guess.test", guessing(sources, server))

    assert found.source == "Guessed, and checked by the servers' certificates"
    assert found.settings is not None
    assert found.settings.incoming_for() == Server(
        "imap", "mail.guess.test", server.port, Security.SSL, "ayse@guess.test"
    )
    assert found.settings.outgoing_server() == Server(
        "smtp", "mail.guess.test", server.port, Security.SSL, "ayse@guess.test"
    )
    guesses = [tried for tried in found.tried if tried.step == "A guess at the server's name"]
    assert guesses[0] == discover.Tried(
        "A guess at the server's name",
        f"imap.guess.test:{server.port}",
        "The name imap.guess.test could not be resolved.",
    )


def test_a_certificate_for_another_name_is_reported_with_that_name_as_on_cpanel(
    sources: discover.Sources, tls_server: Callable[[str], HttpsServer]
) -> None:
    server = tls_server("server7.hosting.test")

    found = discover.discover("ayse@cpanel.test", guessing(sources, server))

    assert (
        discover.Tried(
            "A guess at the server's name",
            f"imap.cpanel.test:{server.port}",
            "found, but its certificate is for server7.hosting.test",
        )
        in found.tried
    )
    assert found.settings is not None
    incoming = found.settings.incoming_for()
    assert incoming is not None
    assert incoming.host == "server7.hosting.test"  # the name the certificate is valid for


def test_a_certificate_no_trusted_authority_signed_is_never_a_guess(
    sources: discover.Sources, tls_server: Callable[[str], HttpsServer]
) -> None:
    server = tls_server("mail.guess.test")
    untrusting = dataclasses.replace(sources, policy=dataclasses.replace(sources.policy, extra_ca_file=None))

    found = discover.discover("ayse@guess.test", guessing(untrusting, server))

    assert found.settings is None
    assert (
        discover.Tried(
            "A guess at the server's name",
            f"mail.guess.test:{server.port}",
            "its certificate is not signed by a trusted authority",
        )
        in found.tried
    )
