"""POP3 sessions over checked connections. Plain Python, no Django.

A session that ends with an exception closes without QUIT, so the server applies no deletion
from a failed run.
"""

from __future__ import annotations

import base64
import poplib
import socket
import ssl

from fetcher.mail.net import (
    CertificateInfo,
    MailError,
    Security,
    Step,
    Target,
    check_peer,
    open_socket,
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
        sock = open_socket(self._target)
        if self._implicit_tls is None:
            return sock
        return self._implicit_tls.wrap_socket(sock, server_hostname=self._target.endpoint.host)

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
                Step.GREETING, "The server did not greet like a POP3 server.", permanent=False
            ) from exc
        except OSError as exc:
            if isinstance(exc, ssl.SSLError | ssl.CertificateError):
                raise self._tls_error(exc, target) from exc
            raise MailError(
                Step.GREETING, "The connection closed before the POP3 greeting.", permanent=False
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
            raise MailError(Step.STARTTLS, "The POP3 server does not offer STARTTLS (STLS).", permanent=True)
        try:
            client.stls(tls_context(target, verify=verify))
        except ssl.SSLError as exc:
            _quietly(client.close)
            raise self._tls_error(exc, target) from exc
        except poplib.error_proto as exc:
            _quietly(client.close)
            raise MailError(
                Step.STARTTLS, "STARTTLS was refused.", permanent=True, server_text=_text(exc)
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
        try:
            if "PLAIN" in mechanisms:
                client.auth_plain(self.config.login, self.config.password.reveal())
            else:
                client.user(self.config.login)
                client.pass_(self.config.password.reveal())
        except poplib.error_proto as exc:
            raise MailError(
                Step.AUTH, "The server refused the login.", permanent=True, server_text=_text(exc)
            ) from exc
        except (OSError, EOFError) as exc:
            raise _lost(Step.AUTH, exc) from exc
        self._enable_utf8(client)

    def _enable_utf8(self, client: _POP3) -> None:
        """Say UTF8 (RFC 6856) when offered: without it Courier replaces every message whose
        headers carry raw UTF-8 by a "Cannot display Unicode content" notice of its own."""
        if "UTF8" not in self.capabilities:
            return
        try:
            client.utf8()
        except poplib.error_proto:
            pass  # the server keeps its old behaviour; nothing else depends on it
        except (OSError, EOFError) as exc:
            raise _lost(Step.AUTH, exc) from exc

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
        try:
            _resp, lines, _octets = self._client().uidl()
        except poplib.error_proto as exc:
            raise MailError(
                Step.UIDL, "The server does not support UIDL.", permanent=True, server_text=_text(exc)
            ) from exc
        except (OSError, EOFError) as exc:
            raise _lost(Step.UIDL, exc) from exc
        listing = []
        for line in lines:
            number, _sep, uid = _text(line).partition(" ")
            listing.append((int(number), uid))
        return listing

    def sizes(self) -> dict[int, int]:
        """Message number -> size in octets (LIST), so downloads can be batched by bytes.

        LIST is required by RFC 1939, but a server that refuses it only loses the byte limit.
        """
        try:
            _resp, lines, _octets = self._client().list()
        except poplib.error_proto:
            return {}
        except (OSError, EOFError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc
        found = {}
        for line in lines:
            number, _sep, size = _text(line).partition(" ")
            found[int(number)] = int(size.split()[0]) if size.split() and size.split()[0].isdigit() else 0
        return found

    def retr(self, number: int) -> bytes:
        """The message exactly as the server sends it (CRLF line ends, dot-stuffing undone)."""
        client = self._client()
        try:
            client.send_command(f"RETR {int(number)}")
            return client.read_message()
        except poplib.error_proto as exc:
            raise MailError(
                Step.PROTOCOL, f"RETR {number} failed.", permanent=False, server_text=_text(exc)
            ) from exc
        except (OSError, EOFError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc

    def retr_many(self, numbers: list[int]) -> list[bytes]:
        """RETR several messages; with PIPELINING (RFC 2449) the commands go out together.

        Pipelining saves a round trip per message. Commands are small, so a window of them
        fits the socket buffer while the server's answers are read back in order.
        """
        if "PIPELINING" not in self.capabilities:
            return [self.retr(number) for number in numbers]
        client = self._client()
        found: list[bytes] = []
        for start in range(0, len(numbers), 32):
            window = numbers[start : start + 32]
            try:
                for number in window:
                    client.send_command(f"RETR {int(number)}")
                found.extend(client.read_message() for _ in window)
            except poplib.error_proto as exc:
                raise MailError(
                    Step.PROTOCOL, "RETR failed.", permanent=False, server_text=_text(exc)
                ) from exc
            except (OSError, EOFError) as exc:
                raise _lost(Step.PROTOCOL, exc) from exc
        return found

    def top_headers(self, number: int) -> bytes:
        client = self._client()
        try:
            client.send_command(f"TOP {int(number)} 0")
            return client.read_message()
        except poplib.error_proto as exc:
            raise MailError(
                Step.PROTOCOL, f"TOP {number} failed.", permanent=False, server_text=_text(exc)
            ) from exc
        except (OSError, EOFError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc

    def uid_of(self, number: int) -> str:
        """UIDL for one message number, asked again right before a DELE."""
        try:
            response = _text(self._client().uidl(number))
        except poplib.error_proto as exc:
            raise MailError(
                Step.UIDL, f"UIDL {number} failed.", permanent=False, server_text=_text(exc)
            ) from exc
        except (OSError, EOFError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc
        parts = response.split()
        return parts[2] if len(parts) >= 3 else ""

    def dele(self, number: int) -> None:
        try:
            self._client().dele(number)
        except poplib.error_proto as exc:
            raise MailError(
                Step.PROTOCOL, f"DELE {number} failed.", permanent=False, server_text=_text(exc)
            ) from exc
        except (OSError, EOFError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc

    def stat(self) -> tuple[int, int]:
        try:
            count, size = self._client().stat()
        except poplib.error_proto as exc:
            raise MailError(Step.PROTOCOL, "STAT failed.", permanent=False, server_text=_text(exc)) from exc
        except (OSError, EOFError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc
        return count, size
