"""Who is knocking: the client address that login lock-outs and rate limits count."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind one of our trusted proxies the client they saw.

    X-Forwarded-For is believed only when the connection comes from a trusted proxy, and then
    only from the right: each trusted hop appended the address it saw, so the rightmost entry
    that is not a trusted proxy is the client. Anything left of it the client wrote itself.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    if not settings.WEBMAIL_BEHIND_PROXY or not _trusted(_address(remote)):
        return remote
    hops = str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")
    for hop in reversed(hops):
        address = _address(hop.strip())
        if address is None:
            break  # not what a proxy appends: believe the header no further
        if not _trusted(address):
            return str(address)
    return remote


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    return address is not None and any(address in network for network in settings.WEBMAIL_TRUSTED_PROXIES)
