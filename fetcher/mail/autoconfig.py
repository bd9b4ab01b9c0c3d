"""Mail settings in Thunderbird's autoconfig format (`config-v1.1.xml`), the one language of the
discovery chain: a provider's own autoconfig, Mozilla's ISPDB and Postane's provider table all say
where a mailbox's servers are in it.

Every document is hostile input: it is size-capped before parsing, parsed with defusedxml (no
entities, no DTDs, no external references), and every value is checked before it becomes a setting
(a host name must be a DNS name, a port a port, a security one we know). What cannot be used is
left out, never guessed; a document with nothing usable is refused with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from fetcher.mail.net import Security

MAX_BYTES = 256 * 1024  # the largest ISPDB file is under 10 KB
INCOMING = ("imap", "pop3")
_SECURITY = {"SSL": Security.SSL, "STARTTLS": Security.STARTTLS, "plain": Security.NONE}
_HOST = re.compile(r"(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_PASSWORDS = {"password-cleartext", "password-encrypted", "plain", "secure"}


class AutoconfigError(ValueError):
    """The document cannot be used; the message says why, for the discovery's list of steps."""


@dataclass(frozen=True)
class Server:
    """One server a document names, its placeholders filled in for the address."""

    protocol: str  # "imap", "pop3" or "smtp"
    host: str
    port: int
    security: Security
    login: str  # what to log in with: the whole address, its local part, or a fixed name
    oauth_only: bool = False  # the provider takes no password here, only OAuth2


@dataclass(frozen=True)
class Settings:
    """What a document says for one address: its servers in the order the document prefers them."""

    provider: str
    incoming: tuple[Server, ...]
    outgoing: tuple[Server, ...]

    def incoming_for(self, protocol: str | None = None) -> Server | None:
        """The server to read mail from: IMAP where there is one (or `protocol`, if asked), implicit
        TLS before STARTTLS before plain text (RFC 8314), and the document's order among equals."""
        usable = [server for server in self.incoming if protocol in (None, server.protocol)]
        order = {Security.SSL: 0, Security.STARTTLS: 1, Security.NONE: 2}
        usable.sort(key=lambda server: (INCOMING.index(server.protocol), order[server.security]))
        return usable[0] if usable else None

    def outgoing_server(self) -> Server | None:
        order = {Security.SSL: 0, Security.STARTTLS: 1, Security.NONE: 2}
        return min(self.outgoing, key=lambda server: order[server.security], default=None)


def parse(document: bytes, address: str) -> Settings:
    """The settings a config-v1.1.xml document gives for `address` (local@domain)."""
    if len(document) > MAX_BYTES:
        raise AutoconfigError(f"the document is larger than {MAX_BYTES // 1024} KB")
    try:
        root = fromstring(document, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as error:
        raise AutoconfigError(f"the document is not XML Postane may read ({type(error).__name__})") from None
    provider = root.find("emailProvider") if root.tag == "clientConfig" else None
    if provider is None:
        raise AutoconfigError(
            "the document is not a mail client configuration (no clientConfig/emailProvider)"
        )
    local, _at, domain = address.rpartition("@")
    values = {"%EMAILADDRESS%": address, "%EMAILLOCALPART%": local, "%EMAILDOMAIN%": domain.lower()}
    incoming = _servers(provider.findall("incomingServer"), INCOMING, values)
    outgoing = _servers(provider.findall("outgoingServer"), ("smtp",), values)
    if not incoming:
        raise AutoconfigError("the document names no IMAP or POP3 server Postane can use")
    name = _text(provider.find("displayName")) or str(provider.get("id", domain))
    return Settings(provider=name[:100], incoming=incoming, outgoing=outgoing)


def _servers(
    elements: Iterable[Element], protocols: tuple[str, ...], values: dict[str, str]
) -> tuple[Server, ...]:
    found = []
    for element in elements:
        if (protocol := element.get("type", "")) not in protocols:
            continue  # Exchange, EWS, Graph, OWA: not mail protocols Postane speaks
        if (server := _server(element, protocol, values)) is not None:
            found.append(server)
    return tuple(found)


def _server(element: Element, protocol: str, values: dict[str, str]) -> Server | None:
    host = _filled(_text(element.find("hostname")), values).lower()
    port = _text(element.find("port"))
    security = _SECURITY.get(_text(element.find("socketType")))
    if not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536 or security is None:
        return None
    methods = {_text(method) for method in element.findall("authentication")}
    login = _filled(_text(element.find("username")) or "%EMAILADDRESS%", values)
    oauth_only = "OAuth2" in methods and not methods & _PASSWORDS
    return Server(protocol, host.rstrip("."), int(port), security, login[:254], oauth_only)


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _filled(template: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template
