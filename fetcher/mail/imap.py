"""IMAP sessions over checked connections, on imapclient. Plain Python, no Django."""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import ssl
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from imapclient import DELETED, IMAPClient, imap_utf7
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.response_parser import parse_response

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
from fetcher.mail.session import _lost, _quietly, _Session, _text


class _IMAP4(imaplib.IMAP4):
    def __init__(self, target: Target, context: ssl.SSLContext | None) -> None:
        self._target = target
        self._implicit_tls = context
        super().__init__(target.endpoint.host, target.endpoint.port, target.timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return open_connection(self._target, self._implicit_tls)


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


# The SPECIAL-USE flags (RFC 6154) a folder may be created with.
SPECIAL_USE_FLAGS = frozenset({"\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"})


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
                Step.GREETING, gettext_noop("The server did not greet like an IMAP server."), permanent=False
            ) from exc
        except OSError as exc:
            raise MailError(
                Step.GREETING,
                gettext_noop("The connection closed before the IMAP greeting."),
                permanent=False,
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
            raise MailError(
                Step.STARTTLS, gettext_noop("The IMAP server does not offer STARTTLS."), permanent=True
            )
        try:
            client.starttls(tls_context(target, verify=verify))
        except ssl.SSLError as exc:
            _quietly(client.shutdown)
            raise self._tls_error(exc, target) from exc
        except (imaplib.IMAP4.error, IMAPClientError) as exc:
            _quietly(client.shutdown)
            raise MailError(
                Step.STARTTLS, gettext_noop("STARTTLS was refused."), permanent=True, server_text=_text(exc)
            ) from exc

    def _fetch_certificate(self, target: Target) -> CertificateInfo | None:
        client = self._connect(target, verify=False)
        _quietly(client.shutdown)
        return self.certificate

    def _login(self, client: _CheckedIMAPClient) -> None:
        """AUTHENTICATE PLAIN (UTF-8, so a Turkish password works) when offered, else LOGIN."""
        login, password = self.config.login, self.config.password.reveal()
        if not client.has_capability("AUTH=PLAIN") and not (login + password).isascii():
            message = gettext_noop("This server takes only plain-ASCII logins and passwords (no AUTH=PLAIN).")
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
                Step.AUTH,
                gettext_noop("The server refused the login."),
                permanent=True,
                server_text=_text(exc),
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
                Step.FOLDERS,
                gettext_noop("The folder list could not be read."),
                permanent=False,
                server_text=_text(exc),
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

    def create(self, name: str, special_use: str = "") -> None:
        """Create a folder and subscribe to it, so other clients show it too; imapclient encodes
        and quotes the name. `special_use` (one of SPECIAL_USE_FLAGS, say "\\Archive") marks it for
        its role where the server can take that (CREATE-SPECIAL-USE, RFC 6154); a server without
        the extension finds it by its name."""
        client = self._client()
        if special_use in SPECIAL_USE_FLAGS and client.has_capability("CREATE-SPECIAL-USE"):
            self._command(f"CREATE {name} USE", partial(self._create_for_use, name, special_use))
        else:
            self._command(f"CREATE {name}", partial(client.create_folder, name))
        with suppress(MailError):  # a folder that cannot be subscribed is still there
            self._command(f"SUBSCRIBE {name}", partial(client.subscribe_folder, name))

    def _create_for_use(self, name: str, special_use: str) -> None:
        client = self._client()
        # The flag is one of our constants; the name is quoted by imapclient.
        typ, data = client._imap._simple_command(
            "CREATE", client._normalise_folder(name), f"(USE ({special_use}))"
        )
        client._checkok("create", typ, data)

    def _command(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one IMAP command; errors become MailError naming it."""
        try:
            return call()
        except (imaplib.IMAP4.abort, OSError, EOFError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc
        except (imaplib.IMAP4.error, IMAPClientError) as exc:
            raise MailError(
                Step.PROTOCOL,
                gettext_noop("%(command)s failed."),
                permanent=False,
                values={"command": what},
                server_text=_text(exc),
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
            raise MailError(
                Step.PROTOCOL, gettext_noop("UID FETCH failed."), permanent=False, server_text=_text(data)
            )
        return _fetched_bodies(data)

    def sizes(self, uids: list[int]) -> dict[int, int]:
        """UID -> RFC822.SIZE, so downloads can be batched by bytes."""
        imap = self._client()._imap
        found: dict[int, int] = {}
        for start in range(0, len(uids), 5000):
            message_set = uid_set(uids[start : start + 5000])
            typ, data = self._command("UID FETCH", partial(imap.uid, "FETCH", message_set, "(RFC822.SIZE)"))
            if typ != "OK":
                raise MailError(
                    Step.PROTOCOL, gettext_noop("UID FETCH failed."), permanent=False, server_text=_text(data)
                )
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
