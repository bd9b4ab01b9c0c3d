"""Mailbox discovery: from an address to its servers, and a record of every step tried (issue #14).

The chain, stopping at the first trustworthy answer:
  1. Postane's provider table (fetcher/mail/providers.toml);
  2. the provider's own autoconfig over HTTPS: autoconfig.<domain>/mail/config-v1.1.xml, then
     <domain>/.well-known/autoconfig/mail/config-v1.1.xml;
  3. Mozilla's ISPDB (or an administrator's mirror of it);
  4. the domain's MX host: a provider of the table that runs it, else its base domain in 1-3
     (a company's own domain at Google Workspace, Microsoft 365, Yandex 360);
  5. RFC 6186 SRV records, implicit TLS first (RFC 8314).
Each document and DNS answer is hostile input: fetched through the network policy's host checks
(fetcher.mail.https, fetcher.mail.resolver), size- and time-limited, parsed safely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from fetcher.mail import autoconfig, https, providers
from fetcher.mail.autoconfig import Server, Settings
from fetcher.mail.net import NetworkPolicy, Security, gettext_noop
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


@dataclass(frozen=True)
class Sources:
    """Where the chain asks; the defaults are the public internet's."""

    policy: NetworkPolicy
    resolver: Resolver
    ispdb_url: str = ISPDB_URL
    https_port: int = 443  # the port of a provider's own autoconfig (tests: their HTTPS server's)
    fetch: Callable[..., bytes] = https.fetch


def discover(address: str, sources: Sources) -> Discovery:
    """Where the mailbox of `address` is, found by the chain above."""
    found = Discovery(address)
    domain = address.rpartition("@")[2].lower().rstrip(".")
    if not domain or "@" not in address:
        found.tried.append(Tried(gettext_noop("The address"), address, "not an email address"))
        return found
    if _by_domain(found, domain, sources):
        return found
    if _by_mx(found, domain, sources):
        return found
    _by_srv(found, domain, sources)
    return found


def base_domain(host: str) -> str:
    """The registered domain of a host: aspmx.l.google.com -> google.com, mx.firma.com.tr -> firma.com.tr."""
    labels = host.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def _by_domain(found: Discovery, domain: str, sources: Sources, via: str = "") -> bool:
    """Steps 1-3 for a domain (the address's, or its MX host's base domain)."""
    if (provider := providers.for_domain(domain)) is not None:
        found.tried.append(Tried(gettext_noop("Postane's provider table"), domain, "found"))
        return _take(
            found,
            provider.settings_for(found.address),
            gettext_noop("Postane's provider table"),
            via or domain,
            provider,
        )
    found.tried.append(Tried(gettext_noop("Postane's provider table"), domain, "not a provider it knows"))
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
        found.tried.append(Tried(gettext_noop("The domain's MX record"), domain, answer.problem or "none"))
        return False
    host = answer.records[0]
    found.tried.append(Tried(gettext_noop("The domain's MX record"), domain, f"found {host}"))
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
        found.tried.append(
            Tried(
                gettext_noop("The domain's SRV records"),
                name,
                "found" if answer.records else answer.problem or "none",
            )
        )
        servers.extend(
            Server(protocol, srv.host, srv.port, security, found.address) for srv in answer.records[:1]
        )
    return servers


def _document(found: Discovery, step: str, url: str, sources: Sources) -> Settings | None:
    try:
        settings = autoconfig.parse(sources.fetch(url, sources.policy), found.address)
    except (https.FetchError, autoconfig.AutoconfigError) as error:
        found.tried.append(Tried(step, url, str(error)))
        return None
    found.tried.append(Tried(step, url, "found"))
    return settings


def _take(
    found: Discovery, settings: Settings, source: str, detail: str, provider: providers.Provider | None
) -> bool:
    found.settings, found.source, found.source_detail, found.provider = settings, source, detail, provider
    return True
