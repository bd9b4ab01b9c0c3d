"""Folders' roles (Sent, Drafts, Trash, Junk, Archive), and the one place a mailbox's folder for a
role is found or made: the inbox, a POP3 mailbox's own folders, Postane's local ones, the server's.

A role comes from the server's SPECIAL-USE flag (RFC 6154) when it gives one, else from the names
people and servers use, in English and Turkish, with or without a namespace prefix such as
Courier's `INBOX.`. One folder per role: a flag beats a name, and a better name beats a worse one.
Where a mailbox has no folder for a role, one is created on the server when it is first needed,
under the personal namespace (NAMESPACE, RFC 2342).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from accounts.models import Mailbox, Protocol
from fetcher.mail.imap import Folder as ImapFolder
from fetcher.mail.imap import ImapSession
from fetcher.mail.net import MailError
from fetcher.mail.search import fold
from fetcher.models import Folder, FolderRole, ImapMessage, Message

logger = logging.getLogger(__name__)

SPECIAL_USE = {
    "\\sent": FolderRole.SENT,
    "\\drafts": FolderRole.DRAFTS,
    "\\trash": FolderRole.TRASH,
    "\\junk": FolderRole.JUNK,
    "\\archive": FolderRole.ARCHIVE,
}
UNSELECTABLE = {"\\noselect", "\\nonexistent"}

# Best name first. Compared folded (Turkish lower case, then ç ğ ı ö ş ü as c g i o s u), so "SENT ITEMS",
# "Sent items" and "sent ıtems" are one name, and so are "Çöp Kutusu" and "Cop Kutusu".
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    FolderRole.SENT: (
        "Sent",
        "Sent Items",
        "Sent Messages",
        "Sent Mail",
        "Gönderilmiş Öğeler",
        "Gönderilenler",
    ),
    FolderRole.DRAFTS: ("Drafts", "Draft", "Taslaklar"),
    FolderRole.TRASH: (
        "Trash",
        "Deleted Items",
        "Deleted Messages",
        "Deleted",
        "Çöp Kutusu",
        "Silinmiş Öğeler",
    ),
    FolderRole.JUNK: ("Junk", "Spam", "Junk E-mail", "Junk Email", "Önemsiz", "İstenmeyen"),
    FolderRole.ARCHIVE: ("Archive", "Archives", "Arşiv"),
}
_RANKS = {fold(name): (role, rank) for role, names in ROLE_NAMES.items() for rank, name in enumerate(names)}
# The name a folder gets when Postane creates it for a role (what other clients recognise too).
CREATED_NAMES = {role: names[0] for role, names in ROLE_NAMES.items()}


def unselectable(folder: ImapFolder) -> bool:
    return bool({flag.lower() for flag in folder.flags} & UNSELECTABLE)


def relative_name(name: str, delimiter: str, prefix: str = "") -> str:
    """The name without the personal namespace prefix: "INBOX.Work.2024" -> "Work.2024".

    Without a known prefix, "INBOX" and the delimiter count as one (Courier, cPanel).
    """
    for start in (prefix, f"INBOX{delimiter}" if delimiter else ""):
        if start and name.upper().startswith(start.upper()) and len(name) > len(start):
            return name[len(start) :]
    return name


def _name_rank(folder: ImapFolder, prefix: str) -> tuple[str, int] | None:
    """(role, rank) for a top-level folder carrying a role's name."""
    relative = relative_name(folder.name, folder.delimiter, prefix)
    if folder.delimiter and folder.delimiter in relative:
        return None  # a subfolder ("Work.Sent") is the user's own
    return _RANKS.get(fold(relative.strip()))


def roles(folders: Iterable[ImapFolder], prefix: str = "") -> dict[str, str]:
    """Folder name -> role for every selectable folder (FolderRole.OTHER for most)."""
    candidates: dict[str, list[tuple[int, str]]] = {}
    found: dict[str, str] = {}
    for folder in folders:
        if unselectable(folder):
            continue
        found[folder.name] = FolderRole.OTHER
        if folder.name.upper() == "INBOX":
            found[folder.name] = FolderRole.INBOX
            continue
        flags = {flag.lower() for flag in folder.flags}
        flagged = next((role for flag, role in SPECIAL_USE.items() if flag in flags), None)
        named = _name_rank(folder, prefix)
        if flagged is not None:
            candidates.setdefault(flagged, []).append((-1, folder.name))
        elif named is not None:
            candidates.setdefault(named[0], []).append((named[1], folder.name))
    for role, ranked in candidates.items():
        found[min(ranked, key=lambda item: (item[0], len(item[1]), item[1]))[1]] = role
    return found


