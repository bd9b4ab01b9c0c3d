"""Host safety: by default no mail connection reaches an internal address, however it is spelled."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from fetcher.mail.net import (
    Endpoint,
    MailError,
    NetworkPolicy,
    Security,
    Step,
    check_endpoint,
    normalise_fingerprint,
)

DEFAULT = NetworkPolicy()


def endpoint(host: str, port: int = 993) -> Endpoint:
    return Endpoint(host, port, Security.SSL)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "::ffff:7f00:1",
        "[::1]",
        "localhost",
        "0.0.0.0",
        "::",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.10",
        "169.254.169.254",
        "100.64.0.1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "224.0.0.1",
        "ff02::1",
        "2002:7f00:1::",
        "240.0.0.1",
    ],
)
def test_it_refuses_an_internal_address_in_every_spelling(host: str) -> None:
    with pytest.raises(MailError) as caught:
        check_endpoint(endpoint(host), DEFAULT)

    assert caught.value.step is Step.POLICY
    assert caught.value.permanent


@pytest.mark.parametrize(
    "host",
    [
        "fec0::1",  # site-local, deprecated by RFC 3879 but still routed inside some networks
        "[fedc:1::25]",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::808:808",  # local-use NAT64
        "100::1",  # discard-only
        "2001:db8::25",  # documentation
        "3fff::25",  # documentation (RFC 9637)
        "::10.0.0.1",  # IPv4-compatible, deprecated
        "192.88.99.1",  # 6to4 relay anycast, deprecated
    ],
)
def test_it_refuses_deprecated_and_special_ranges(host: str) -> None:
    with pytest.raises(MailError) as caught:
        check_endpoint(endpoint(host), DEFAULT)

    assert caught.value.step is Step.POLICY


def test_nat64_of_a_public_address_is_judged_by_the_address_inside() -> None:
    target = check_endpoint(endpoint("64:ff9b::5db8:d70e"), DEFAULT)  # 93.184.215.14

    assert target.address == "64:ff9b::5db8:d70e"


def test_it_refuses_a_name_that_resolves_to_a_private_address(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "mail.intranet.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)

    with pytest.raises(MailError) as caught:
        check_endpoint(endpoint("mail.intranet.example"), DEFAULT)

    assert "10.20.30.40" in caught.value.message
    assert "private" in caught.value.message


def test_it_connects_only_to_an_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.0.5", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("198.51.100.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    policy = NetworkPolicy(allowed_networks=(ipaddress.ip_network("198.51.100.0/24"),))

    target = check_endpoint(endpoint("mixed.example"), policy)

    assert target.address == "198.51.100.7"


def test_a_public_address_is_allowed() -> None:
    target = check_endpoint(endpoint("93.184.215.14"), DEFAULT)

    assert target.address == "93.184.215.14"


def test_an_administrator_opens_a_network_or_a_host() -> None:
    by_network = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    by_host = NetworkPolicy(allowed_hosts=frozenset({"localhost"}))

    assert check_endpoint(endpoint("127.1"), by_network).address == "127.0.0.1"
    assert check_endpoint(endpoint("[::ffff:127.0.0.1]"), by_network).address == "127.0.0.1"
    assert check_endpoint(endpoint("localhost"), by_host).address in {"127.0.0.1", "::1"}
    with pytest.raises(MailError):
        check_endpoint(endpoint("127.0.0.2"), by_network)


@pytest.mark.parametrize("port", [22, 80, 443, 3306, 6379, 8080])
def test_it_refuses_ports_outside_the_mail_ports(port: int) -> None:
    with pytest.raises(MailError) as caught:
        check_endpoint(endpoint("93.184.215.14", port), DEFAULT)

    assert caught.value.step is Step.POLICY
    assert str(port) in caught.value.message


@pytest.mark.parametrize("host", ["mail.example.com\r\nQUIT", "mail\x00.example.com", ""])
def test_it_rejects_a_host_with_control_characters_or_none_at_all(host: str) -> None:
    with pytest.raises(MailError) as caught:
        check_endpoint(endpoint(host), DEFAULT)

    assert caught.value.step is Step.INPUT


def test_an_unknown_name_fails_at_the_dns_step() -> None:
    with pytest.raises(MailError) as caught:
        check_endpoint(endpoint("no-such-host.invalid"), DEFAULT)

    assert caught.value.step is Step.DNS
    assert not caught.value.permanent


@pytest.mark.parametrize(
    "text",
    [
        "ab" * 32,
        ":".join(["AB"] * 32),
        "SHA256:" + "ab" * 32,
        "sha256 fingerprint=" + ":".join(["ab"] * 32),
    ],
)
def test_fingerprints_are_accepted_in_the_usual_spellings(text: str) -> None:
    assert normalise_fingerprint(text) == ":".join(["AB"] * 32)


@pytest.mark.parametrize("text", ["", "ab" * 31, "zz" * 32])
def test_a_malformed_fingerprint_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="64 hexadecimal"):
        normalise_fingerprint(text)
