"""Reaching a mail server safely: host checks (SSRF), TCP, TLS and certificate pinning.

Plain Python with no Django imports. Every connection the web process or a worker makes
to a mail server goes through `check_endpoint` (resolve once, refuse what is not allowed)
and `open_socket` (connect to exactly the address that was checked), so a name that
re-resolves to an internal address between the check and the connection gains nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from fetcher.mail import resolver

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAIL_PORTS = frozenset({25, 110, 143, 465, 587, 993, 995})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: an IPv4 address in the last 32 bits


def gettext_noop(message: str) -> str:
    """Mark a message for the translators and return it as it is (Django's makemessages finds this
    name). This package has no Django: the pages translate a MailError's parts when they show them."""
    return message


# Special ranges that Python's is_global misses or that its versions judge differently.
_SPECIAL = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in [
        ("fec0::/10", gettext_noop("a site-local address (deprecated, RFC 3879)")),
        ("64:ff9b:1::/48", gettext_noop("a local-use NAT64 address")),
        ("100::/64", gettext_noop("a discard-only address")),
        ("2001:db8::/32", gettext_noop("a documentation address")),
        ("3fff::/20", gettext_noop("a documentation address")),
        ("::/96", gettext_noop("an IPv4-compatible address (deprecated)")),
        ("192.88.99.0/24", gettext_noop("a 6to4 relay address (deprecated)")),
    ]
)
_FORBIDDEN_CHARACTERS = ("\r", "\n", "\0")