# --- the worker's side: a role's folder, found or made on the server -----------------------------------


def server_folder(imap: ImapSession, mailbox: Mailbox, role: str) -> Folder:
    """The mailbox's folder for this role, as the server has it: the known one, else one found by
    listing the folders, else one created now. Raises MailError when the server refuses.

    Its UIDVALIDITY is known when this returns, so what Postane puts there (a moved message
    re-pointed by COPYUID, an appended copy) is not taken for new mail when the folder is read.
    """
    known = Folder.objects.filter(mailbox=mailbox, role=role, local=False, pending_create=False)
    folder = known.order_by("id").first() or _found_or_made(imap, mailbox, role)
    if folder.uidvalidity is None:
        folder.uidvalidity = imap.status(folder.name).uidvalidity
        Folder.objects.filter(pk=folder.pk).update(uidvalidity=folder.uidvalidity)
    return folder


def _found_or_made(imap: ImapSession, mailbox: Mailbox, role: str) -> Folder:
    overview = imap.overview()  # RETURN (SPECIAL-USE): some servers flag roles only when asked so
    listed = overview[0] if overview else imap.folders()
    namespace = imap.personal_namespace()
    prefix = namespace[0] if namespace else ""
    name = next((name for name, found in roles(listed, prefix).items() if found == role), None)
    delimiter = next((f.delimiter for f in listed if f.delimiter), namespace[1] if namespace else "")
    if name is None:
        name = prefix + CREATED_NAMES[role]
        _create(imap, name, role, listed)
    return _recorded(mailbox, name, role, delimiter)


_FLAGS: dict[str, str] = {
    role: flag.title() for flag, role in SPECIAL_USE.items()
}  # "\\archive" -> "\\Archive"


def _create(imap: ImapSession, name: str, role: str, listed: list[ImapFolder]) -> None:
    if any(folder.name == name for folder in listed):
        return  # there, but not usable for its role before (say a subfolder of that name): use it
    logger.info("creating the folder %r on the server", name)
    imap.create(name, special_use=_FLAGS.get(role, ""))


def _recorded(mailbox: Mailbox, name: str, role: str, delimiter: str) -> Folder:
    """The Folder row for a role folder now on the server (one per role: a pending one becomes it)."""
    Folder.objects.filter(mailbox=mailbox, role=role, local=False).exclude(name=name).update(
        role=FolderRole.OTHER
    )
    folder, created = Folder.objects.get_or_create(
        mailbox=mailbox, name=name, defaults={"role": role, "delimiter": delimiter, "synced": True}
    )
    if not created and (folder.role != role or not folder.synced or folder.pending_create):
        Folder.objects.filter(pk=folder.pk).update(role=role, synced=True, pending_create=False)
        folder.role, folder.synced, folder.pending_create = role, True, False
    return folder


def create_pending(imap: ImapSession, mailbox: Mailbox) -> None:
    """Make on the server the role folders asked for here (Trash on a delete, Archive on an archive)
    before anything is moved into them; the row takes the server's name (`INBOX.Trash`)."""
    for pending in Folder.objects.filter(mailbox=mailbox, pending_create=True):
        try:
            found = server_folder(imap, mailbox, pending.role)
        except MailError as error:
            # Moving into a folder the server does not have would fail every sync: the messages go
            # back where the server keeps them (nothing is lost; the person can try again).
            logger.warning("mailbox %s: no %s folder on the server (%s)", mailbox.pk, pending.role, error)
            _undo_moves_into(pending)
            continue
        if found.pk != pending.pk:  # the server had (or now has) it under its own name
            pending.messages.update(folder=found)
            pending.delete()


