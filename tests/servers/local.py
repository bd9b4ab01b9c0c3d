"""What the test mail servers (Dovecot, Courier) share: a root, ports, accounts, one process to stop."""

from __future__ import annotations

import contextlib
import imaplib
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from tests.servers.net import free_port


@dataclass
class LocalMailServer:
    root: Path
    ports: dict[str, int]
    users: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    mail_uid: int = 0
    mail_gid: int = 0
    spare_users: list[str] = field(default_factory=list)

    def port_for(self, protocol: str, security: str) -> int:
        """Where this server serves `protocol` ("pop3", "imap") with that security: SSL/TLS from the
        start on its own port, STARTTLS and plain text on the standard one."""
        return self.ports[protocol + "s" if security == "ssl" else protocol]

    def fresh_user(self) -> tuple[str, str]:
        """An account no test has used yet (made at start-up: the servers read their users then)."""
        user = self.spare_users.pop()
        return user, self.users[user]

    @contextlib.contextmanager
    def client(self, account: tuple[str, str]) -> Iterator[IMAPClient]:
        """The account as another mail client sees it, over plain IMAP on this machine."""
        client = IMAPClient("127.0.0.1", port=self.ports["imap"], ssl=False, timeout=10)
        client.login(*account)
        yield client
        with contextlib.suppress(OSError, IMAPClientError, imaplib.IMAP4.error):
            client.logout()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def with_spare_users(users: dict[str, str], count: int) -> tuple[dict[str, str], list[str]]:
    """The given accounts plus `count` spare ones for fresh_user(), and the spare names."""
    spare = [f"spare{number:03d}" for number in range(count)]
    return {**users, **{name: f"{name}-password" for name in spare}}, spare


def free_mail_ports() -> dict[str, int]:
    return {name: free_port() for name in ("pop3", "pop3s", "imap", "imaps")}
