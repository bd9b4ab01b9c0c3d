"""The connection test against real servers: Dovecot (POP3, IMAP) and an SMTP server with AUTH."""

from __future__ import annotations

import dataclasses

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from fetcher.mail.net import Endpoint, NetworkPolicy, Security, Step
from fetcher.mail.probe import ProbeReport, probe
from fetcher.mail.session import Secret, ServerConfig
from tests.conftest import MAIL_USERS
from tests.servers.dovecot import Dovecot
from tests.servers.net import free_port
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.mailservers


def config(
    port: int,
    security: Security,
    policy: NetworkPolicy,
    *,
    login: str = "alice",
    password: str | None = None,
    fingerprint: str = "",
) -> ServerConfig:
    return ServerConfig(
        endpoint=Endpoint("localhost", port, security, fingerprint),
        login=login,
        password=Secret(MAIL_USERS["alice"] if password is None else password),
        policy=policy,
    )


def incoming(
    dovecot: Dovecot,
    kind: str,
    security: Security,
    policy: NetworkPolicy,
    *,
    login: str = "alice",
    password: str | None = None,
    fingerprint: str = "",
) -> ProbeReport:
    port = dovecot.port_for(kind, security)
    return probe(
        kind, config(port, security, policy, login=login, password=password, fingerprint=fingerprint)
    )


@pytest.mark.parametrize("kind", ["pop3", "imap"])
@pytest.mark.parametrize("security", list(Security))
def test_it_logs_in_to_dovecot_in_every_security_mode(
    dovecot: Dovecot, local_policy: NetworkPolicy, kind: str, security: Security
) -> None:
    report = incoming(dovecot, kind, security, local_policy)

    assert report.ok, report.as_json()
    assert report.failed_step is None
    assert Step.AUTH in report.passed
    assert "Dovecot" in report.greeting
    if security is Security.NONE:
        assert report.certificate is None
    else:
        assert report.certificate is not None
        assert "Postane test CA" in report.certificate.issuer


def test_the_pop3_test_counts_messages_and_checks_uidl(dovecot: Dovecot, local_policy: NetworkPolicy) -> None:
    before = incoming(dovecot, "pop3", Security.SSL, local_policy).facts["message_count"]
    for number in range(3):
        dovecot.deliver("alice", f"Subject: probe {number}\r\n\r\nbody\r\n".encode(), f"probe{number}")

    report = incoming(dovecot, "pop3", Security.SSL, local_policy)

    assert report.facts["uidl"] is True
    assert report.facts["message_count"] == before + 3
    assert before == dovecot.messages_on_server("alice") - 3


def test_the_imap_test_lists_the_special_folders(dovecot: Dovecot, local_policy: NetworkPolicy) -> None:
    report = incoming(dovecot, "imap", Security.SSL, local_policy)

    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk"} <= set(report.facts["folders"])


@pytest.mark.parametrize("mode", ["starttls", "ssl", "plain"])
def test_it_logs_in_to_the_smtp_server_in_every_security_mode(
    smtp_servers: dict[str, SmtpServer], local_policy: NetworkPolicy, mode: str
) -> None:
    security = {"starttls": Security.STARTTLS, "ssl": Security.SSL, "plain": Security.NONE}[mode]

    report = probe("smtp", config(smtp_servers[mode].port, security, local_policy))

    assert report.ok, report.as_json()
    assert report.greeting.startswith("220")


@pytest.mark.parametrize("kind", ["pop3", "imap"])
def test_a_wrong_password_fails_at_the_login_step_with_the_servers_words(
    dovecot: Dovecot, local_policy: NetworkPolicy, kind: str
) -> None:
    report = incoming(dovecot, kind, Security.SSL, local_policy, password="not-the-password")

    assert not report.ok
    assert report.failed_step is Step.AUTH
    assert "Authentication failed" in report.server_text
    assert report.passed[-1] is Step.GREETING


