"""A real DNS server for the discovery tests: Debian's dnsmasq on a free loopback port, answering
only for the test zones it is given (no upstream, no /etc/hosts), so what the tests resolve is
exactly what they set up."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.resolver

from tests.servers.net import free_port

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


@dataclass
class DnsServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        """What WEBMAIL_DNS_SERVERS takes."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


def start_dnsmasq(root: Path, records: list[str]) -> DnsServer:
    """dnsmasq serving `records`, each a line of its configuration (`mx-host=...`, `srv-host=...`,
    `host-record=...`, `txt-record=...`)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "dnsmasq.conf"
    config.write_text(
        "\n".join(
            [
                f"port={port}",
                "listen-address=127.0.0.1",
                "bind-interfaces",
                "no-resolv",
                "no-hosts",
                "no-poll",
                "user=root",
                f"pid-file={root / 'dnsmasq.pid'}",
                "local=/test/",  # the .test zones are ours: an unknown name there is NXDOMAIN
                "txt-record=ready.test,ok",
                *records,
            ]
        )
        + "\n"
    )
    process = subprocess.Popen(
        [DNSMASQ, "--keep-in-foreground", f"--conf-file={config}"],
        stdout=subprocess.DEVNULL,
        stderr=(root / "dnsmasq.log").open("wb"),
    )
    server = DnsServer(port, process)
    _wait_until_it_answers(server)
    return server


def _wait_until_it_answers(server: DnsServer, timeout: float = 10.0) -> None:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], server.port, 0.5
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"dnsmasq stopped at start ({server.process.returncode})")
        try:
            resolver.resolve("ready.test", "TXT", search=False)
            return
        except dns.exception.DNSException:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("dnsmasq did not answer")
