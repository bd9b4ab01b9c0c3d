"""When a known provider refuses a login, the connection test says that provider's real reason and
next step (issue #14): a real Dovecot refuses, reached under the provider's server name through a
real DNS server (dnsmasq) that says where that name is."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from fetcher.mail.net import Endpoint, NetworkPolicy, Security
from fetcher.mail.probe import ProbeReport, probe
from fetcher.mail.session import Secret, ServerConfig
from tests.servers.dnsmasq import DnsServer, start_dnsmasq
from tests.servers.dovecot import Dovecot

pytestmark = pytest.mark.mailservers
SERVERS = ("imap.yandex.com", "outlook.office365.com", "imap.gmail.com", "pop.gmail.com")


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = start_dnsmasq(
        tmp_path_factory.mktemp("dnsmasq"), [f"host-record={name},127.0.0.1" for name in SERVERS]
    )
    yield server
    server.stop()


def refused(kind: str, host: str, dovecot: Dovecot, policy: NetworkPolicy) -> ProbeReport:
    """A login with the wrong password to Dovecot, under `host`."""
    endpoint = Endpoint(host, dovecot.port_for(kind, Security.NONE), Security.NONE)
    report = probe(
        kind, ServerConfig(endpoint=endpoint, login="alice", password=Secret("wrong"), policy=policy)
    )
    assert report.failed_step == "auth", report.message
    return report


def shown(report: ProbeReport) -> str:
    return render_to_string("includes/probe_report.html", {"report": report.as_json(), "title": "IMAP"})


@pytest.fixture
def policy(dns_server: DnsServer, local_policy: NetworkPolicy) -> NetworkPolicy:
    return dataclasses.replace(local_policy, dns_servers=(dns_server.address,))


def test_yandex_says_imap_must_be_switched_on_and_wants_an_app_password(
    dovecot: Dovecot, policy: NetworkPolicy
) -> None:
    report = refused("imap", "imap.yandex.com", dovecot, policy)

    with translation.override("en"):
        page = shown(report)
    assert "IMAP must be switched on in the settings of Yandex Mail and Yandex 360 first." in page
    assert "takes an app password here" in page
    assert 'href="https://yandex.com/support/' in page


def test_microsoft_says_passwords_are_no_longer_taken(dovecot: Dovecot, policy: NetworkPolicy) -> None:
    report = refused("imap", "outlook.office365.com", dovecot, policy)

    with translation.override("en"):
        page = shown(report)
    assert "no longer takes passwords from mail programs" in page


def test_gmail_pop_says_pop_must_be_switched_on_in_turkish_too(
    dovecot: Dovecot, policy: NetworkPolicy
) -> None:
    report = refused("pop3", "pop.gmail.com", dovecot, policy)

    with translation.override("tr"):
        page = shown(report)
    assert page.count('data-testid="provider-hint"') == 2  # an app password, and POP switched on
    assert "uygulama şifresi" in page
    assert "POP must be switched on" not in page


def test_a_server_the_table_does_not_know_gets_no_hint(dovecot: Dovecot, local_policy: NetworkPolicy) -> None:
    report = refused("imap", "localhost", dovecot, local_policy)

    assert report.hints == []
    assert 'data-testid="provider-hint"' not in shown(report)