def test_a_wrong_smtp_password_fails_at_the_login_step(
    smtp_servers: dict[str, SmtpServer], local_policy: NetworkPolicy
) -> None:
    report = probe(
        "smtp", config(smtp_servers["starttls"].port, Security.STARTTLS, local_policy, password="nope")
    )

    assert report.failed_step is Step.AUTH
    assert report.server_text.startswith("535")


def test_a_closed_port_fails_at_the_connect_step(local_policy: NetworkPolicy) -> None:
    report = probe("pop3", config(free_port(), Security.SSL, local_policy))

    assert report.failed_step is Step.CONNECT
    assert "refused" in report.message
    assert report.passed[-1] is Step.DNS


@pytest.mark.parametrize(
    ("kind", "security"),
    [
        ("pop3", Security.SSL),
        ("pop3", Security.STARTTLS),
        ("imap", Security.SSL),
        ("imap", Security.STARTTLS),
    ],
)
def test_an_untrusted_certificate_fails_at_tls_and_shows_the_certificate(
    dovecot: Dovecot, local_policy: NetworkPolicy, kind: str, security: Security
) -> None:
    system_cas_only = dataclasses.replace(local_policy, extra_ca_file=None)

    report = incoming(dovecot, kind, security, system_cas_only)

    assert report.failed_step is Step.TLS
    assert "certificate" in report.message
    assert report.certificate is not None
    assert "Postane test CA" in report.certificate.issuer
    assert len(report.certificate.sha256) == 95
    assert "localhost" in report.certificate.names


def test_the_untrusted_smtp_certificate_is_shown_too(
    smtp_servers: dict[str, SmtpServer], local_policy: NetworkPolicy
) -> None:
    system_cas_only = dataclasses.replace(local_policy, extra_ca_file=None)

    report = probe("smtp", config(smtp_servers["starttls"].port, Security.STARTTLS, system_cas_only))

    assert report.failed_step is Step.TLS
    assert report.certificate is not None


@pytest.mark.parametrize("kind", ["pop3", "imap"])
def test_a_certificate_trusted_by_its_fingerprint_is_accepted(
    dovecot: Dovecot, local_policy: NetworkPolicy, kind: str
) -> None:
    system_cas_only = dataclasses.replace(local_policy, extra_ca_file=None)
    refused = incoming(dovecot, kind, Security.SSL, system_cas_only)
    assert refused.certificate is not None

    pinned = incoming(dovecot, kind, Security.SSL, system_cas_only, fingerprint=refused.certificate.sha256)

    assert pinned.ok, pinned.as_json()


def test_a_different_pinned_fingerprint_is_refused_before_the_password_is_sent(
    dovecot: Dovecot, local_policy: NetworkPolicy
) -> None:
    report = incoming(dovecot, "imap", Security.STARTTLS, local_policy, fingerprint="AB" * 32)

    assert report.failed_step is Step.TLS
    assert "not the one you chose to trust" in report.message
    assert Step.AUTH not in report.passed


@pytest.mark.parametrize("kind", ["pop3", "imap"])
def test_a_server_without_starttls_fails_at_the_starttls_step(
    dovecot_without_tls: Dovecot, local_policy: NetworkPolicy, kind: str
) -> None:
    report = incoming(dovecot_without_tls, kind, Security.STARTTLS, local_policy)

    assert report.failed_step is Step.STARTTLS
    assert "does not offer STARTTLS" in report.message


def test_an_smtp_server_without_starttls_fails_at_the_starttls_step(
    smtp_servers: dict[str, SmtpServer], local_policy: NetworkPolicy
) -> None:
    report = probe("smtp", config(smtp_servers["plain"].port, Security.STARTTLS, local_policy))

    assert report.failed_step is Step.STARTTLS


def test_the_default_policy_refuses_this_machine(dovecot: Dovecot) -> None:
    report = probe("pop3", config(dovecot.ports["pop3s"], Security.SSL, NetworkPolicy()))

    assert report.failed_step is Step.POLICY


