"""Postane's provider table (fetcher.mail.providers): the providers issue #14 names, found by
domain and by MX, and agreeing with Mozilla's ISPDB wherever ISPDB knows the domain."""

from __future__ import annotations

import pytest

from fetcher.mail import providers
from fetcher.mail.autoconfig import Server, parse
from fetcher.mail.net import Security
from tests.paths import PROJECT

ISPDB = PROJECT.parent / "shared" / "ispdb" / "xml"


@pytest.mark.parametrize(
    ("domain", "provider"),
    [
        ("gmail.com", "gmail"),
        ("GoogleMail.com", "gmail"),
        ("outlook.com", "microsoft"),
        ("hotmail.com.tr", "microsoft"),
        ("yahoo.com", "yahoo"),
        ("icloud.com", "icloud"),
        ("gmx.net", "gmx"),
        ("gmx.com", "gmx-com"),
        ("yandex.com.tr", "yandex"),
        ("yandex.ru", "yandex"),
        ("example.com", None),
    ],
)
def test_the_providers_the_issue_names_are_found_by_their_domains(domain: str, provider: str | None) -> None:
    found = providers.for_domain(domain)

    assert (found.id if found else None) == provider


@pytest.mark.parametrize(
    ("mx", "provider"),
    [
        ("aspmx.l.google.com.", "gmail"),  # Google Workspace
        ("alt1.aspmx.l.google.com", "gmail"),
        ("sirket-com-tr.mail.protection.outlook.com", "microsoft"),  # Microsoft 365
        ("mx.yandex.net", "yandex"),  # Yandex 360 on a company's own domain
        ("mx1.notgoogle.com", None),  # a suffix, not a lookalike
        ("mail.sirket.com.tr", None),
    ],
)
def test_a_company_domain_is_recognised_by_the_host_its_mx_names(mx: str, provider: str | None) -> None:
    found = providers.for_mx(mx)

    assert (found.id if found else None) == provider


def test_gmail_gives_imap_first_with_the_whole_address_and_asks_for_an_app_password() -> None:
    gmail = providers.for_domain("gmail.com")
    assert gmail is not None

    settings = gmail.settings_for("ayse@gmail.com")

    assert settings.incoming_for() == Server("imap", "imap.gmail.com", 993, Security.SSL, "ayse@gmail.com")
    assert settings.outgoing_server() == Server("smtp", "smtp.gmail.com", 465, Security.SSL, "ayse@gmail.com")
    assert gmail.sign_in == "app-password"
    assert "pop3" in gmail.enable  # Gmail's POP is off until switched on


def test_microsoft_takes_no_password_only_its_sign_in() -> None:
    microsoft = providers.for_domain("outlook.com")
    assert microsoft is not None

    settings = microsoft.settings_for("cem@outlook.com")

    assert all(server.oauth_only for server in (*settings.incoming, *settings.outgoing))


@pytest.mark.skipif(not ISPDB.is_dir(), reason=f"Mozilla's ISPDB is not at {ISPDB} (../shared)")
@pytest.mark.parametrize("provider", providers.table(), ids=lambda provider: provider.id)
def test_the_table_agrees_with_ispdb_wherever_ispdb_knows_the_domain(provider: providers.Provider) -> None:
    checked = 0
    for domain in provider.domains:
        files = [
            path for path in ISPDB.glob("*.xml") if f"<domain>{domain}</domain>".encode() in path.read_bytes()
        ]
        for path in files:
            theirs = parse(path.read_bytes(), f"ayse@{domain}")
            ours = provider.settings_for(f"ayse@{domain}")
            for protocol in ("imap", "pop3"):
                mine, their = ours.incoming_for(protocol), theirs.incoming_for(protocol)
                if mine and their:
                    assert (mine.host, mine.port, mine.security) == (
                        their.host,
                        their.port,
                        their.security,
                    ), domain
                    checked += 1
    assert checked, f"ISPDB knows none of {provider.id}'s domains: check the table by hand"