def _undo_moves_into(pending: Folder) -> None:
    for row in ImapMessage.objects.filter(message__folder=pending).only("folder_id", "message_id"):
        Message.objects.filter(pk=row.message_id).update(folder_id=row.folder_id, pending_move=False)


# --- a mailbox's folder for a role, as stored: no server is asked -------------------------------------


def inbox_of(mailbox: Mailbox) -> Folder:
    folder, _created = Folder.objects.get_or_create(
        mailbox=mailbox, name="INBOX", defaults={"role": FolderRole.INBOX}
    )
    return folder


def role_folder(mailbox: Mailbox, role: str) -> Folder:
    """The mailbox's Trash, Archive...: a local one for POP3; for IMAP the server's (by its SPECIAL-USE
    flag or its name). An IMAP server without one gets it when the next sync pushes the move
    (`create_pending`): the web process never talks to a mail server."""
    if mailbox.protocol == Protocol.IMAP:
        return wanted_locally(mailbox, role)
    return pop3_folder(mailbox, role)


def wanted_locally(mailbox: Mailbox, role: str) -> Folder:
    """For the web process, which never talks to a server: the role's folder, or a row for one the
    next sync creates on the server (`create_pending`)."""
    folder = Folder.objects.filter(mailbox=mailbox, role=role, synced=True).order_by("id").first()
    if folder is not None:
        return folder
    folder, _created = Folder.objects.get_or_create(
        mailbox=mailbox,
        name=CREATED_NAMES[role],
        defaults={"role": role, "pending_create": True, "synced": True},
    )
    return folder


def pop3_folder(mailbox: Mailbox, role: str) -> Folder:
    """A POP3 mailbox's own Sent, Trash...: POP3 servers have only an inbox."""
    folder, _created = Folder.objects.get_or_create(
        mailbox=mailbox,
        role=role,
        defaults={"name": str(role).capitalize()},  # shown by its role
    )
    return folder


def local_folder(mailbox: Mailbox, role: str) -> Folder:
    """A folder of Postane's own in an IMAP mailbox, for what the server cannot hold yet (a sent
    copy while the server is unreachable: the next sync moves it to the server's Sent)."""
    folder, _created = Folder.objects.get_or_create(
        mailbox=mailbox,
        role=role,
        local=True,
        defaults={"name": f"{str(role).capitalize()} (Postane)", "synced": False},
    )
    return folder


# --- showing folders: a tree without the namespace prefix ---------------------------------------------

_SHOWN_FIRST = [
    *(FolderRole.INBOX, FolderRole.SENT, FolderRole.DRAFTS),
    *(FolderRole.ARCHIVE, FolderRole.JUNK, FolderRole.TRASH),
]


@dataclass(frozen=True)
class Shown:
    """One line of a mailbox's folder tree: a folder, or a level of the hierarchy with no folder here."""

    folder: Folder | None
    label: str
    depth: int
    path: str  # "Work › 2024", for a list without indentation (the move menu)


def tree(mailbox_folders: Sequence[Folder]) -> list[Shown]:
    """INBOX and the role folders first, by their translated role names; then the others as a tree
    on the server's delimiter ("INBOX.Work.2024" is Work › 2024), without the namespace prefix."""
    roles = [f for f in mailbox_folders if f.role != FolderRole.OTHER and not f.local]
    roles.sort(key=lambda folder: _SHOWN_FIRST.index(FolderRole(folder.role)))
    shown = [Shown(f, str(f.get_role_display()), 0, str(f.get_role_display())) for f in roles]
    others = {_parts(f): f for f in mailbox_folders if f not in roles}
    seen: set[tuple[str, ...]] = set()
    for parts in sorted(others, key=lambda parts: [(fold(part), part) for part in parts]):
        for depth in range(len(parts)):
            level = parts[: depth + 1]
            if level not in seen:
                seen.add(level)
                shown.append(Shown(others.get(level), level[-1], depth, " › ".join(level)))
    return shown


def _parts(folder: Folder) -> tuple[str, ...]:
    if folder.local or not folder.delimiter:
        return (folder.name,)
    relative = relative_name(folder.name, folder.delimiter)
    return tuple(part for part in relative.split(folder.delimiter) if part) or (folder.name,)
