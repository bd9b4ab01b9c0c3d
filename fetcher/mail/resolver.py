"""The DNS questions of mailbox discovery: a domain's MX hosts and its mail SRV records (RFC 6186),
asked through dnspython of the resolvers the administrator named (WEBMAIL_DNS_SERVERS), or the
system's.

Answers are hostile input: a name that is not a host name is dropped, a record count is capped, and
every failure (no such domain, no answer, a dead or slow resolver) is an empty answer with the reason
kept for the discovery's list of steps, never an exception out of here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dns.exception
import dns.resolver

MAX_RECORDS = 20
_HOST = re.compile(r"(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    host: str
    port: int


@dataclass
class Answer[T]:
    records: list[T] = field(default_factory=list)
    problem: str = ""  # why there are none, when there are none


class Resolver:
    """Asks `servers` (addresses, each optionally with :port), or the system's resolvers when empty."""

    def __init__(self, servers: list[str] | tuple[str, ...] = (), timeout: float = 5.0) -> None:
        self._resolver = dns.resolver.Resolver(configure=not servers)
        if servers:
            addresses, ports = zip(*(_address_and_port(server) for server in servers), strict=True)
            self._resolver.nameservers = list(addresses)
            self._resolver.port = ports[0]
        self._resolver.lifetime = timeout

    def mx(self, domain: str) -> Answer[str]:
        """The domain's mail exchangers, the most preferred first."""
        found = self._ask(domain, "MX")
        if isinstance(found, str):
            return Answer(problem=found)
        records = sorted(found, key=lambda record: record.preference)[:MAX_RECORDS]
        hosts = [_host(record.exchange.to_text()) for record in records]
        return Answer([host for host in hosts if host])

    def addresses(self, host: str) -> Answer[str]:
        """The host's IPv4 and IPv6 addresses, IPv4 first."""
        found: list[str] = []
        problems = []
        for kind in ("A", "AAAA"):
            answer = self._ask(host, kind)
            if isinstance(answer, str):
                problems.append(answer)
            else:
                found.extend(record.to_text() for record in list(answer)[:MAX_RECORDS])
        return Answer(found, "" if found else problems[0])

    def srv(self, name: str) -> Answer[Srv]:
        """The SRV records of `name` (`_imaps._tcp.example.com`) in the order RFC 2782 tries them;
        a target of "." says the service is not offered there, and is not a record."""
        found = self._ask(name, "SRV")
        if isinstance(found, str):
            return Answer(problem=found)
        records = []
        for record in list(found)[:MAX_RECORDS]:
            host = _host(record.target.to_text())
            if host and 0 < record.port < 65536:
                records.append(Srv(record.priority, record.weight, host, record.port))
        records.sort(key=lambda srv: (srv.priority, -srv.weight))
        return Answer(records)

    def _ask(self, name: str, kind: str) -> dns.resolver.Answer | str:
        if not _HOST.fullmatch(name.strip(".").lstrip("_").replace("._", ".")):
            return "not a domain name"
        try:
            return self._resolver.resolve(name, kind, search=False)
        except dns.resolver.NoAnswer:
            return f"no {kind} record"
        except dns.exception.DNSException as error:
            return _PROBLEMS.get(type(error), type(error).__name__)


_PROBLEMS: dict[type[Exception], str] = {
    dns.resolver.NXDOMAIN: "no such domain",
    dns.resolver.NoNameservers: "no resolver answered",
    dns.exception.Timeout: "the resolver did not answer in time",
    dns.resolver.LifetimeTimeout: "the resolver did not answer in time",
}


def _host(text: str) -> str:
    host = text.rstrip(".").lower()
    return host if _HOST.fullmatch(host) else ""


def _address_and_port(server: str) -> tuple[str, int]:
    """`127.0.0.1`, `127.0.0.1:5353`, `::1` or `[::1]:5353`."""
    if server.startswith("["):
        address, _bracket, port = server[1:].partition("]")
        return address, int(port.lstrip(":") or 53)
    if server.count(":") == 1:
        address, port = server.split(":")
        return address, int(port)
    return server, 53
