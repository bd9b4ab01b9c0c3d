"""POP3, IMAP and SMTP sessions over checked connections. Plain Python, no Django.

Each session is a context manager taking a small config dataclass: it checks the host
(`net.check_endpoint`), connects to the checked address, negotiates TLS as configured,
logs in, and raises `MailError` naming the failed step. A POP3 session that ends with an
exception closes without QUIT, so the server applies no deletion from a failed run.
"""

from __future__ import annotations

import ast
import base64
import imaplib
import poplib
import re
import smtplib
import socket
import ssl
from collections.abc import Buffer, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, Self

from imapclient import DELETED, IMAPClient, imap_utf7
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.response_parser import parse_response

from fetcher.mail.net import (
    CertificateInfo,
    Endpoint,
    MailError,
    NetworkPolicy,
    Security,
    Step,
    Target,
    check_endpoint,
    check_peer,
    open_socket,
    peer_certificate,
    reject_control_characters,
    tls_context,
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
        reject_control_characters(self.login, "login")
        reject_control_characters(self.password.reveal(), "password")


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
        return MailError(step, "The server stopped answering (timed out).", permanent=False)
    return MailError(step, f"The connection was lost ({exc.__class__.__name__}).", permanent=False)


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
        self.client = self._connect(target, verify=True)
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


# --- POP3 -------------------------------------------------------------------------------------


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


# --- IMAP -------------------------------------------------------------------------------------


class _IMAP4(imaplib.IMAP4):
    def __init__(self, target: Target, context: ssl.SSLContext | None) -> None:
        self._target = target
        self._implicit_tls = context
        super().__init__(target.endpoint.host, target.endpoint.port, target.timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = open_socket(self._target)
        if self._implicit_tls is None:
            return sock
        return self._implicit_tls.wrap_socket(sock, server_hostname=self._target.endpoint.host)


class _CheckedIMAPClient(IMAPClient):  # type: ignore[misc]
    """IMAPClient connecting to the checked address, with imapclient's quoting for everything else."""

    def __init__(self, target: Target, context: ssl.SSLContext | None) -> None:
        self._target = target
        super().__init__(
            target.endpoint.host,
            port=target.endpoint.port,
            ssl=context is not None,
            ssl_context=context,
            timeout=target.timeout,
        )

    def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 -- imapclient's hook
        return _IMAP4(self._target, self.ssl_context if self.ssl else None)


class StaleUidsError(MailError):
    """The selected folder's UIDVALIDITY is not the one a UID command was meant for."""


@dataclass(frozen=True)
class Folder:
    name: str
    flags: tuple[str, ...]
    delimiter: str


def _folders(listing: list[tuple[Any, Any, Any]]) -> list[Folder]:
    """imapclient's (flags, delimiter, name) triples as Folders, names decoded."""
    return [
        Folder(name=str(name), flags=tuple(_text(flag) for flag in flags), delimiter=_text(delimiter or b""))
        for flags, delimiter, name in listing
    ]


def _authenticate_plain_ir(client: _CheckedIMAPClient, login: str, password: str) -> None:
    """AUTHENTICATE PLAIN with the initial response on the command line (SASL-IR, RFC 4959).

    One round trip instead of two: every poll starts with a login. imaplib knows only the
    two-step form, so the command is sent as is and the session marked authenticated.
    """
    token = base64.b64encode(f"\0{login}\0{password}".encode()).decode("ascii")
    imap = client._imap
    typ, data = imap._simple_command("AUTHENTICATE", "PLAIN", token)
    if typ != "OK":
        raise LoginError(_text(data[-1] if data else b""))
    imap.state = "AUTH"


class ImapSession(_Session[_CheckedIMAPClient]):
    selected_uidvalidity: int | None = None  # of the folder the last SELECT opened

    def _farewell(self, client: _CheckedIMAPClient, *, ended_well: bool) -> None:
        _quietly(client.logout)

    def _shut(self, client: _CheckedIMAPClient) -> None:
        client.shutdown()

    def _connect(self, target: Target, *, verify: bool) -> _CheckedIMAPClient:
        security = target.endpoint.security
        implicit = tls_context(target, verify=verify) if security is Security.SSL else None
        try:
            client = _CheckedIMAPClient(target, implicit)
        except ssl.SSLError as exc:
            raise self._tls_error(exc, target) from exc
        except (imaplib.IMAP4.error, IMAPClientError, EOFError) as exc:
            raise MailError(
                Step.GREETING, "The server did not greet like an IMAP server.", permanent=False
            ) from exc
        except OSError as exc:
            raise MailError(
                Step.GREETING, "The connection closed before the IMAP greeting.", permanent=False
            ) from exc
        self.greeting = _text(client.welcome)
        if security is Security.STARTTLS:
            self._starttls(client, target, verify=verify)
        if security is not Security.NONE:
            self.certificate = peer_certificate(client.socket())
            check_peer(client.socket(), target)
        return client

    def _starttls(self, client: _CheckedIMAPClient, target: Target, *, verify: bool) -> None:
        if not client.has_capability("STARTTLS"):
            _quietly(client.shutdown)
            raise MailError(Step.STARTTLS, "The IMAP server does not offer STARTTLS.", permanent=True)
        try:
            client.starttls(tls_context(target, verify=verify))
        except ssl.SSLError as exc:
            _quietly(client.shutdown)
            raise self._tls_error(exc, target) from exc
        except (imaplib.IMAP4.error, IMAPClientError) as exc:
            _quietly(client.shutdown)
            raise MailError(
                Step.STARTTLS, "STARTTLS was refused.", permanent=True, server_text=_text(exc)
            ) from exc

    def _fetch_certificate(self, target: Target) -> CertificateInfo | None:
        client = self._connect(target, verify=False)
        _quietly(client.shutdown)
        return self.certificate

    def _login(self, client: _CheckedIMAPClient) -> None:
        """AUTHENTICATE PLAIN (UTF-8, so a Turkish password works) when offered, else LOGIN."""
        login, password = self.config.login, self.config.password.reveal()
        if not client.has_capability("AUTH=PLAIN") and not (login + password).isascii():
            message = "This server takes only plain-ASCII logins and passwords (no AUTH=PLAIN)."
            raise MailError(Step.AUTH, message, permanent=True)
        try:
            if client.has_capability("AUTH=PLAIN") and client.has_capability("SASL-IR"):
                _authenticate_plain_ir(client, login, password)
            elif client.has_capability("AUTH=PLAIN"):
                client.plain_login(login, password)
            else:
                client.login(login, password)
        except (LoginError, imaplib.IMAP4.error) as exc:
            raise MailError(
                Step.AUTH, "The server refused the login.", permanent=True, server_text=_text(exc)
            ) from exc
        except (OSError, EOFError, imaplib.IMAP4.abort) as exc:
            raise _lost(Step.AUTH, exc) from exc

    def _client(self) -> _CheckedIMAPClient:
        if self.client is None:
            raise RuntimeError("use the session inside its `with` block")
        return self.client

    def folders(self) -> list[Folder]:
        """Every folder with its flags (SPECIAL-USE ones such as \\Sent included), names decoded."""
        try:
            listing = self._client().list_folders()
        except (imaplib.IMAP4.error, IMAPClientError) as exc:
            raise MailError(
                Step.FOLDERS, "The folder list could not be read.", permanent=False, server_text=_text(exc)
            ) from exc
        except (OSError, EOFError) as exc:
            raise _lost(Step.FOLDERS, exc) from exc
        return _folders(listing)

    def reopen(self) -> None:
        """Connect and log in again: Courier drops the connection on a LIST it cannot answer."""
        self._close()
        self.client = self._connect(self._check(), verify=True)
        try:
            self._login(self.client)
        except BaseException:
            self._close()
            raise

    def personal_namespace(self) -> tuple[str, str] | None:
        """Prefix and delimiter of the personal namespace (RFC 2342): ("INBOX.", ".") on Courier.

        None when the server does not say (no NAMESPACE, or no personal namespace).
        """
        client = self._client()
        if not client.has_capability("NAMESPACE"):
            return None
        personal = self._command("NAMESPACE", client.namespace).personal or ()
        if not personal:
            return None
        prefix, delimiter = personal[0]
        return _text(prefix or ""), _text(delimiter or "")

    def create(self, name: str) -> None:
        """Create a folder and subscribe to it, so other clients show it too; imapclient encodes
        and quotes the name."""
        client = self._client()
        self._command(f"CREATE {name}", partial(client.create_folder, name))
        with suppress(MailError):  # a folder that cannot be subscribed is still there
            self._command(f"SUBSCRIBE {name}", partial(client.subscribe_folder, name))

    def _command(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one IMAP command; errors become MailError naming it."""
        try:
            return call()
        except (imaplib.IMAP4.abort, OSError, EOFError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc
        except (imaplib.IMAP4.error, IMAPClientError) as exc:
            raise MailError(
                Step.PROTOCOL, f"{what} failed.", permanent=False, server_text=_text(exc)
            ) from exc

    def overview(self) -> tuple[list[Folder], set[str], dict[str, FolderStatus]] | None:
        """Folders, subscriptions and every folder's status in one round trip (RFC 5258 + RFC 5819).

        None when the server lacks LIST-EXTENDED or LIST-STATUS: then LIST, LSUB and STATUS it is.
        The command holds only constants; folder names come back through imapclient's parser.
        """
        client = self._client()
        if not (client.has_capability("LIST-EXTENDED") and client.has_capability("LIST-STATUS")):
            return None
        items = "UIDVALIDITY UIDNEXT MESSAGES" + (" HIGHESTMODSEQ" if self.condstore else "")
        options = f"RETURN (SUBSCRIBED SPECIAL-USE STATUS ({items}))"
        imap = client._imap

        def run() -> tuple[list[Any], list[Any]]:
            typ, data = imap._simple_command("LIST", '""', '"*"', options)
            client._checkok("list", typ, data)
            _typ, lists = imap._untagged_response(typ, data, "LIST")
            return lists, imap.untagged_responses.pop("STATUS", [])

        lists, statuses = self._command("LIST-STATUS", run)
        folders = _folders(client._proc_folder_list(lists))
        subscribed = {
            folder.name for folder in folders if "\\subscribed" in {f.lower() for f in folder.flags}
        }
        return folders, subscribed, _statuses(statuses)

    def statuses(
        self, names: list[str], *, listing: bool = True
    ) -> tuple[dict[str, FolderStatus] | None, list[Folder] | None]:
        """STATUS of these folders and the folder list (LIST), every command written before any
        answer is read: one round trip, so a folder made by another client shows at once.

        Statuses are None when the server refuses one (a folder deleted or renamed there): list
        them again. The list is None when LIST failed; the session is then reopened, since
        Courier drops the connection on a folder name it cannot answer. Folder names go through
        imapclient's encoding and quoting; LIST holds only constants.
        """
        client = self._client()
        imap = client._imap
        items = "(UIDVALIDITY UIDNEXT MESSAGES" + (" HIGHESTMODSEQ)" if self.condstore else ")")

        def run() -> tuple[list[str], list[Any], tuple[str, list[Any]] | None]:
            for kind in ("STATUS", "LIST"):
                imap.untagged_responses.pop(kind, None)
            tags = [imap._command("STATUS", client._normalise_folder(name), items) for name in names]
            listed_tag = imap._command("LIST", '""', '"*"') if listing else None
            answers = [imap._command_complete("STATUS", tag)[0] for tag in tags]
            lines = imap.untagged_responses.pop("STATUS", [])
            if listed_tag is None:
                return answers, lines, None
            try:  # the statuses are good even if the server chokes on its folder list
                typ = imap._command_complete("LIST", listed_tag)[0]
            except (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError, EOFError):
                return answers, lines, ("BROKEN", [])
            return answers, lines, (typ, imap.untagged_responses.pop("LIST", []))

        answers, lines, listed = self._command("STATUS", run)
        found = _statuses(lines)
        folders = self._listed(listed[1]) if listed is not None and listed[0] == "OK" else None
        if listed is not None and listed[0] == "BROKEN":
            self.reopen()
        if any(answer != "OK" for answer in answers) or not set(names) <= set(found):
            return None, folders
        return found, folders

    def _listed(self, lines: list[Any]) -> list[Folder] | None:
        try:
            return _folders(self._client()._proc_folder_list(lines))
        except (IMAPClientError, ValueError, UnicodeError):
            return None

    def subscribed(self) -> set[str]:
        listing = self._command("LSUB", lambda: self._client().list_sub_folders())
        return {str(name) for _flags, _delimiter, name in listing}

    @property
    def condstore(self) -> bool:
        return bool(self._client().has_capability("CONDSTORE"))

    def status(self, folder: str) -> FolderStatus:
        """UIDVALIDITY, UIDNEXT, MESSAGES and (with CONDSTORE) HIGHESTMODSEQ: one round trip."""
        items = ["UIDVALIDITY", "UIDNEXT", "MESSAGES"] + (["HIGHESTMODSEQ"] if self.condstore else [])
        found = self._command(f"STATUS {folder}", lambda: self._client().folder_status(folder, items))
        return FolderStatus(
            uidvalidity=int(found[b"UIDVALIDITY"]),
            uidnext=int(found.get(b"UIDNEXT", 0)),
            messages=int(found.get(b"MESSAGES", 0)),
            highestmodseq=int(found[b"HIGHESTMODSEQ"]) if b"HIGHESTMODSEQ" in found else None,
        )

    def select(self, folder: str) -> int:
        """Open a folder read-write (SELECT) and return the UIDVALIDITY it answers with.

        Read-write because Courier saves a folder's UIDs only when it is opened so: read-only
        (EXAMINE, STATUS) it hands out temporary ones that shift when mail is added and a new
        UIDVALIDITY each session. Fetching still changes no flag: every body is read with BODY.PEEK.
        """
        answer = self._command(f"SELECT {folder}", lambda: self._client().select_folder(folder))
        self.selected_uidvalidity = int(answer.get(b"UIDVALIDITY", 0))
        return self.selected_uidvalidity

    select_writable = select

    def _same_folder_state(self, uidvalidity: int | None) -> None:
        """A UID command names the messages we mean only under the UIDVALIDITY they were read with."""
        if uidvalidity is not None and uidvalidity != self.selected_uidvalidity:
            raise StaleUidsError(
                Step.PROTOCOL,
                "The folder's UIDVALIDITY changed on the server: its UIDs name other messages now.",
                permanent=False,
            )

    def store_flags(self, uids: list[int], flag: str, *, add: bool, uidvalidity: int | None = None) -> None:
        """Add or remove one system flag (\\Seen, \\Flagged, \\Answered) on these messages."""
        self._same_folder_state(uidvalidity)
        client = self._client()
        change = client.add_flags if add else client.remove_flags
        for start in range(0, len(uids), 1000):
            chunk = uids[start : start + 1000]
            self._command("UID STORE", partial(change, chunk, [flag], silent=True))

    def move(
        self, uids: list[int], target: str, *, uidvalidity: int | None = None
    ) -> dict[int, tuple[int, int]]:
        """Move messages of the selected folder to `target` (UID MOVE, RFC 6851; else COPY and expunge).

        Returns old UID -> (UIDVALIDITY, new UID) of the target when the server reports it
        (COPYUID, RFC 4315), so a moved message is not taken for new mail there.
        """
        self._same_folder_state(uidvalidity)
        client = self._client()
        client._imap.untagged_responses.pop("COPYUID", None)
        if client.has_capability("MOVE"):
            answer = self._command("UID MOVE", partial(client.move, uids, target))
        else:
            answer = self._command("UID COPY", partial(client.copy, uids, target))
            self._expunge(uids)
        untagged = client._imap.untagged_responses.pop("COPYUID", None)
        return _copyuid("COPYUID " + _text(untagged[-1]) if untagged else _text(answer))

    def delete(self, uids: list[int], *, uidvalidity: int | None = None) -> None:
        """Delete messages of the selected folder on the server (\\Deleted, then expunge them)."""
        self._same_folder_state(uidvalidity)
        self._expunge(uids)

    def _expunge(self, uids: list[int]) -> None:
        client = self._client()
        if client.has_capability("UIDPLUS"):  # only these messages, not others marked \Deleted elsewhere
            self._command("UID STORE", partial(client.add_flags, uids, [DELETED], silent=True))
            self._command("UID EXPUNGE", partial(client.uid_expunge, uids))
            return
        # A plain EXPUNGE removes every message marked \Deleted, also those another client only
        # marked: their mark is lifted for the moment of our EXPUNGE, then set again.
        others = sorted(set(self._command("UID SEARCH", lambda: client.search(["DELETED"]))) - set(uids))
        if others:
            self._command("UID STORE", partial(client.remove_flags, others, [DELETED], silent=True))
        self._command("UID STORE", partial(client.add_flags, uids, [DELETED], silent=True))
        try:
            self._command("EXPUNGE", client.expunge)
        finally:
            if others:
                self._command("UID STORE", partial(client.add_flags, others, [DELETED], silent=True))

    def search_message_id(self, message_id: str) -> list[int]:
        """UIDs of the selected folder's messages with this Message-ID (the library quotes it)."""
        found = self._command(
            "UID SEARCH", lambda: self._client().search(["HEADER", "Message-ID", message_id])
        )
        return sorted(int(uid) for uid in found)

    def append(self, folder: str, raw: bytes, *, flags: list[str]) -> tuple[int, int] | None:
        """Add a message to a folder (a sent copy to Sent, a draft to Drafts); the library quotes the
        folder name. Returns (UIDVALIDITY, UID) when the server says (APPENDUID, RFC 4315)."""
        client = self._client()
        answer = self._command(f"APPEND {folder}", partial(client.append, folder, raw, flags=flags))
        found = _APPENDUID.search(_text(answer))
        return (int(found[1]), int(found[2])) if found else None

    def uids_with_message_id(self, message_id: str) -> list[int]:
        """UIDs in the selected folder whose Message-ID header is this one (imapclient quotes it)."""
        criteria = ["HEADER", "Message-ID", message_id]
        return sorted(self._command("UID SEARCH", lambda: self._client().search(criteria)))

    def uids(self, above: int = 0) -> list[int]:
        criteria = ["UID", f"{above + 1}:*"] if above else ["ALL"]
        found = self._command("UID SEARCH", lambda: self._client().search(criteria))
        return sorted(uid for uid in found if uid > above)

    def fetch_messages(self, uids: list[int]) -> dict[int, tuple[bytes, tuple[str, ...]]]:
        """Raw bytes and flags by UID; BODY.PEEK leaves \\Seen alone.

        The bulk fetch goes through imaplib directly: imapclient's general response parser costs
        more than the download itself. Only integers we format reach this command.
        """
        imap = self._client()._imap
        message_set = ",".join(str(int(uid)) for uid in uids)
        typ, data = self._command(
            "UID FETCH", partial(imap.uid, "FETCH", message_set, "(UID FLAGS BODY.PEEK[])")
        )
        if typ != "OK":
            raise MailError(Step.PROTOCOL, "UID FETCH failed.", permanent=False, server_text=_text(data))
        return _fetched_bodies(data)

    def sizes(self, uids: list[int]) -> dict[int, int]:
        """UID -> RFC822.SIZE, so downloads can be batched by bytes."""
        imap = self._client()._imap
        found: dict[int, int] = {}
        for start in range(0, len(uids), 5000):
            message_set = uid_set(uids[start : start + 5000])
            typ, data = self._command("UID FETCH", partial(imap.uid, "FETCH", message_set, "(RFC822.SIZE)"))
            if typ != "OK":
                raise MailError(Step.PROTOCOL, "UID FETCH failed.", permanent=False, server_text=_text(data))
            for line in data:
                text = line if isinstance(line, bytes) else b""
                if (uid := _FETCH_UID.search(text)) and (size := _FETCH_SIZE.search(text)):
                    found[int(uid[1])] = int(size[1])
        return found

    def fetch_flags(self, uids: list[int], modseq: int | None = None) -> dict[int, tuple[str, ...]]:
        """Flags of these messages, or with CONDSTORE only of those changed since `modseq`.

        UIDs go in chunks: imapclient takes lists of numbers, and a command line must stay short.
        """
        modifiers = [f"CHANGEDSINCE {modseq}"] if modseq is not None else None
        flags: dict[int, tuple[str, ...]] = {}
        for start in range(0, len(uids), 1000):
            chunk = uids[start : start + 1000]
            found = self._command(
                "UID FETCH FLAGS", partial(self._client().fetch, chunk, ["FLAGS"], modifiers)
            )
            flags.update(
                {uid: tuple(_text(flag) for flag in data.get(b"FLAGS", ())) for uid, data in found.items()}
            )
        return flags

    def fetch_ids(self, uids: list[int]) -> dict[int, tuple[str, int]]:
        """Message-ID and size by UID: enough to recognise known messages after UIDVALIDITY changes."""
        items = ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]", "RFC822.SIZE"]
        found: dict[int, Any] = {}
        for start in range(0, len(uids), 1000):
            chunk = uids[start : start + 1000]
            found.update(self._command("UID FETCH", partial(self._client().fetch, chunk, items)))
        result = {}
        for uid, data in found.items():
            header = next((value for key, value in data.items() if key.startswith(b"BODY[HEADER")), b"")
            message_id = "".join(_text(bytes(header)).partition(":")[2].split())  # unfolded
            result[uid] = (message_id, int(data.get(b"RFC822.SIZE", 0)))
        return result


_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


_APPENDUID = re.compile(r"APPENDUID (\d+) (\d+)")
_COPYUID = re.compile(r"COPYUID (\d+) ([\d:,]+) ([\d:,]+)")


def _uids_of(text: str) -> list[int]:
    found: list[int] = []
    for piece in text.split(","):
        first, _sep, last = piece.partition(":")
        low, high = sorted((int(first), int(last or first)))
        found.extend(range(low, high + 1))
    return found


def _copyuid(text: str) -> dict[int, tuple[int, int]]:
    """Old UID -> (UIDVALIDITY, new UID) from a COPYUID response code; {} when there is none."""
    match = _COPYUID.search(text)
    if match is None:
        return {}
    sources, targets = _uids_of(match[2]), _uids_of(match[3])
    if len(sources) != len(targets):
        return {}
    return {old: (int(match[1]), new) for old, new in zip(sources, targets, strict=True)}


def uid_set(uids: list[int]) -> str:
    """A UID set with runs written as ranges ("1:500,502"): short command lines for long lists."""
    runs: list[list[int]] = []
    for uid in sorted({int(uid) for uid in uids}):
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(f"{first}:{last}" if last > first else str(first) for first, last in runs)


def _fetched_bodies(data: list[Any]) -> dict[int, tuple[bytes, tuple[str, ...]]]:
    """Read imaplib's FETCH response: (prefix, literal) pairs, each maybe followed by the rest of its line."""
    found: dict[int, tuple[bytes, tuple[str, ...]]] = {}
    for position, item in enumerate(data):
        if not isinstance(item, tuple):
            continue
        prefix, raw = item
        rest = (
            data[position + 1] if position + 1 < len(data) and isinstance(data[position + 1], bytes) else b""
        )
        uid = _FETCH_UID.search(prefix) or _FETCH_UID.search(rest)
        if uid is None:
            continue
        flags = _FETCH_FLAGS.search(prefix) or _FETCH_FLAGS.search(rest)
        names = tuple(flag.decode("ascii", "replace") for flag in flags[1].split()) if flags else ()
        found[int(uid[1])] = (bytes(raw), names)
    return found


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int
    messages: int
    highestmodseq: int | None


def _statuses(lines: list[Any]) -> dict[str, FolderStatus]:
    """STATUS responses (as imaplib keeps them) by decoded folder name."""
    found = {}
    for line in lines:
        parsed = parse_response([line] if isinstance(line, bytes) else list(line))
        if len(parsed) < 2:
            continue
        name = imap_utf7.decode(parsed[0]) if isinstance(parsed[0], bytes) else str(parsed[0])
        values = dict(zip(parsed[1][::2], parsed[1][1::2], strict=False))
        if b"UIDVALIDITY" in values:
            found[name] = FolderStatus(
                uidvalidity=int(values[b"UIDVALIDITY"]),
                uidnext=int(values.get(b"UIDNEXT", 0)),
                messages=int(values.get(b"MESSAGES", 0)),
                highestmodseq=int(values[b"HIGHESTMODSEQ"]) if b"HIGHESTMODSEQ" in values else None,
            )
    return found


# --- SMTP -------------------------------------------------------------------------------------


class _SMTP(smtplib.SMTP):
    def __init__(self, target: Target, context: ssl.SSLContext | None) -> None:
        self._target = target
        self._implicit_tls = context
        self._in_data = False
        super().__init__(local_hostname=HELO_NAME, timeout=target.timeout)
        self._host = target.endpoint.host  # the name, for SNI and host-name checks in STARTTLS

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = open_socket(self._target)
        if self._implicit_tls is None:
            return sock
        return self._implicit_tls.wrap_socket(sock, server_hostname=self._target.endpoint.host)

    def send(self, s: Buffer | str) -> None:
        """Send in pieces: the socket's time-out then means "no progress for that long".

        smtplib hands the whole message to one sendall, whose time-out (since Python 3.5) bounds
        the whole transfer, so a large attachment on a slow line always failed as a lost connection.
        """
        view = memoryview(s.encode(self.command_encoding) if isinstance(s, str) else s).cast("B")
        for start in range(0, len(view), _SEND_PIECE):
            super().send(bytes(view[start : start + _SEND_PIECE]))
        if self._in_data and self.sock is not None:
            # The answer to the final dot waits for every buffered byte to cross the line, and the
            # server's checks: MTAs allow far longer for it (Postfix: smtp_data_done_timeout).
            self.sock.settimeout(max(self.timeout, DATA_DONE_TIMEOUT))

    def data(self, msg: Buffer | str) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)
        finally:
            self._in_data = False
            if self.sock is not None:
                self.sock.settimeout(self.timeout)


_SEND_PIECE = 64 * 1024
DATA_DONE_TIMEOUT = 300.0  # seconds; within send_outgoing's time limit


def _smtp_auth_plain(client: _SMTP, login: str, password: str) -> None:
    """AUTH PLAIN with UTF-8 (smtplib's own encodes ASCII only, which fails a Turkish password)."""
    token = base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode("ascii")
    code, response = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, response)


