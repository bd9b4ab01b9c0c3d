"""Mailbox discovery: from an address to its servers, and a record of every step tried (issue #14).

The chain, stopping at the first trustworthy answer:
  1. Postane's provider table (fetcher/mail/providers.toml);
  2. the provider's own autoconfig over HTTPS: autoconfig.<domain>/mail/config-v1.1.xml, then
     <domain>/.well-known/autoconfig/mail/config-v1.1.xml;
  3. Mozilla's ISPDB (or an administrator's mirror of it);
  4. the domain's MX host: a provider of the table that runs it, else its base domain in 1-3
     (a company's own domain at Google Workspace, Microsoft 365, Yandex 360);
  5. RFC 6186 SRV records, implicit TLS first (RFC 8314);
  6. guessing imap./pop./pop3./mail./smtp. and the bare domain on the implicit-TLS ports, each
     through the network policy with its certificate verified; a certificate valid for another name
     (the usual cPanel case) is reported with the names it is valid for, and that name is offered.
Each document and DNS answer is hostile input: fetched through the network policy's host checks
(fetcher.mail.https, fetcher.mail.resolver), size- and time-limited, parsed safely.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from fetcher.mail import autoconfig, https, providers
from fetcher.mail.autoconfig import Server, Settings
from fetcher.mail.net import (
    CertificateInfo,
    Endpoint,
    MailError,
    NetworkPolicy,
    Security,
    check_endpoint,
    gettext_noop,
    open_socket,
)
from fetcher.mail.resolver import Resolver

ISPDB_URL = "https://autoconfig.thunderbird.net/v1.1/"
# Second-level labels under which a country's domains are registered (sirket.com.tr, firma.co.uk).
_SECOND_LEVEL = {"com", "net", "org", "gov", "edu", "co", "ac", "gen", "biz", "info", "web", "bel", "k12"}
# RFC 6186 service names, the implicit-TLS one of each pair first (RFC 8314).
_SRV = (
    ("_imaps._tcp", "imap", Security.SSL),
    ("_imap._tcp", "imap", Security.STARTTLS),
    ("_pop3s._tcp", "pop3", Security.SSL),
    ("_pop3._tcp", "pop3", Security.STARTTLS),
)
_SUBMISSION = (("_submissions._tcp", Security.SSL), ("_submission._tcp", Security.STARTTLS))
# Step 6: host names tried for each protocol, on its implicit-TLS port (the only ones a handshake alone
# can check; STARTTLS needs the protocol spoken first).
_GUESSES = (
    ("imap", ("imap.", "mail.", "")),
    ("pop3", ("pop.", "pop3.", "mail.", "")),
    ("smtp", ("smtp.", "mail.", "")),
)
IMPLICIT_TLS_PORTS = {"imap": 993, "pop3": 995, "smtp": 465}


@dataclass(frozen=True)
class Tried:
    """One step of the chain: what was asked (a URL, a DNS name), and what came of it."""

    step: str  # a gettext_noop text, translated where it is shown
    asked: str
    outcome: str  # "found", or why not


@dataclass
class Discovery:
    address: str
    settings: Settings | None = None
    source: str = ""  # a gettext_noop text naming where the settings came from
    source_detail: str = ""  # the URL or DNS name
    provider: providers.Provider | None = None  # for its hints (app password, what to switch on)
    tried: list[Tried] = field(default_factory=list)
    # Told of each step as it is tried (a worker records them, so the page shows them as they happen).
    listener: Callable[[Discovery], None] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Sources:
    """Where the chain asks; the defaults are the public internet's."""

    policy: NetworkPolicy
    resolver: Resolver
    ispdb_url: str = ISPDB_URL
    https_port: int = 443  # the port of a provider's own autoconfig (tests: their HTTPS server's)
    fetch: Callable[..., bytes] = https.fetch
    guess_ports: dict[str, int] = field(default_factory=lambda: dict(IMPLICIT_TLS_PORTS))


def discover(
    address: str, sources: Sources, listener: Callable[[Discovery], None] | None = None
) -> Discovery:
    """Where the mailbox of `address` is, found by the chain above."""
    found = Discovery(address, listener=listener)
    domain = address.rpartition("@")[2].lower().rstrip(".")
    if not domain or "@" not in address:
        _note(found, Tried(gettext_noop("The address"), address, gettext_noop("not an email address")))
        return found
    if _by_domain(found, domain, sources):
        return found
    if _by_mx(found, domain, sources):
        return found
    if _by_srv(found, domain, sources):
        return found
    _by_guess(found, domain, sources)
    return found


def base_domain(host: str) -> str:
    """The registered domain of a host: aspmx.l.google.com -> google.com, mx.firma.com.tr -> firma.com.tr."""
    labels = host.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def _by_domain(found: Discovery, domain: str, sources: Sources, via: str = "") -> bool:
    """Steps 1-3 for a domain (the address's, or its MX host's base domain)."""
    if (provider := providers.for_domain(domain)) is not None:
        _note(found, Tried(gettext_noop("Postane's provider table"), domain, gettext_noop("found")))
        return _take(
            found,
            provider.settings_for(found.address),
            gettext_noop("Postane's provider table"),
            via or domain,
            provider,
        )
    unknown = gettext_noop("not a provider it knows")
    _note(found, Tried(gettext_noop("Postane's provider table"), domain, unknown))
    port = "" if sources.https_port == 443 else f":{sources.https_port}"
    email = quote(found.address, safe="@")
    own = [
        f"https://autoconfig.{domain}{port}/mail/config-v1.1.xml?emailaddress={email}",
        f"https://{domain}{port}/.well-known/autoconfig/mail/config-v1.1.xml",
    ]
    for url in own:
        if (
            settings := _document(found, gettext_noop("The provider's own settings"), url, sources)
        ) is not None:
            return _take(found, settings, gettext_noop("The provider's own settings"), url, None)
    url = sources.ispdb_url.rstrip("/") + "/" + quote(domain)
    if (settings := _document(found, gettext_noop("Mozilla's ISPDB"), url, sources)) is not None:
        return _take(found, settings, gettext_noop("Mozilla's ISPDB"), url, None)
    return False


