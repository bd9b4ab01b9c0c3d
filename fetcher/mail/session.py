"""What the POP3, IMAP and SMTP sessions share. Plain Python, no Django.

Each session (`pop3.Pop3Session`, `imap.ImapSession`, `smtp.SmtpSession`) is a context manager
taking a `ServerConfig`: it checks the host (`net.check_endpoint`), connects to the checked
address, negotiates TLS as configured, logs in, and raises `MailError` naming the failed step.
"""

from __future__ import annotations

import ast
import imaplib
import poplib
import smtplib
import ssl
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, Self

from imapclient.exceptions import IMAPClientError

from fetcher.mail.net import (
    CertificateInfo,
    Endpoint,
    MailError,
    NetworkPolicy,
    Security,
    Step,
    Target,
    check_endpoint,
    gettext_noop,
    reject_control_characters,
    tls_failure,
)

# What we say in EHLO: not the machine's own name, which may reveal an internal host.
HELO_NAME = "postane.localdomain"


class Secret:
    """A password that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@dataclass(frozen=True)
class ServerConfig:
    endpoint: Endpoint
    login: str
    password: Secret = field(repr=False)
    policy: NetworkPolicy = field(default_factory=NetworkPolicy, repr=False)

    def check_credentials(self) -> None:
        reject_control_characters(self.login, gettext_noop("login"))
        reject_control_characters(self.password.reveal(), gettext_noop("password"))


def _text(value: bytes | str | Any) -> str:
    """A server's words as text: bytes decoded, and an exception by its arguments (poplib and
    imapclient raise with the server's bytes, whose str() would read `b'-ERR Login failed.'`)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    if isinstance(value, BaseException) and value.args:
        return " ".join(_text(arg) for arg in value.args).strip()
    text = str(value).strip()
    if len(text) > 2 and text[:2] in {"b'", 'b"'} and text[-1] == text[1]:
        with suppress(ValueError, SyntaxError):  # a bytes repr inside a message: read it back
            literal = ast.literal_eval(text)
            if isinstance(literal, bytes):
                return _text(literal)
    return text


def _quietly(close: Callable[[], object]) -> None:
    """Close a connection that may already be broken (a failed TLS handshake leaves a dead socket)."""
    with suppress(
        OSError, EOFError, smtplib.SMTPException, imaplib.IMAP4.error, IMAPClientError, poplib.error_proto
    ):
        close()


def _lost(step: Step, exc: BaseException) -> MailError:
    if isinstance(exc, TimeoutError):
        return MailError(step, gettext_noop("The server stopped answering (timed out)."), permanent=False)
    return MailError(
        step,
        gettext_noop("The connection was lost (%(error)s)."),
        permanent=False,
        values={"error": exc.__class__.__name__},
    )


class _Session[ClientT]:
    """What the three protocols share: the checked target, the session's life, certificate details.

    Subclasses say how to connect, log in, say goodbye (`_farewell`) and close (`_shut`).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.target: Target | None = None
        self.certificate: CertificateInfo | None = None
        self.greeting = ""
        self.client: ClientT | None = None

    def __enter__(self) -> Self:
        target = self._check()
        try:
            self.client = self._connect(target, verify=True)
        except MailError as error:
            no_greeting = error.step is Step.GREETING and not self.greeting
            if no_greeting and target.endpoint.security is not Security.SSL:
                error.add(
                    gettext_noop(
                        "Port %(port)s may expect SSL/TLS from the start (as 993, 995 and 465 usually do):"
                        " if so, choose SSL/TLS as the security setting."
                    ),
                    {"port": target.endpoint.port},
                )
            raise
        try:
            self._login(self.client)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.client is not None:
            self._farewell(self.client, ended_well=exc_type is None)
        self._close()

    def _close(self) -> None:
        if self.client is not None:
            _quietly(partial(self._shut, self.client))
            self.client = None

    def _connect(self, target: Target, *, verify: bool) -> ClientT:
        raise NotImplementedError

    def _login(self, client: ClientT) -> None:
        raise NotImplementedError

    def _farewell(self, client: ClientT, *, ended_well: bool) -> None:
        raise NotImplementedError

    def _shut(self, client: ClientT) -> None:
        raise NotImplementedError

    def _check(self) -> Target:
        self.config.check_credentials()
        self.target = check_endpoint(self.config.endpoint, self.config.policy)
        return self.target

    def _tls_error(self, exc: ssl.SSLError | OSError, target: Target) -> MailError:
        error = tls_failure(exc, target)
        if isinstance(exc, ssl.SSLCertVerificationError):
            error.certificate = self._unverified_certificate(target)
        return error

    def _unverified_certificate(self, target: Target) -> CertificateInfo | None:
        """Fetch the refused certificate again, without verifying, only to show it: no login follows."""
        try:
            return self._fetch_certificate(target)
        except (MailError, OSError, ssl.SSLError, EOFError):
            return None

    def _fetch_certificate(self, target: Target) -> CertificateInfo | None:
        raise NotImplementedError
