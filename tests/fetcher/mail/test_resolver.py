"""MX and SRV lookups (fetcher.mail.resolver) against a real DNS server, Debian's dnsmasq, started
for these tests and answering only for their zones (issue #14)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from fetcher.mail.net import Endpoint, MailError, NetworkPolicy, Security, check_endpoint
from fetcher.mail.resolver import Resolver, Srv
from tests.servers.dnsmasq import DnsServer, start_dnsmasq
from tests.servers.net import free_port

RECORDS = [
    "mx-host=sirket.test,alt1.aspmx.l.google.com,20",
    "mx-host=sirket.test,aspmx.l.google.com,10",
    "mx-host=kotu.test,bad_host!.example,10",  # not a host name: dropped
    "srv-host=_imaps._tcp.srv.test,imap.srv.test,993,0,10",
    "srv-host=_imaps._tcp.srv.test,imap2.srv.test,993,0,50",
    "srv-host=_imaps._tcp.srv.test,backup.srv.test,10993,5,0",
    "srv-host=_imap._tcp.srv.test",  # "not offered here": the target is "."
    "host-record=srv.test,127.0.0.1",
]


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = start_dnsmasq(tmp_path_factory.mktemp("dnsmasq"), RECORDS)
    yield server
    server.stop()


def test_mx_hosts_come_most_preferred_first(dns_server: DnsServer) -> None:
    answer = Resolver([dns_server.address]).mx("sirket.test")

    assert answer.records == ["aspmx.l.google.com", "alt1.aspmx.l.google.com"]


def test_srv_records_come_in_the_order_rfc_2782_tries_them(dns_server: DnsServer) -> None:
    answer = Resolver([dns_server.address]).srv("_imaps._tcp.srv.test")

    assert answer.records == [
        Srv(0, 50, "imap2.srv.test", 993),
        Srv(0, 10, "imap.srv.test", 993),
        Srv(5, 0, "backup.srv.test", 10993),
    ]


def test_a_service_marked_not_offered_is_no_record(dns_server: DnsServer) -> None:
    assert Resolver([dns_server.address]).srv("_imap._tcp.srv.test").records == []


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        ("nowhere.test", "no such domain"),
        ("srv.test", "no MX record"),
        ("bad name!.test", "not a domain name"),
    ],
)
def test_no_answer_is_an_empty_answer_with_the_reason(
    dns_server: DnsServer, question: str, problem: str
) -> None:
    answer = Resolver([dns_server.address]).mx(question)

    assert answer.records == []
    assert answer.problem == problem


def test_a_name_that_is_not_a_host_name_is_dropped(dns_server: DnsServer) -> None:
    answer = Resolver([dns_server.address]).mx("kotu.test")

    assert answer.records == []


def test_a_resolver_that_does_not_answer_is_reported_not_raised() -> None:
    silent = f"127.0.0.1:{free_port()}"  # nothing listens there

    answer = Resolver([silent], timeout=1.0).mx("sirket.test")

    assert answer.records == []
    assert answer.problem in {"the resolver did not answer in time", "no resolver answered"}


def test_mail_connections_resolve_their_names_through_the_configured_resolvers(
    dns_server: DnsServer, local_policy: NetworkPolicy
) -> None:
    policy = dataclasses.replace(local_policy, dns_servers=(dns_server.address,))

    target = check_endpoint(Endpoint("srv.test", 993, Security.SSL), policy)

    assert target.address == "127.0.0.1"  # a name only the configured resolver knows
    with pytest.raises(MailError) as unknown:
        check_endpoint(Endpoint("nowhere.test", 993, Security.SSL), policy)
    assert unknown.value.step == "dns"
