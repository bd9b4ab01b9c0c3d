"""POP3 sessions over checked connections. Plain Python, no Django.

A session that ends with an exception closes without QUIT, so the server applies no deletion
from a failed run.
"""

from __future__ import annotations

import base64
import poplib
import socket
import ssl
from collections.abc import Callable
from contextlib import suppress
from functools import partial

from fetcher.mail.net import (
    CertificateInfo,
    MailError,
    Security,
    Step,
    Target,
    check_peer,
    gettext_noop,
    open_connection,
    peer_certificate,
    tls_context,
)
from fetcher.mail.session import ServerConfig, _lost, _quietly, _Session, _text


class _POP3(poplib.POP3):
    def __init__(self, target: Target, context: ssl.SSLContext | None) -> None:
        self._target = target
        self._implicit_tls = context
        super().__init__(target.endpoint.host, target.endpoint.port, target.timeout)

    def _create_socket(self, timeout: float) -> socket.socket:
        return open_connection(self._target, self._implicit_tls)

    def auth_plain(self, login: str, password: str) -> None:
        """SASL PLAIN (RFC 5034): UTF-8 login and password in one base64 token."""
        token = base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode("ascii")
        self._shortcmd(f"AUTH PLAIN {token}")  # type: ignore[attr-defined]

    # poplib has no public API for pipelining: these name the internals it needs.
    def send_command(self, line: str) -> None:
        self._putcmd(line)  # type: ignore[attr-defined]

    def read_message(self) -> bytes:
        """A multi-line answer (RETR, TOP) as the message's bytes: dot-stuffing undone, CRLF line ends.

        poplib's own reader refuses lines over 2,048 bytes, which real mail has (HTML on one
        line), and keeps a list of lines beside the joined copy; this one reads any line length
        into a single buffer, so a large message is held about twice, not four times.
        """
        self._getresp()  # type: ignore[attr-defined]  # raises error_proto for -ERR
        buffer = bytearray()
        readline = self.file.readline
        at_line_start = True
        while True:
            line = readline(_READ_CHUNK)
            if not line:
                raise poplib.error_proto("-ERR EOF")
            if at_line_start:
                if line in {b".\r\n", b".\n"}:
                    return bytes(buffer)
                if line.startswith(b".."):
                    line = line[1:]
            at_line_start = line.endswith(b"\n")
            if at_line_start and not line.endswith(b"\r\n"):
                line = line[:-1] + b"\r\n"
            buffer += line


_READ_CHUNK = 64 * 1024