@pytest.mark.parametrize("field", ["login", "password"])
def test_a_line_break_in_a_login_or_password_is_refused_before_connecting(
    dovecot: Dovecot, local_policy: NetworkPolicy, field: str
) -> None:
    values = {"login": "alice", "password": MAIL_USERS["alice"], field: "alice\r\nDELE 1"}
    report = incoming(dovecot, "pop3", Security.SSL, local_policy, **values)

    assert report.failed_step is Step.INPUT
    assert report.passed == []


def test_the_password_never_appears_in_a_report_or_a_repr(
    dovecot: Dovecot, local_policy: NetworkPolicy
) -> None:
    cfg = config(dovecot.ports["pop3s"], Security.SSL, local_policy, password="hunter2-wrong")

    report = probe("pop3", cfg)

    assert "hunter2" not in repr(cfg) + str(cfg) + repr(report) + str(report.as_json())


@pytest.mark.parametrize(
    ("kind", "security"), [("pop3", Security.SSL), ("imap", Security.SSL), ("pop3", Security.NONE)]
)
def test_a_turkish_password_logs_in(
    dovecot: Dovecot, local_policy: NetworkPolicy, kind: str, security: Security
) -> None:
    report = incoming(dovecot, kind, security, local_policy, login="zeynep", password=MAIL_USERS["zeynep"])

    assert report.ok, report.as_json()


def test_the_smtp_login_takes_a_turkish_password(
    smtp_servers: dict[str, SmtpServer], local_policy: NetworkPolicy
) -> None:
    cfg = config(
        smtp_servers["ssl"].port, Security.SSL, local_policy, login="zeynep", password=MAIL_USERS["zeynep"]
    )

    assert probe("smtp", cfg).ok


@pytest.mark.parametrize("kind", ["pop3", "imap"])
def test_ssl_on_a_port_without_it_says_the_security_setting_does_not_match_the_port(
    dovecot: Dovecot, local_policy: NetworkPolicy, kind: str
) -> None:
    port = dovecot.ports[kind]
    report = probe(kind, config(port, Security.SSL, local_policy))

    assert report.failed_step is Step.TLS
    assert f"Port {port} does not speak SSL/TLS from the start" in report.message, report.message
    assert "WRONG_VERSION_NUMBER" not in report.message


@pytest.mark.parametrize("kind", ["pop3", "imap"])
def test_no_ssl_on_an_ssl_port_says_the_security_setting_may_not_match_the_port(
    dovecot: Dovecot, local_policy: NetworkPolicy, kind: str
) -> None:
    port = dovecot.ports[f"{kind}s"]
    report = probe(kind, config(port, Security.NONE, local_policy))

    assert report.failed_step is Step.GREETING
    assert f"Port {port} may expect SSL/TLS from the start" in report.message, report.message


def _shown(report: ProbeReport) -> str:
    return render_to_string("includes/probe_report.html", {"report": report.as_json(), "title": "POP3"})


def test_the_certificate_and_the_offer_to_trust_it_are_shown_only_when_it_was_refused(
    dovecot: Dovecot, local_policy: NetworkPolicy
) -> None:
    refused = incoming(dovecot, "pop3", Security.SSL, dataclasses.replace(local_policy, extra_ca_file=None))
    trusted = incoming(dovecot, "pop3", Security.SSL, local_policy, password="not-the-password")
    assert trusted.certificate is not None  # verified, then the login failed

    assert 'data-testid="certificate"' in _shown(refused)
    assert "Trust this one certificate" in _shown(refused)
    assert 'data-testid="certificate"' not in _shown(trusted)
    assert "Trust this one certificate" not in _shown(trusted)


def test_the_failure_is_told_in_the_readers_language_with_its_values(
    dovecot: Dovecot, local_policy: NetworkPolicy
) -> None:
    port = dovecot.ports["pop3"]
    report = probe("pop3", config(port, Security.SSL, local_policy))

    with translation.override("tr"):
        shown = _shown(report)
    with translation.override("en"):
        english = _shown(report)

    assert f"{port} bağlantı noktası baştan SSL/TLS konuşmuyor" in shown
    assert "does not speak" not in shown
    assert f"Port {port} does not speak SSL/TLS from the start" in english
