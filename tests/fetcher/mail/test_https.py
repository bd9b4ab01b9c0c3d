"""Documents fetched over HTTPS for discovery (fetcher.mail.https) from a real HTTPS server: only
https, certificates verified, the host checks of every mail connection, limits (issue #14)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import trustme

from fetcher.mail.https import MAX_BYTES, FetchError, fetch
from fetcher.mail.net import NetworkPolicy
from tests.servers.https import Answer, HttpsServer, start_https


@pytest.fixture(scope="module")
def web(mail_ca: trustme.CA) -> Iterator[HttpsServer]:
    server = start_https(mail_ca)
    server.answers.update(
        {
            "/config.xml": Answer(body=b"<clientConfig/>"),
            "/moved": Answer(status=301, location="/config.xml"),
            "/to-plain-http": Answer(status=302, location="http://localhost/config.xml"),
            "/loop": Answer(status=302, location="/loop"),
            "/large": Answer(body=b"x" * (MAX_BYTES + 1)),
        }
    )
    yield server
    server.stop()


def test_a_document_is_fetched_and_a_redirect_followed(web: HttpsServer, local_policy: NetworkPolicy) -> None:
    assert fetch(web.url("/config.xml?emailaddress=ayse@example.com"), local_policy) == b"<clientConfig/>"
    assert fetch(web.url("/moved"), local_policy) == b"<clientConfig/>"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing", "answered 404"),
        ("/to-plain-http", "only https"),
        ("/loop", "more than 3 redirects"),
        ("/large", "larger than 256 KB"),
    ],
)
def test_what_is_not_a_small_document_over_https_is_refused_with_the_reason(
    web: HttpsServer, local_policy: NetworkPolicy, path: str, reason: str
) -> None:
    with pytest.raises(FetchError) as refused:
        fetch(web.url(path), local_policy)

    assert reason in str(refused.value)


def test_a_plain_http_address_is_never_fetched(local_policy: NetworkPolicy) -> None:
    with pytest.raises(FetchError, match="only https"):
        fetch("http://localhost/config.xml", local_policy)


def test_a_certificate_no_trusted_authority_signed_is_refused(
    web: HttpsServer, local_policy: NetworkPolicy
) -> None:
    untrusting = dataclasses.replace(local_policy, extra_ca_file=None)

    with pytest.raises(FetchError, match="TLS with localhost failed"):
        fetch(web.url("/config.xml"), untrusting)


def test_an_internal_address_is_refused_unless_an_administrator_allowed_it(web: HttpsServer) -> None:
    before = len(web.requests)

    with pytest.raises(FetchError, match=r"points to 127\.0\.0\.1"):
        fetch(web.url("/config.xml"), NetworkPolicy(allowed_ports=None))

    assert len(web.requests) == before  # refused before connecting