class Pop3Session(_Session[_POP3]):
    """`with Pop3Session(config) as pop: pop.uidl()`"""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        self.capabilities: dict[str, list[str]] = {}
        self.quit_ok = False

    def _farewell(self, client: _POP3, *, ended_well: bool) -> None:
        if not ended_well:
            return  # no QUIT: the server applies no DELE from a run that failed
        try:
            client.quit()  # QUIT commits DELEs
            self.quit_ok = True
        except (poplib.error_proto, OSError, EOFError):
            self.quit_ok = False

    def _shut(self, client: _POP3) -> None:
        client.close()

    def _connect(self, target: Target, *, verify: bool) -> _POP3:
        security = target.endpoint.security
        implicit = tls_context(target, verify=verify) if security is Security.SSL else None
        try:
            client = _POP3(target, implicit)
        except ssl.SSLError as exc:
            raise self._tls_error(exc, target) from exc
        except (poplib.error_proto, EOFError, UnicodeError) as exc:
            raise MailError(
                Step.GREETING, gettext_noop("The server did not greet like a POP3 server."), permanent=False
            ) from exc
        except OSError as exc:
            if isinstance(exc, ssl.SSLError | ssl.CertificateError):
                raise self._tls_error(exc, target) from exc
            raise MailError(
                Step.GREETING,
                gettext_noop("The connection closed before the POP3 greeting."),
                permanent=False,
            ) from exc
        self.greeting = _text(client.getwelcome())
        try:
            self.capabilities = client.capa()
        except poplib.error_proto:
            self.capabilities = {}  # CAPA is optional (RFC 2449)
        if security is Security.STARTTLS:
            self._starttls(client, target, verify=verify)
        if security is not Security.NONE:
            self.certificate = peer_certificate(client.sock)
            check_peer(client.sock, target)
        return client

    def _starttls(self, client: _POP3, target: Target, *, verify: bool) -> None:
        if "STLS" not in self.capabilities:
            _quietly(client.close)
            raise MailError(
                Step.STARTTLS, gettext_noop("The POP3 server does not offer STARTTLS (STLS)."), permanent=True
            )
        try:
            client.stls(tls_context(target, verify=verify))
        except ssl.SSLError as exc:
            _quietly(client.close)
            raise self._tls_error(exc, target) from exc
        except poplib.error_proto as exc:
            _quietly(client.close)
            raise MailError(
                Step.STARTTLS, gettext_noop("STARTTLS was refused."), permanent=True, server_text=_text(exc)
            ) from exc
        try:
            self.capabilities = client.capa()
        except poplib.error_proto:
            self.capabilities = {}

    def _login(self, client: _POP3) -> None:
        """SASL PLAIN when the server offers it, else USER/PASS.

        APOP is not used: it rests on MD5, says nothing TLS does not, and a server that shows a
        timestamp but refuses APOP would count the attempt as a failed login.
        """
        mechanisms = {mechanism.upper() for mechanism in self.capabilities.get("SASL", [])}

        def log_in() -> None:
            if "PLAIN" in mechanisms:
                client.auth_plain(self.config.login, self.config.password.reveal())
            else:
                client.user(self.config.login)
                client.pass_(self.config.password.reveal())

        refused = gettext_noop("The server refused the login.")
        self._command("login", log_in, step=Step.AUTH, refused=refused, permanent=True)
        self._enable_utf8(client)

    def _enable_utf8(self, client: _POP3) -> None:
        """Say UTF8 (RFC 6856) when offered: without it Courier replaces every message whose
        headers carry raw UTF-8 by a "Cannot display Unicode content" notice of its own."""
        if "UTF8" not in self.capabilities:
            return

        def say_utf8() -> None:
            # Refused: the server keeps its old behaviour, and nothing else depends on it.
            with suppress(poplib.error_proto):
                client.utf8()

        self._command("UTF8", say_utf8, step=Step.AUTH)

    def _command[T](
        self,
        what: str,
        call: Callable[[], T],
        *,
        step: Step = Step.PROTOCOL,
        lost: Step | None = None,
        refused: str = "",
        permanent: bool = False,
    ) -> T:
        """Run one POP3 command: a -ERR answer becomes MailError(`step`) saying `refused` (else that
        `what` failed) with the server's words; a dropped or silent connection `_lost` at `lost`
        (else at `step`)."""
        try:
            return call()
        except poplib.error_proto as exc:
            raise MailError(
                step,
                refused or gettext_noop("%(command)s failed."),
                permanent=permanent,
                values={} if refused else {"command": what},
                server_text=_text(exc),
            ) from exc
        except (OSError, EOFError) as exc:
            raise _lost(step if lost is None else lost, exc) from exc

    def _answers(self, commands: list[str]) -> list[bytes]:
        """Send the commands, then read their multi-line answers (RETR, TOP) in order."""
        client = self._client()
        for command in commands:
            client.send_command(command)
        return [client.read_message() for _ in commands]

    def _fetch_certificate(self, target: Target) -> CertificateInfo | None:
        client = self._connect(target, verify=False)
        _quietly(client.close)
        return self.certificate

    def _client(self) -> _POP3:
        if self.client is None:
            raise RuntimeError("use the session inside its `with` block")
        return self.client

    def uidl(self) -> list[tuple[int, str]]:
        """(message number, unique id) for every message; MailError(UIDL) when unsupported."""
        refused = gettext_noop("The server does not support UIDL.")
        _resp, lines, _octets = self._command(
            "UIDL", lambda: self._client().uidl(), step=Step.UIDL, refused=refused, permanent=True
        )
        listing = []
        for line in lines:
            number, _sep, uid = _text(line).partition(" ")
            listing.append((int(number), uid))
        return listing

    def sizes(self) -> dict[int, int]:
        """Message number -> size in octets (LIST), so downloads can be batched by bytes.

        LIST is required by RFC 1939, but a server that refuses it only loses the byte limit.
        """

        def listing() -> list[bytes]:
            try:
                return self._client().list()[1]
            except poplib.error_proto:
                return []

        found = {}
        for line in self._command("LIST", listing):
            number, _sep, size = _text(line).partition(" ")
            found[int(number)] = int(size.split()[0]) if size.split() and size.split()[0].isdigit() else 0
        return found

    def retr(self, number: int) -> bytes:
        """The message exactly as the server sends it (CRLF line ends, dot-stuffing undone)."""
        return self._command(f"RETR {number}", partial(self._answers, [f"RETR {int(number)}"]))[0]

    def retr_many(self, numbers: list[int]) -> list[bytes]:
        """RETR several messages; with PIPELINING (RFC 2449) the commands go out together.

        Pipelining saves a round trip per message. Commands are small, so a window of them
        fits the socket buffer while the server's answers are read back in order.
        """
        if "PIPELINING" not in self.capabilities:
            return [self.retr(number) for number in numbers]
        found: list[bytes] = []
        for start in range(0, len(numbers), 32):
            window = [f"RETR {int(number)}" for number in numbers[start : start + 32]]
            found.extend(self._command("RETR", partial(self._answers, window)))
        return found

    def top_headers(self, number: int) -> bytes:
        return self._command(f"TOP {number}", partial(self._answers, [f"TOP {int(number)} 0"]))[0]

    def uid_of(self, number: int) -> str:
        """UIDL for one message number, asked again right before a DELE."""
        answer = self._command(
            f"UIDL {number}", lambda: self._client().uidl(number), step=Step.UIDL, lost=Step.PROTOCOL
        )
        parts = _text(answer).split()
        return parts[2] if len(parts) >= 3 else ""

    def dele(self, number: int) -> None:
        self._command(f"DELE {number}", lambda: self._client().dele(number))

    def stat(self) -> tuple[int, int]:
        return self._command("STAT", lambda: self._client().stat())
