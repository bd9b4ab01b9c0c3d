"""Postane's own provider table (providers.toml beside this file): the first step of mailbox
discovery, and the hints a connection test gives when a known provider refuses a login.

The table is data; this module reads it once, checks every entry (a bad entry fails loudly at the
first use, and the test of the table), and answers two questions: which provider serves an address
(by its domain, or by the host its domain's MX names), and what settings that gives the address.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fetcher.mail.autoconfig import Server, Settings
from fetcher.mail.net import Security, gettext_noop

TABLE = Path(__file__).with_name("providers.toml")
SIGN_INS = ("password", "app-password", "oauth")


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    domains: tuple[str, ...]
    mx: tuple[str, ...]
    login: str  # "address" or "local"
    sign_in: str  # one of SIGN_INS
    enable: tuple[str, ...]  # protocols to switch on in the provider's settings first
    help: str
    incoming: tuple[dict[str, Any], ...]
    outgoing: tuple[dict[str, Any], ...]

    def settings_for(self, address: str) -> Settings:
        local, _at, domain = address.rpartition("@")
        login = address if self.login == "address" else local

        def server(entry: dict[str, Any]) -> Server:
            host = str(entry["host"]).replace("%EMAILDOMAIN%", domain.lower())
            security = Security(entry["security"])
            return Server(
                entry["protocol"], host, int(entry["port"]), security, login, self.sign_in == "oauth"
            )

        return Settings(
            provider=self.name,
            incoming=tuple(server(entry) for entry in self.incoming),
            outgoing=tuple(server(entry) for entry in self.outgoing),
        )


@cache
def table() -> tuple[Provider, ...]:
    """Every provider of the table, checked."""
    entries = tomllib.loads(TABLE.read_text(encoding="utf-8"))["provider"]
    providers = tuple(_provider(entry) for entry in entries)
    ids = [provider.id for provider in providers]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{TABLE.name}: a provider id is used twice")
    return providers


def for_domain(domain: str) -> Provider | None:
    """The provider whose addresses end in this domain."""
    domain = domain.lower().rstrip(".")
    return next((provider for provider in table() if domain in provider.domains), None)


def for_mx(host: str) -> Provider | None:
    """The provider that runs this MX host (a company's own domain at Google, Microsoft, Yandex)."""
    host = host.lower().rstrip(".")
    return next(
        (p for p in table() if any(host == base or host.endswith("." + base) for base in p.mx)),
        None,
    )


def for_server(host: str) -> Provider | None:
    """The provider that runs this mail server (imap.gmail.com, outlook.office365.com...)."""
    host = host.lower().rstrip(".")
    return next(
        (p for p in table() if any(host == str(s["host"]).lower() for s in (*p.incoming, *p.outgoing))),
        None,
    )


_PROTOCOLS = {"imap": "IMAP", "pop3": "POP"}


def login_hints(kind: str, host: str) -> list[tuple[str, dict[str, str | int]]]:
    """What a known provider's refusal of a login means, and what to do: sentences to translate
    with their values, as MailError.parts are. None for a server the table does not know."""
    provider = for_server(host)
    if provider is None:
        return []
    values: dict[str, str | int] = {"provider": provider.name, "help": provider.help}
    hints: list[tuple[str, dict[str, str | int]]] = []
    if provider.sign_in == "oauth":
        hints.append(
            (
                gettext_noop(
                    "%(provider)s no longer takes passwords from mail programs: it needs its own sign-in"
                    " (OAuth), which Postane does not offer yet. See %(help)s"
                ),
                values,
            )
        )
    elif provider.sign_in == "app-password":
        hints.append(
            (
                gettext_noop(
                    "%(provider)s takes an app password here, not the password of your account: make one in"
                    " its security settings and enter it instead. See %(help)s"
                ),
                values,
            )
        )
    if kind in provider.enable:
        hints.append(
            (
                gettext_noop(
                    "%(protocol)s must be switched on in the settings of %(provider)s first. See %(help)s"
                ),
                values | {"protocol": _PROTOCOLS[kind]},
            )
        )
    return hints


def _provider(entry: dict[str, Any]) -> Provider:
    name = entry.get("id", "?")
    if entry.get("login") not in {"address", "local"} or entry.get("sign_in") not in SIGN_INS:
        raise ValueError(
            f"{TABLE.name}: provider {name}: login must be address or local, sign_in one of {SIGN_INS}"
        )
    for server in [*entry["incoming"], *entry["outgoing"]]:
        Security(server["security"])  # ValueError for a security we do not know
        if server["protocol"] not in {"imap", "pop3", "smtp"} or not 0 < int(server["port"]) < 65536:
            raise ValueError(f"{TABLE.name}: provider {name}: a server is not imap, pop3 or smtp on a port")
    return Provider(
        id=entry["id"],
        name=entry["name"],
        domains=tuple(entry["domains"]),
        mx=tuple(entry["mx"]),
        login=entry["login"],
        sign_in=entry["sign_in"],
        enable=tuple(entry["enable"]),
        help=entry["help"],
        incoming=tuple(entry["incoming"]),
        outgoing=tuple(entry["outgoing"]),
    )