def _by_mx(found: Discovery, domain: str, sources: Sources) -> bool:
    answer = sources.resolver.mx(domain)
    if not answer.records:
        outcome = answer.problem or gettext_noop("none")
        _note(found, Tried(gettext_noop("The domain's MX record"), domain, outcome))
        return False
    host = answer.records[0]
    _note(found, Tried(gettext_noop("The domain's MX record"), domain, f"found {host}"))
    if (provider := providers.for_mx(host)) is not None:
        source = gettext_noop("Postane's provider table, by the domain's MX record")
        return _take(found, provider.settings_for(found.address), source, host, provider)
    base = base_domain(host)
    return base != domain and _by_domain(found, base, sources, via=host)


def _by_srv(found: Discovery, domain: str, sources: Sources) -> bool:
    incoming = _srv_servers(found, domain, sources, _SRV)
    outgoing = _srv_servers(
        found, domain, sources, [(name, "smtp", security) for name, security in _SUBMISSION]
    )
    if not incoming:
        return False
    settings = Settings(provider=domain, incoming=tuple(incoming), outgoing=tuple(outgoing))
    return _take(found, settings, gettext_noop("The domain's SRV records"), domain, None)


def _srv_servers(
    found: Discovery, domain: str, sources: Sources, services: Iterable[tuple[str, str, Security]]
) -> list[Server]:
    servers: list[Server] = []
    for service, protocol, security in services:
        name = f"{service}.{domain}"
        answer = sources.resolver.srv(name)
        _note(
            found,
            Tried(
                gettext_noop("The domain's SRV records"),
                name,
                "found" if answer.records else answer.problem or "none",
            ),
        )
        servers.extend(
            Server(protocol, srv.host, srv.port, security, found.address) for srv in answer.records[:1]
        )
    return servers


def _note(found: Discovery, tried: Tried) -> None:
    found.tried.append(tried)
    if found.listener is not None:
        found.listener(found)


def _document(found: Discovery, step: str, url: str, sources: Sources) -> Settings | None:
    try:
        settings = autoconfig.parse(sources.fetch(url, sources.policy), found.address)
    except (https.FetchError, autoconfig.AutoconfigError) as error:
        _note(found, Tried(step, url, str(error)))
        return None
    _note(found, Tried(step, url, "found"))
    return settings


def _take(
    found: Discovery, settings: Settings, source: str, detail: str, provider: providers.Provider | None
) -> bool:
    found.settings, found.source, found.source_detail, found.provider = settings, source, detail, provider
    return True


def _by_guess(found: Discovery, domain: str, sources: Sources) -> bool:
    servers: dict[str, Server] = {}
    for protocol, prefixes in _GUESSES:
        port = sources.guess_ports[protocol]
        for prefix in prefixes:
            host = prefix + domain
            if (name := _handshake(found, host, port, sources.policy)) is not None:
                servers[protocol] = Server(protocol, name, port, Security.SSL, found.address)
                break
    incoming = tuple(servers[kind] for kind in ("imap", "pop3") if kind in servers)
    if not incoming:
        return False
    outgoing = (servers["smtp"],) if "smtp" in servers else ()
    settings = Settings(provider=domain, incoming=incoming, outgoing=outgoing)
    return _take(
        found, settings, gettext_noop("Guessed, and checked by the servers' certificates"), domain, None
    )


def _handshake(found: Discovery, host: str, port: int, policy: NetworkPolicy) -> str | None:
    """The name to use for `host:port` when it speaks TLS with a certificate a trusted authority
    signed: `host` itself, or the name the certificate is valid for instead. None otherwise."""
    step, asked = gettext_noop("A guess at the server's name"), f"{host}:{port}"
    try:
        target = check_endpoint(Endpoint(host, port, Security.SSL), policy)
        context = ssl.create_default_context()
        if policy.extra_ca_file:
            context.load_verify_locations(cafile=policy.extra_ca_file)
        context.check_hostname = False  # matched below, so that another name can be reported
        with open_socket(target) as plain, context.wrap_socket(plain, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except MailError as error:
        _note(found, Tried(step, asked, error.message))
        return None
    except ssl.SSLCertVerificationError:
        _note(found, Tried(step, asked, "its certificate is not signed by a trusted authority"))
        return None
    except OSError as error:
        _note(found, Tried(step, asked, f"no TLS there ({type(error).__name__})"))
        return None
    names = CertificateInfo.from_der(der).names if der else ()
    if any(_matches(host, name) for name in names):
        _note(found, Tried(step, asked, "found"))
        return host
    usable = [name for name in names if "*" not in name and not name.replace(".", "").isdigit()]
    _note(found, Tried(step, asked, f"found, but its certificate is for {', '.join(names) or 'no name'}"))
    return usable[0] if usable else None


def _matches(host: str, name: str) -> bool:
    """RFC 6125: an exact name, or a wildcard standing for exactly one leftmost label."""
    host, name = host.lower().rstrip("."), name.lower().rstrip(".")
    if name.startswith("*."):
        return host.count(".") == name.count(".") and host.split(".", 1)[1] == name[2:]
    return host == name
