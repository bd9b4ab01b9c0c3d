"""Fixtures of the web tests of adding a mailbox from its address (issue #14): a provider's own
autoconfig on a real HTTPS server naming the test Dovecot and SMTP server, a real DNS server that says
where it is, and the discovery run in the test process."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import trustme

from fetcher import config
from fetcher.mail.discover import Sources
from fetcher.mail.resolver import Resolver
from tests.servers.dnsmasq import DnsServer, start_dnsmasq
from tests.servers.dovecot import Dovecot
from tests.servers.https import Answer, HttpsServer, start_https
from tests.servers.smtp import SmtpServer


def autoconfig(dovecot: Dovecot, smtp: SmtpServer) -> bytes:
    """What a provider's autoconfig.<domain> says: its servers here, the local part as the login."""
    login = "<username>%EMAILLOCALPART%</username><authentication>password-cleartext</authentication>"
    return (
        '<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="dovecot.test">'
        f'<incomingServer type="imap"><hostname>localhost</hostname><port>{dovecot.ports["imaps"]}</port>'
        f"<socketType>SSL</socketType>{login}</incomingServer>"
        f'<incomingServer type="pop3"><hostname>localhost</hostname><port>{dovecot.ports["pop3s"]}</port>'
        f"<socketType>SSL</socketType>{login}</incomingServer>"
        f'<outgoingServer type="smtp"><hostname>localhost</hostname><port>{smtp.port}</port>'
        f"<socketType>SSL</socketType>{login}</outgoingServer></emailProvider></clientConfig>"
    ).encode()


@pytest.fixture(scope="session")
def autoconfig_web(
    mail_ca: trustme.CA, dovecot: Dovecot, smtp_servers: dict[str, SmtpServer]
) -> Iterator[HttpsServer]:
    server = start_https(mail_ca, ("autoconfig.dovecot.test",))
    server.answers["/mail/config-v1.1.xml"] = Answer(body=autoconfig(dovecot, smtp_servers["ssl"]))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def discovery_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = start_dnsmasq(
        tmp_path_factory.mktemp("discovery-dns"), ["host-record=autoconfig.dovecot.test,127.0.0.1"]
    )
    yield server
    server.stop()


@pytest.fixture
def discovering(
    monkeypatch: pytest.MonkeyPatch,
    autoconfig_web: HttpsServer,
    discovery_dns: DnsServer,
    local_mail_settings: None,
) -> list[str]:
    """The discovery runs here, in the test (the worker's environment knows no test DNS server); the
    connection test it starts goes to the real worker. Returns the discoveries queued."""
    queued: list[str] = []
    monkeypatch.setattr(
        "fetcher.enqueue.run_discovery", lambda discovery_id: queued.append(str(discovery_id))
    )
    sources = config.discovery_sources

    def here() -> Sources:
        found = sources()
        policy = dataclasses.replace(found.policy, dns_servers=(discovery_dns.address,))
        return dataclasses.replace(
            found,
            policy=policy,
            resolver=Resolver([discovery_dns.address]),
            https_port=autoconfig_web.port,
        )

    monkeypatch.setattr(config, "discovery_sources", here)
    return queued
