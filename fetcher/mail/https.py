"""Documents fetched over HTTPS for mailbox discovery (a provider's autoconfig, Mozilla's ISPDB),
through the same host checks as every mail connection (fetcher.mail.net): the name is resolved once
and the checked address alone is connected to, so a name that points inside the network is refused
unless an administrator allowed that network, and a DNS answer cannot change between the check and
the connection.

Only https: URLs, certificates verified for the name, a time limit for the whole fetch, a size
limit on the body, at most three redirects (each checked again). Anything else is a `FetchError`
with the reason, for the discovery's list of steps.
"""

from __future__ import annotations

import dataclasses
import http.client
import time
from urllib.parse import urljoin, urlsplit

from fetcher.mail.net import (
    Endpoint,
    MailError,
    NetworkPolicy,
    Security,
    check_endpoint,
    open_connection,
    tls_context,
)

MAX_BYTES = 256 * 1024
REDIRECTS = 3
HTTPS_PORTS = frozenset({443})


class FetchError(Exception):
    """The document could not be fetched; the message says why."""


def fetch(url: str, policy: NetworkPolicy, *, timeout: float = 10.0, max_bytes: int = MAX_BYTES) -> bytes:
    """The body of a 200 answer to GET `url`."""
    deadline = time.monotonic() + timeout
    for _redirect in range(REDIRECTS + 1):
        status, location, body = _get(url, policy, deadline, max_bytes)
        if status == 200:
            return body
        if status in {301, 302, 303, 307, 308} and location:
            url = urljoin(url, location)
            continue
        raise FetchError(f"the server answered {status}")
    raise FetchError(f"more than {REDIRECTS} redirects")


def _get(url: str, policy: NetworkPolicy, deadline: float, max_bytes: int) -> tuple[int, str, bytes]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise FetchError("only https: addresses are fetched")
    port = parts.port or 443
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("no answer in time")
    ports = None if policy.allowed_ports is None else HTTPS_PORTS
    checked = dataclasses.replace(policy, allowed_ports=ports, timeout=remaining)
    try:
        target = check_endpoint(Endpoint(parts.hostname, port, Security.SSL), checked)
        sock = open_connection(target, tls_context(target))
    except MailError as error:
        raise FetchError(error.message) from None
    except OSError as error:  # the TLS handshake: a certificate not valid for the name, say
        raise FetchError(f"TLS with {parts.hostname} failed ({type(error).__name__})") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname if port == 443 else f"{parts.hostname}:{port}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Postane\r\nAccept: application/xml, text/xml\r\n"
        "Connection: close\r\n\r\n"
    )
    with sock:
        sock.settimeout(max(deadline - time.monotonic(), 0.1))
        try:
            sock.sendall(request.encode("ascii"))
            response = http.client.HTTPResponse(sock, method="GET")
            response.begin()
            body = response.read(max_bytes + 1)
        except (OSError, http.client.HTTPException) as error:
            raise FetchError(
                f"{parts.hostname} did not answer as a web server ({type(error).__name__})"
            ) from None
    if len(body) > max_bytes:
        raise FetchError(f"the answer is larger than {max_bytes // 1024} KB")
    return response.status, response.getheader("Location", ""), body
