"""Reading config-v1.1.xml (fetcher.mail.autoconfig): every file of Mozilla's ISPDB, read in place,
and documents that try to do harm (issue #14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fetcher.mail.autoconfig import MAX_BYTES, AutoconfigError, Server, parse
from fetcher.mail.net import Security
from tests.paths import PROJECT

ISPDB = PROJECT.parent / "shared" / "ispdb" / "xml"
needs_ispdb = pytest.mark.skipif(not ISPDB.is_dir(), reason=f"Mozilla's ISPDB is not at {ISPDB} (../shared)")
FILES = sorted(ISPDB.glob("*.xml")) if ISPDB.is_dir() else []


@needs_ispdb
@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_every_ispdb_provider_is_read_into_servers_postane_can_use(path: Path) -> None:
    settings = parse(path.read_bytes(), "ayse.yilmaz@" + path.stem)

    best = settings.incoming_for()
    assert best is not None
    assert best.protocol in {"imap", "pop3"}
    assert "%" not in best.host + best.login  # every placeholder filled
    assert all(0 < server.port < 65536 for server in (*settings.incoming, *settings.outgoing))


@needs_ispdb
def test_gmail_is_imap_over_tls_with_the_whole_address_and_takes_a_password_too() -> None:
    settings = parse((ISPDB / "googlemail.com.xml").read_bytes(), "ayse@gmail.com")

    assert settings.incoming_for() == Server("imap", "imap.gmail.com", 993, Security.SSL, "ayse@gmail.com")
    assert settings.incoming_for("pop3") == Server(
        "pop3", "pop.gmail.com", 995, Security.SSL, "ayse@gmail.com"
    )
    assert settings.outgoing_server() == Server("smtp", "smtp.gmail.com", 465, Security.SSL, "ayse@gmail.com")


@needs_ispdb
def test_a_provider_that_logs_in_with_the_local_part_gets_it() -> None:
    document = (ISPDB / "bol.com.br.xml").read_bytes()
    assert b"%EMAILLOCALPART%" in document

    settings = parse(document, "ayse@bol.com.br")

    assert "ayse" in {server.login for server in settings.incoming}


def config(incoming: str, outgoing: str = "") -> bytes:
    return (
        '<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="example.com">'
        f"<domain>example.com</domain>{incoming}{outgoing}</emailProvider></clientConfig>"
    ).encode()


def server(
    kind: str, host: str, port: str, socket: str, *methods: str, protocol: str = "incomingServer"
) -> str:
    auth = "".join(
        f"<authentication>{method}</authentication>" for method in methods or ["password-cleartext"]
    )
    return (
        f'<{protocol} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket}</socketType><username>%EMAILLOCALPART%</username>{auth}</{protocol}>"
    )


def test_imap_is_chosen_over_pop3_and_implicit_tls_over_starttls() -> None:
    document = config(
        server("pop3", "pop.example.com", "995", "SSL")
        + server("imap", "imap.example.com", "143", "STARTTLS")
        + server("imap", "imap.example.com", "993", "SSL"),
        server("smtp", "smtp.example.com", "587", "STARTTLS", protocol="outgoingServer")
        + server("smtp", "smtp.example.com", "465", "SSL", protocol="outgoingServer"),
    )

    settings = parse(document, "cem@example.com")

    assert settings.incoming_for() == Server("imap", "imap.example.com", 993, Security.SSL, "cem")
    assert settings.incoming_for("pop3") == Server("pop3", "pop.example.com", 995, Security.SSL, "cem")
    assert settings.outgoing_server() == Server("smtp", "smtp.example.com", 465, Security.SSL, "cem")


def test_a_server_that_takes_only_oauth_says_so() -> None:
    settings = parse(
        config(server("imap", "outlook.office365.com", "993", "SSL", "OAuth2")), "cem@example.com"
    )

    incoming = settings.incoming_for()
    assert incoming is not None
    assert incoming.oauth_only


@pytest.mark.parametrize(
    ("host", "port", "socket"),
    [
        ("imap.example.com evil", "993", "SSL"),  # not a host name
        ("imap.example.com", "99999", "SSL"),
        ("imap.example.com", "993; rm", "SSL"),
        ("imap.example.com", "993", "TLSv0"),  # no security we know
        ("", "993", "SSL"),
    ],
)
def test_a_server_with_a_value_that_is_not_what_it_should_be_is_left_out(
    host: str, port: str, socket: str
) -> None:
    document = config(server("imap", host, port, socket) + server("pop3", "pop.example.com", "995", "SSL"))

    settings = parse(document, "cem@example.com")

    assert [found.host for found in settings.incoming] == ["pop.example.com"]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;'>]>"
            b"<clientConfig>&b;</clientConfig>",
            "XML",
        ),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><clientConfig>&e;</clientConfig>', "XML"),
        (b"<html><body>Not found</body></html>", "no clientConfig"),
        (b"not xml at all", "XML"),
        (config(server("exchange", "mail.example.com", "443", "SSL")), "no IMAP or POP3"),
        (b"<clientConfig>" + b" " * MAX_BYTES + b"</clientConfig>", "larger than"),
    ],
    ids=["entity expansion", "external entity", "a web page", "not XML", "Exchange only", "too large"],
)
def test_a_document_postane_cannot_use_is_refused_with_the_reason(document: bytes, reason: str) -> None:
    with pytest.raises(AutoconfigError) as refused:
        parse(document, "cem@example.com")

    assert reason in str(refused.value)
