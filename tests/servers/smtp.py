"""A real SMTP server (aiosmtpd) with STARTTLS or implicit TLS and AUTH, recording what it receives."""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.net import free_port

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    content: bytes


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 2.0.0 Message accepted"


@dataclass
class SmtpServer:
    port: int
    mode: str  # starttls, ssl or plain (plain offers no STARTTLS)
    handler: RecordingHandler
    controller: Controller

    def stop(self) -> None:
        self.controller.stop()


def _authenticator(users: dict[str, str]) -> Any:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            if users.get(login) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return authenticate


@dataclass
class ScriptedHandler(RecordingHandler):
    """Answers DATA from a script ("451 ...", then "250 ..."); records only what it accepted."""

    answers: list[str] = field(default_factory=list)
    attempts: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.attempts += 1
        answer = self.answers.pop(0) if self.answers else "250 2.0.0 Message accepted"
        if answer.startswith("250"):
            await super().handle_DATA(server, session, envelope)
        return answer


def start_smtp(
    ca: trustme.CA,
    users: dict[str, str],
    mode: str,
    handler: RecordingHandler | None = None,
    *,
    smtputf8: bool = False,
) -> SmtpServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    handler = handler or RecordingHandler()
    port = free_port()
    options: dict[str, Any] = {
        "authenticator": _authenticator(users),
        # aiosmtpd counts only STARTTLS as TLS; with implicit TLS the whole session is encrypted anyway.
        "auth_require_tls": mode == "starttls",
        "auth_exclude_mechanism": ["CRAM-MD5"],
        "enable_SMTPUTF8": smtputf8,
    }
    if mode == "starttls":
        options["tls_context"] = context
    elif mode == "ssl":
        options["ssl_context"] = context
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost", **options)
    controller.start()
    return SmtpServer(port, mode, handler, controller)


@dataclass
class DeliveringHandler(RecordingHandler):
    """An MTA in miniature: what it accepts goes into the recipient's Dovecot INBOX (by local part)."""

    deliver: Any = None  # Callable[[str, bytes, str], Any], the Dovecot fixture's deliver

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        answer = await super().handle_DATA(server, session, envelope)
        for number, rcpt in enumerate(envelope.rcpt_tos):
            with contextlib.suppress(FileNotFoundError):  # not a Dovecot user here: relayed elsewhere
                self.deliver(rcpt.partition("@")[0], envelope.original_content or b"", f"smtp{number}")
        return answer