class Security(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"


class Step(StrEnum):
    """The stages of reaching and using a mail server, in order; errors name one."""

    INPUT = "input"
    POLICY = "policy"
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    GREETING = "greeting"
    STARTTLS = "starttls"
    AUTH = "auth"
    UIDL = "uidl"
    FOLDERS = "folders"
    PROTOCOL = "protocol"


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    sha256: str
    names: tuple[str, ...] = ()

    @classmethod
    def from_der(cls, der: bytes) -> CertificateInfo:
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = tuple(san.get_values_for_type(x509.DNSName)) + tuple(
                str(ip) for ip in san.get_values_for_type(x509.IPAddress)
            )
        except x509.ExtensionNotFound:
            names = tuple(
                str(attr.value) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            )
        return cls(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            sha256=format_fingerprint(cert.fingerprint(hashes.SHA256())),
            names=names,
        )


class MailError(Exception):
    """A mail server could not be reached or used; `step` says where, `permanent` whether a retry can help.

    `message` is English (for logs); `parts` are its sentences as (text, values) pairs, each text
    marked for translation with %(name)s for its values, so that a page can show it translated.
    """

    def __init__(
        self,
        step: Step,
        message: str,
        *,
        permanent: bool,
        values: Mapping[str, str | int] | None = None,
        server_text: str = "",
        certificate: CertificateInfo | None = None,
    ) -> None:
        self.parts: list[tuple[str, dict[str, str | int]]] = [(message, dict(values or {}))]
        super().__init__(self.message)
        self.step = step
        self.permanent = permanent
        self.server_text = server_text
        self.certificate = certificate

    @property
    def message(self) -> str:
        return " ".join(text % values if values else text for text, values in self.parts)

    def add(self, text: str, values: Mapping[str, str | int] | None = None) -> None:
        """One more sentence (a hint about the likely cause)."""
        self.parts.append((text, dict(values or {})))

    def __str__(self) -> str:
        return f"{self.message} ({self.server_text})" if self.server_text else self.message


@dataclass(frozen=True)
class NetworkPolicy:
    """What the workers may connect to. Nothing internal unless an administrator opens it."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    allowed_ports: frozenset[int] | None = MAIL_PORTS  # None: any port
    extra_ca_file: str | None = None
    timeout: float = 20.0
    dns_servers: tuple[str, ...] = ()  # the resolvers to ask (fetcher.mail.resolver); empty: the system's


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: Security
    fingerprint: str = ""  # SHA-256 of the one certificate the user chose to trust


@dataclass(frozen=True)
class Target:
    """An endpoint whose host name was resolved and checked: connect to `address` only."""

    endpoint: Endpoint
    address: str
    timeout: float
    policy: NetworkPolicy = field(repr=False)


def format_fingerprint(digest: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in digest)


def normalise_fingerprint(text: str) -> str:
    """Accept AA:BB.., aabb.., with spaces or 'SHA256:' in front; return AA:BB:... or raise ValueError."""
    cleaned = text.strip().rsplit("=", 1)[-1]  # as `openssl x509 -fingerprint` prints it
    cleaned = cleaned.strip().upper().removeprefix("SHA256:").removeprefix("SHA256")
    hex_digits = "".join(ch for ch in cleaned if ch not in ": ")
    if len(hex_digits) != 64 or any(ch not in "0123456789ABCDEF" for ch in hex_digits):
        raise ValueError("a SHA-256 fingerprint has 64 hexadecimal digits")
    return format_fingerprint(bytes.fromhex(hex_digits))


def reject_control_characters(value: str, what: str) -> None:
    """Values that reach a protocol command may not smuggle a second command."""
    if any(ch in value for ch in _FORBIDDEN_CHARACTERS):
        raise MailError(
            Step.INPUT,
            gettext_noop("The %(what)s contains a line break or NUL character."),
            permanent=True,
            values={"what": what},
        )


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why Postane refuses this address by default, or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return forbidden_reason(embedded)
    checks: list[tuple[bool, str]] = [
        (ip.is_unspecified, gettext_noop("an unspecified address")),
        (ip.is_loopback, gettext_noop("a loopback address")),
        (ip.is_link_local, gettext_noop("a link-local address")),
        (ip.is_multicast, gettext_noop("a multicast address")),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, gettext_noop("a carrier-grade NAT address")),
        (
            isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"),
            gettext_noop("a unique-local address"),
        ),
        (ip.is_private, gettext_noop("a private address")),
        (ip.is_reserved, gettext_noop("a reserved address")),
        *((ip in network, reason) for network, reason in _SPECIAL),
        (not ip.is_global, gettext_noop("an address that is not publicly routable")),
    ]
    return next((reason for hit, reason in checks if hit), None)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_allowed(ip: IPAddress, host: str, policy: NetworkPolicy) -> bool:
    if host.lower().rstrip(".") in policy.allowed_hosts:
        return True
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        candidates.append(ip.ipv4_mapped)
    if any(candidate in network for candidate in candidates for network in policy.allowed_networks):
        return True
    return forbidden_reason(ip) is None


def _resolve(host: str, port: int, policy: NetworkPolicy) -> list[IPAddress]:
    if policy.dns_servers and not _is_address(host):
        answer = resolver.Resolver(policy.dns_servers, timeout=policy.timeout).addresses(host)
        if not answer.records:
            raise MailError(
                Step.DNS,
                gettext_noop("The name %(host)s could not be resolved."),
                permanent=False,
                values={"host": host},
            )
        return [ipaddress.ip_address(address) for address in answer.records]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise MailError(
            Step.DNS,
            gettext_noop("The name %(host)s could not be resolved."),
            permanent=False,
            values={"host": host},
        ) from exc
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return list(dict.fromkeys(found))


def check_endpoint(endpoint: Endpoint, policy: NetworkPolicy) -> Target:
    host = endpoint.host.strip().removeprefix("[").removesuffix("]")
    reject_control_characters(host, gettext_noop("server name"))
    if not host or len(host) > 253:
        raise MailError(Step.INPUT, gettext_noop("The server name is empty or too long."), permanent=True)
    if policy.allowed_ports is not None and endpoint.port not in policy.allowed_ports:
        ports = ", ".join(str(port) for port in sorted(policy.allowed_ports))
        raise MailError(
            Step.POLICY,
            gettext_noop("Port %(port)s is not a mail port (%(ports)s)."),
            permanent=True,
            values={"port": endpoint.port, "ports": ports},
        )
    addresses = _resolve(host, endpoint.port, policy)
    for ip in addresses:
        if _is_allowed(ip, host, policy):
            plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
            return Target(endpoint, str(plain), policy.timeout, policy)
    reason = forbidden_reason(addresses[0]) or gettext_noop("not allowed")
    raise MailError(
        Step.POLICY,
        gettext_noop(
            "%(host)s points to %(address)s, %(reason)s; Postane does not connect there unless an"
            " administrator allows that network."
        ),
        permanent=True,
        values={"host": host, "address": str(addresses[0]), "reason": reason},
    )


def open_connection(target: Target, implicit_tls: ssl.SSLContext | None) -> socket.socket:
    """`open_socket`, then TLS at once on a port that speaks it from the start (POP3S, IMAPS, SMTPS)."""
    sock = open_socket(target)
    if implicit_tls is None:
        return sock
    return implicit_tls.wrap_socket(sock, server_hostname=target.endpoint.host)


def open_socket(target: Target) -> socket.socket:
    """A TCP connection to the checked address, with errors that name the step."""
    where = f"{target.endpoint.host}:{target.endpoint.port}"
    try:
        sock = socket.create_connection((target.address, target.endpoint.port), timeout=target.timeout)
    except ConnectionRefusedError as exc:
        raise MailError(
            Step.CONNECT,
            gettext_noop("%(where)s refused the connection."),
            permanent=False,
            values={"where": where},
        ) from exc
    except TimeoutError as exc:
        raise MailError(
            Step.CONNECT,
            gettext_noop("%(where)s did not answer within %(seconds)s s."),
            permanent=False,
            values={"where": where, "seconds": round(target.timeout)},
        ) from exc
    except OSError as exc:
        raise MailError(
            Step.CONNECT,
            gettext_noop("%(where)s could not be reached (%(error)s)."),
            permanent=False,
            values={"where": where, "error": exc.strerror or exc.__class__.__name__},
        ) from exc
    # imaplib writes a continuation (AUTHENTICATE's token, a literal) and its CRLF apart: with
    # Nagle's algorithm the second write waits for the server's delayed ACK, 40 ms a login.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def tls_context(target: Target, *, verify: bool = True) -> ssl.SSLContext:
    """System CAs and host-name checks; for a pinned certificate, the pin alone (checked after handshake)."""
    if target.endpoint.fingerprint or not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context()
        if target.policy.extra_ca_file:
            context.load_verify_locations(cafile=target.policy.extra_ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def check_peer(sock: socket.socket, target: Target) -> None:
    """Enforce a pinned certificate before any secret is sent over the connection."""
    if not target.endpoint.fingerprint:
        return
    if not isinstance(sock, ssl.SSLSocket):
        raise MailError(Step.TLS, gettext_noop("The connection is not encrypted."), permanent=True)
    der = sock.getpeercert(binary_form=True)
    if der is None:
        raise MailError(Step.TLS, gettext_noop("The server sent no certificate."), permanent=True)
    actual = format_fingerprint(hashlib.sha256(der).digest())
    if actual != normalise_fingerprint(target.endpoint.fingerprint):
        raise MailError(
            Step.TLS,
            gettext_noop("The server's certificate is not the one you chose to trust."),
            permanent=True,
            certificate=CertificateInfo.from_der(der),
        )


def peer_certificate(sock: socket.socket) -> CertificateInfo | None:
    if isinstance(sock, ssl.SSLSocket) and (der := sock.getpeercert(binary_form=True)):
        return CertificateInfo.from_der(der)
    return None


# What OpenSSL says when the other side answers in plain text (a greeting, an HTTP page) to its hello.
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG"})


def tls_failure(exc: ssl.SSLError | OSError, target: Target) -> MailError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = gettext_noop("The server's certificate was refused: %(reason)s.")
        values: dict[str, str | int] = {
            "reason": exc.verify_message or gettext_noop("it could not be verified")
        }
    elif getattr(exc, "reason", None) in _NOT_TLS:
        message = gettext_noop(
            "Port %(port)s does not speak SSL/TLS from the start: the security setting does not match"
            " the port. Ports 993, 995 and 465 usually take SSL/TLS; 143, 110 and 587 STARTTLS."
        )
        values = {"port": target.endpoint.port}
    else:
        message = gettext_noop("The TLS handshake with %(host)s failed (%(error)s).")
        values = {"host": target.endpoint.host, "error": f"{exc.__class__.__name__}: {exc}"}
    return MailError(
        Step.TLS, message, permanent=isinstance(exc, ssl.SSLCertVerificationError), values=values
    )