class SmtpSession(_Session[_SMTP]):
    def _farewell(self, client: _SMTP, *, ended_well: bool) -> None:
        _quietly(client.quit)

    def _shut(self, client: _SMTP) -> None:
        client.close()

    def _connect(self, target: Target, *, verify: bool) -> _SMTP:
        security = target.endpoint.security
        client = _SMTP(target, tls_context(target, verify=verify) if security is Security.SSL else None)
        try:
            code, message = client.connect(target.endpoint.host, target.endpoint.port)
        except ssl.SSLError as exc:
            _quietly(client.close)
            raise self._tls_error(exc, target) from exc
        except (smtplib.SMTPException, OSError) as exc:
            _quietly(client.close)
            raise MailError(
                Step.GREETING, "The connection closed before the SMTP greeting.", permanent=False
            ) from exc
        self.greeting = f"{code} {_text(message)}"
        if code != 220:
            _quietly(client.close)
            raise MailError(
                Step.GREETING,
                "The SMTP server did not accept the connection.",
                permanent=code >= 500,
                server_text=self.greeting,
            )
        try:
            client.ehlo_or_helo_if_needed()
        except (smtplib.SMTPException, OSError) as exc:
            _quietly(client.close)
            raise _lost(Step.GREETING, exc) from exc
        if security is Security.STARTTLS:
            self._starttls(client, target, verify=verify)
        if security is not Security.NONE and client.sock is not None:
            self.certificate = peer_certificate(client.sock)
            check_peer(client.sock, target)
        return client

    def _starttls(self, client: _SMTP, target: Target, *, verify: bool) -> None:
        if not client.has_extn("starttls"):
            _quietly(client.close)
            raise MailError(Step.STARTTLS, "The SMTP server does not offer STARTTLS.", permanent=True)
        try:
            code, message = client.starttls(context=tls_context(target, verify=verify))
        except ssl.SSLError as exc:
            _quietly(client.close)
            raise self._tls_error(exc, target) from exc
        if code != 220:
            _quietly(client.close)
            raise MailError(
                Step.STARTTLS, "STARTTLS was refused.", permanent=True, server_text=f"{code} {_text(message)}"
            )
        client.ehlo()

    def _login(self, client: _SMTP) -> None:
        if not client.has_extn("auth"):
            raise MailError(
                Step.AUTH, "The SMTP server offers no login (AUTH) on this connection.", permanent=True
            )
        login, password = self.config.login, self.config.password.reveal()
        try:
            if "PLAIN" in client.esmtp_features.get("auth", "").upper().split():
                _smtp_auth_plain(client, login, password)
            else:
                client.login(login, password)
        except smtplib.SMTPAuthenticationError as exc:
            text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise MailError(
                Step.AUTH, "The server refused the login.", permanent=True, server_text=text
            ) from exc
        except smtplib.SMTPException as exc:
            raise MailError(Step.AUTH, "The login failed.", permanent=False, server_text=_text(exc)) from exc
        except OSError as exc:
            raise _lost(Step.AUTH, exc) from exc

    def _fetch_certificate(self, target: Target) -> CertificateInfo | None:
        client = self._connect(target, verify=False)
        _quietly(client.close)
        return self.certificate

    def send(self, sender: str, recipients: list[str], raw: bytes, *, smtputf8: bool) -> dict[str, str]:
        """Deliver one message; returns the recipients the server refused (others got it).

        Raises MailError: `permanent` for a 5xx answer (the server's words kept), temporary for
        4xx answers, time-outs and dropped connections.
        """
        client = self._client()
        if smtputf8 and not client.has_extn("smtputf8"):
            raise MailError(
                Step.PROTOCOL, "An address needs SMTPUTF8, which this server does not offer.", permanent=True
            )
        try:
            refused = client.sendmail(sender, recipients, raw, mail_options=["SMTPUTF8"] if smtputf8 else [])
        except smtplib.SMTPRecipientsRefused as exc:
            answers = {rcpt: (code, _text(text)) for rcpt, (code, text) in exc.recipients.items()}
            permanent = all(code >= 500 for code, _text_ in answers.values())
            detail = "; ".join(f"{rcpt}: {code} {text}" for rcpt, (code, text) in answers.items())
            raise MailError(
                Step.PROTOCOL, "Every recipient was refused.", permanent=permanent, server_text=detail
            ) from exc
        except smtplib.SMTPResponseException as exc:
            text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise MailError(
                Step.PROTOCOL,
                "The server refused the message.",
                permanent=exc.smtp_code >= 500,
                server_text=text,
            ) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc
        return {rcpt: f"{code} {_text(text)}" for rcpt, (code, text) in refused.items()}

    def _client(self) -> _SMTP:
        if self.client is None:
            raise RuntimeError("use the session inside its `with` block")
        return self.client
