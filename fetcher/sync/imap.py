"""An IMAP mailbox synced both ways: changes made here pushed first (deletions, moves, sent copies,
flags), then each folder listed, refreshed (flags, expunges, a changed UIDVALIDITY) and fetched."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Mailbox
from fetcher import config, folders, selectors
from fetcher.ingest import storing
from fetcher.mail.imap import Folder as ImapFolder
from fetcher.mail.imap import FolderStatus, ImapSession
from fetcher.mail.net import MailError, Step
from fetcher.models import Folder, FolderRole, ImapDeletion, ImapMessage, MailboxSync, Message
from fetcher.sync import claim

logger = logging.getLogger(__name__)

IMAP_BATCH = 500
FOLDER_LIST_EVERY = timedelta(minutes=30)  # a full listing (subscriptions too) at least this often


def _imap_folders(
    imap: ImapSession, mailbox: Mailbox, known: dict[str, Folder]
) -> tuple[list[tuple[str, str]], dict[str, FolderStatus]]:
    """The folders to sync with their statuses, in one round trip either way.

    Between two full listings (FOLDER_LIST_EVERY, or new settings) the known folders' STATUS is
    asked, pipelined with a plain LIST: servers answer that faster than a LIST-STATUS of every
    folder, and a folder made by another client shows in the next poll. A refused STATUS (a
    folder gone on the server) or a changed folder list falls back to a full listing at once.
    A listing that fails still syncs the folders known here (`_known_folders`).
    """
    engine = mailbox.sync
    listed_at = engine.folders_listed_at
    synced = {name: folder for name, folder in known.items() if folder.synced and not folder.local}
    if synced and listed_at is not None and timezone.now() - listed_at < FOLDER_LIST_EVERY:
        statuses, listed = imap.statuses(sorted(synced), listing=engine.last_error_kind != Step.FOLDERS)
        if statuses is not None and (listed is None or _listing_digest(listed) == engine.folders_digest):
            return [(name, folder.role) for name, folder in sorted(synced.items())], statuses
    try:
        chosen, statuses, listed = _listed_folders(imap, mailbox)
    except MailError as error:
        return _known_folders(imap, mailbox, known, error), {}
    _record_listing(mailbox, known, chosen, listed)
    return chosen, statuses


def _listing_digest(listed: list[ImapFolder]) -> str:
    names = sorted(folder.name for folder in listed if not folders.unselectable(folder))
    return hashlib.sha256("\0".join(names).encode()).hexdigest()


def _record_listing(
    mailbox: Mailbox, known: dict[str, Folder], chosen: list[tuple[str, str]], listed: list[ImapFolder]
) -> None:
    """Mark what is synced now and make rows for new folders (with the server's delimiter)."""
    names = [name for name, _role in chosen]
    delimiter = next((folder.delimiter for folder in listed if folder.delimiter), "")
    ours = Folder.objects.filter(mailbox=mailbox, local=False, pending_create=False)
    if {name for name, folder in known.items() if folder.synced and not folder.local} != set(names):
        ours.exclude(name__in=names).update(synced=False)
        ours.filter(name__in=names, synced=False).update(synced=True)
    for name, role in chosen:
        if name not in known:
            known[name], _created = Folder.objects.get_or_create(
                mailbox=mailbox, name=name, defaults={"role": role, "delimiter": delimiter}
            )
    if any(folder.delimiter != delimiter for name, folder in known.items() if name in names):
        ours.filter(name__in=names).exclude(delimiter=delimiter).update(delimiter=delimiter)
    # The digest sits on the engine's row, which the claim loads anyway: comparing costs no query.
    listed_fields: dict[str, object] = {
        "folders_listed_at": timezone.now(),
        "folders_digest": _listing_digest(listed),
    }
    if mailbox.sync.last_error_kind == Step.FOLDERS:  # the note of a failed listing is over
        listed_fields |= {"last_error_kind": "", "last_error_message": ""}
    MailboxSync.objects.filter(mailbox=mailbox).update(**listed_fields)


def _known_folders(
    imap: ImapSession, mailbox: Mailbox, known: dict[str, Folder], error: MailError
) -> list[tuple[str, str]]:
    """The folder list could not be read (Courier drops the connection on a folder name that is
    not valid UTF-8): sync the folders known here, and INBOX, and leave a note on the mailbox."""
    logger.warning("mailbox %s: the folder list failed, syncing the known folders: %s", mailbox.pk, error)
    note = f"The folder list could not be read ({error}); the folders known here were synced."
    MailboxSync.objects.filter(mailbox=mailbox).update(
        folders_listed_at=timezone.now(),
        last_error_at=timezone.now(),
        last_error_kind=Step.FOLDERS,
        last_error_message=note[:2000],
    )
    imap.reopen()
    if "INBOX" not in known:
        known["INBOX"] = folders.inbox_of(mailbox)
    names = {name for name, folder in known.items() if folder.synced and not folder.local}
    names = {name for name in names if not known[name].pending_create} | {"INBOX"}
    return [(name, known[name].role) for name in sorted(names)]


def _listed_folders(
    imap: ImapSession, mailbox: Mailbox
) -> tuple[list[tuple[str, str]], dict[str, FolderStatus], list[ImapFolder]]:
    """The chosen folders, or every subscribed one; INBOX and the role folders always.

    With LIST-STATUS the statuses come in the same round trip; otherwise they are asked per folder.
    Roles come from SPECIAL-USE flags, else from the folders' names (`fetcher.folders`).
    """
    overview = imap.overview()
    listed, subscribed, statuses = overview if overview else (imap.folders(), None, {})
    namespace = imap.personal_namespace() if not overview else None
    roles = folders.roles(listed, namespace[0] if namespace else "")
    if mailbox.imap_folders:
        wanted = set(mailbox.imap_folders)
    else:
        wanted = subscribed if subscribed is not None else imap.subscribed()
    wanted |= {name for name, role in roles.items() if role != FolderRole.OTHER}
    return [(name, roles[name]) for name in sorted(wanted) if name in roles], statuses, listed


@dataclass(frozen=True)
class _ImapRun:
    token: str
    deadline: float
    dirty_folders: frozenset[int]  # folders holding flags changed here and not yet pushed


def sync_imap(mailbox: Mailbox, token: str, deadline: float) -> claim.SyncResult:
    fetched = 0
    pending = _pending_changes(mailbox)
    run = _ImapRun(token, deadline, frozenset(folder for folder, kind in pending if kind != "deleted"))
    with ImapSession(config.incoming_config(mailbox)) as imap:
        if any(kind == "deleted" for _folder, kind in pending):
            _push_deletions(imap, mailbox)
        if any(kind == "moved" for _folder, kind in pending):
            folders.create_pending(imap, mailbox)  # a Trash or Archive asked for here, before moving into it
            _push_moves(imap, mailbox)
        known = {folder.name: folder for folder in Folder.objects.filter(mailbox=mailbox)}
        if any(folder.local for folder in known.values()) and _push_sent_copies(imap, mailbox):
            known = {folder.name: folder for folder in Folder.objects.filter(mailbox=mailbox)}
        chosen, statuses = _imap_folders(imap, mailbox, known)
        for name, role in chosen:
            folder = known.get(name) or Folder.objects.create(mailbox=mailbox, name=name, role=role)
            if folder.role != role:
                Folder.objects.filter(pk=folder.pk).update(role=role)
            status = statuses.get(name) or imap.status(name)
            count, finished = _sync_imap_folder(imap, mailbox, folder, status, run)
            fetched += count
            if not finished:
                return claim.SyncResult("more", fetched)
    return claim.SyncResult("done", fetched)


def _sync_imap_folder(
    imap: ImapSession, mailbox: Mailbox, folder: Folder, status: FolderStatus, run: _ImapRun
) -> tuple[int, bool]:
    if (
        folder.uidvalidity == status.uidvalidity
        and folder.pk not in run.dirty_folders
        and status.highestmodseq is not None
        and status.highestmodseq == folder.highest_modseq
    ):
        return 0, True  # CONDSTORE says nothing changed: this folder cost one round trip
    # SELECT's UIDVALIDITY is the one that counts: Courier's STATUS of a folder never opened
    # read-write answers with a temporary one.
    uidvalidity = imap.select(folder.name)
    same_validity = folder.uidvalidity == uidvalidity
    if same_validity and folder.pk in run.dirty_folders:
        _push_flags(imap, folder, uidvalidity)  # changes made here go up first; the server's then come down
    if folder.uidvalidity is None:
        Folder.objects.filter(pk=folder.pk).update(uidvalidity=uidvalidity)
        folder.uidvalidity = uidvalidity
        new = imap.uids()
    elif not same_validity:
        new = _imap_remap(imap, mailbox, folder, uidvalidity)
    else:
        server_uids = set(imap.uids())
        known = _remove_expunged(folder=folder, server_uids=server_uids)
        modseq = folder.highest_modseq if imap.condstore else None
        _apply_imap_flags(folder=folder, flags=imap.fetch_flags(sorted(known), modseq))
        new = _drop_known_content(imap, folder, sorted(server_uids - known))
    fetched, finished = _fetch_imap(imap, mailbox, folder, run, new)
    if finished:
        Folder.objects.filter(pk=folder.pk).update(highest_modseq=status.highestmodseq)
    return fetched, finished


# The WHERE of the first half is the predicate of the partial index message_pending_push, so an
# unchanged mailbox is answered from indexes; raw SQL because the ORM spent longer building the
# union than PostgreSQL spent answering it.
_PENDING_CHANGES = """
    SELECT folder_id, CASE WHEN pending_move THEN 'moved' ELSE 'flags' END FROM fetcher_message
    WHERE mailbox_id = %(mailbox)s AND ((NOT (pending_flags = '{}'::jsonb)) OR pending_move)
    UNION
    SELECT deletion.folder_id, 'deleted' FROM fetcher_imapdeletion deletion
    JOIN fetcher_folder folder ON folder.id = deletion.folder_id WHERE folder.mailbox_id = %(mailbox)s
"""


def _pending_changes(mailbox: Mailbox) -> set[tuple[int, str]]:
    """(folder id, "flags" | "moved" | "deleted") for every change made here and not yet pushed."""
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_CHANGES, {"mailbox": mailbox.pk})
        return {(folder_id, kind) for folder_id, kind in cursor.fetchall()}


@dataclass(frozen=True)
class _Known:
    """What we know of a server message: where it was (UIDVALIDITY, UID) and what it is."""

    uidvalidity: int
    uid: int
    message_id: str
    size: int | None  # None: a row from before sizes were kept (then nothing can be compared)


def _is_the_message(known: _Known, found: tuple[str, int] | None) -> bool:
    if found is None:
        return False
    if not known.message_id and known.size is None:
        return True  # nothing to compare it with: the UIDVALIDITY check is all there is
    return found[0] == known.message_id and (known.size is None or found[1] == known.size)


def _server_uids(imap: ImapSession, uidvalidity: int, wanted: list[_Known]) -> list[int | None]:
    """The UID each message has now in the selected folder, or None: a destructive command never
    trusts a stored UID alone (a server's mistake must not delete other mail). A UID whose
    Message-ID or size differs, or one from another UIDVALIDITY, is looked up by Message-ID."""
    current = [known.uid for known in wanted if known.uidvalidity == uidvalidity]
    found = imap.fetch_ids(current) if current else {}
    located: list[int | None] = []
    taken: set[int] = set()
    for known in wanted:
        uid = known.uid if known.uidvalidity == uidvalidity else None
        if uid is None or uid in taken or not _is_the_message(known, found.get(uid)):
            uid = _look_up(imap, known, taken)
        if uid is not None:
            taken.add(uid)
        located.append(uid)
    return located


def _look_up(imap: ImapSession, known: _Known, taken: set[int]) -> int | None:
    if not known.message_id:
        return None
    candidates = [uid for uid in imap.search_message_id(known.message_id) if uid not in taken]
    found = imap.fetch_ids(candidates) if candidates else {}
    return next((uid for uid in candidates if _is_the_message(known, found.get(uid))), None)


def _push_deletions(imap: ImapSession, mailbox: Mailbox) -> None:
    """Delete on the server what was deleted for good here: only what is still the same message."""
    pending = list(ImapDeletion.objects.filter(folder__mailbox=mailbox).select_related("folder"))
    for folder in {row.folder for row in pending}:
        rows = [row for row in pending if row.folder == folder]
        uidvalidity = imap.select(folder.name)
        wanted = [_Known(row.uidvalidity, row.uid, row.message_id, row.size) for row in rows]
        uids = sorted({uid for uid in _server_uids(imap, uidvalidity, wanted) if uid is not None})
        if uids:
            imap.delete(uids, uidvalidity=uidvalidity)
        ImapDeletion.objects.filter(pk__in=[row.pk for row in rows]).delete()


def _push_moves(imap: ImapSession, mailbox: Mailbox) -> None:
    """Move on the server what was moved here: a message whose folder differs from its server location."""
    moved = ImapMessage.objects.filter(folder__mailbox=mailbox, message__pending_move=True).select_related(
        "folder", "message__folder"
    )
    groups: dict[tuple[Folder, Folder], list[ImapMessage]] = {}
    for row in moved:
        if row.uidvalidity == row.folder.uidvalidity:  # else the folder's remap finds it first
            groups.setdefault((row.folder, row.message.folder), []).append(row)
    for (source, target), rows in groups.items():
        uidvalidity = imap.select(source.name)
        if uidvalidity != source.uidvalidity:
            continue  # the source's UIDs name other messages now: its sync re-matches them, then we move
        wanted = [_Known(row.uidvalidity, row.uid, row.message.message_id, row.message.size) for row in rows]
        located = _server_uids(imap, uidvalidity, wanted)
        here = {uid: row for row, uid in zip(rows, located, strict=True) if uid is not None}
        if here:
            new_uids = imap.move(sorted(here), target.name, uidvalidity=uidvalidity)
            _record_moves(here, target, new_uids)


def _record_moves(rows: dict[int, ImapMessage], target: Folder, new_uids: dict[int, tuple[int, int]]) -> None:
    """Point each row (by its UID on the server) at its new place. Without COPYUID the row waits in
    the target as an orphan (UIDVALIDITY 0), matched by content when the target is next read.

    A COPYUID that names a UID already stored in the target means our view of the target is
    stale (temporary UIDs, a server's mistake): the row waits as an orphan, and the target is
    read again as after a UIDVALIDITY change, matching its messages by content, not downloading.
    """
    for old_uid, row in rows.items():
        uidvalidity, uid = new_uids.get(old_uid, (0, -row.pk))
        with transaction.atomic():
            taken = ImapMessage.objects.filter(folder=target, uidvalidity=uidvalidity, uid=uid).exclude(
                pk=row.pk
            )
            if uidvalidity and taken.exists():
                uidvalidity, uid = 0, -row.pk
                Folder.objects.filter(pk=target.pk).update(uidvalidity=0, highest_modseq=None)
            ImapMessage.objects.filter(pk=row.pk).update(folder=target, uidvalidity=uidvalidity, uid=uid)
            # Moved again meanwhile? Then its folder differs from this target and the marker stays.
            Message.objects.filter(pk=row.message.pk, folder=target).update(pending_move=False)


def _push_sent_copies(imap: ImapSession, mailbox: Mailbox) -> bool:
    """Append to the server's Sent the copies kept here because it could not take them at sending
    time. Each then lives in that folder as if fetched from it (by APPENDUID, else as an orphan that
    is matched by content when the folder is read), so the sync does not bring it back twice."""
    copies = list(Message.objects.filter(mailbox=mailbox, pending_append=True).only("id", "message_id"))
    if not copies:
        return False
    try:
        sent = folders.server_folder(imap, mailbox, FolderRole.SENT)
        imap.select(sent.name)
        for copy in copies:
            # Appended already by a sync that died before it could record it? Then that copy is the one.
            there = imap.uids_with_message_id(copy.message_id) if copy.message_id else []
            placed = (int(sent.uidvalidity or 0), there[0]) if there else None
            placed = placed or imap.append(sent.name, selectors.raw_of(copy), flags=["\\Seen"])
            _adopt_sent_copy(sent, copy, placed)
    except MailError as error:  # refused (a full mailbox...): the copies wait here; the mail still comes in
        logger.warning("mailbox %s: sent copies not appended yet: %s", mailbox.pk, error)
        return True
    Folder.objects.filter(mailbox=mailbox, local=True, role=FolderRole.SENT, messages__isnull=True).delete()
    return True


def _adopt_sent_copy(sent: Folder, copy: Message, placed: tuple[int, int] | None) -> None:
    uidvalidity, uid = placed if placed and placed[0] == sent.uidvalidity else (0, -copy.pk)
    with transaction.atomic():
        ImapMessage.objects.create(folder=sent, uidvalidity=uidvalidity, uid=uid, message=copy)
        Message.objects.filter(pk=copy.pk).update(folder=sent, pending_append=False)


def _apply_imap_flags(*, folder: Folder, flags: dict[int, tuple[str, ...]]) -> int:
    """The server's flags win, except over a local change not pushed yet; returns how many changed."""
    rows = ImapMessage.objects.filter(
        folder=folder, uidvalidity=int(folder.uidvalidity or 0), uid__in=list(flags)
    )
    changed = []
    for row in rows.select_related("message").only(
        "uid",
        "message__id",
        "message__seen",
        "message__flagged",
        "message__answered",
        "message__pending_flags",
    ):
        pending = row.message.pending_flags or {}
        wanted = {
            name: value for name, value in storing.flag_fields(flags[row.uid]).items() if name not in pending
        }
        if any(getattr(row.message, name) != value for name, value in wanted.items()):
            for name, value in wanted.items():
                setattr(row.message, name, value)
            changed.append(row.message)
    Message.objects.bulk_update(changed, list(storing.IMAP_FLAGS))
    return len(changed)


def _remove_expunged(*, folder: Folder, server_uids: set[int]) -> set[int]:
    """Messages expunged on the server disappear here too; returns the UIDs still known here.

    Only rows from earlier fetches are compared, and each of those was on the server then.
    """
    rows = ImapMessage.objects.filter(folder=folder, uidvalidity=int(folder.uidvalidity or 0))
    known = dict(rows.values_list("uid", "message_id"))
    gone = [message_id for uid, message_id in known.items() if uid not in server_uids]
    if gone:
        Message.objects.filter(id__in=gone).delete()
    return {uid for uid in known if uid in server_uids}


def _push_flags(imap: ImapSession, folder: Folder, uidvalidity: int) -> int:
    """Send flags changed in Postane to the (selected) folder: for a flag changed here, the local value wins.

    Only the flags that changed here are stored, so another client's change to a different
    flag survives and comes back with the refresh that follows. A message changed again while
    the push ran keeps its pending flags: only rows still holding what was pushed are cleared.
    """
    rows = list(
        ImapMessage.objects.filter(folder=folder, uidvalidity=uidvalidity)
        .exclude(message__pending_flags={})
        .select_related("message")
        .only("uid", "message__id", "message__pending_flags")
    )
    if not rows:
        return 0
    for field, flag in storing.IMAP_FLAGS.items():
        for add in (True, False):
            uids = [row.uid for row in rows if row.message.pending_flags.get(field) is add]
            if uids:
                imap.store_flags(uids, flag, add=add, uidvalidity=uidvalidity)
    for row in rows:
        Message.objects.filter(id=row.message.id, pending_flags=row.message.pending_flags).update(
            pending_flags={}
        )
    return len(rows)


def _fetch_imap(
    imap: ImapSession, mailbox: Mailbox, folder: Folder, run: _ImapRun, new: list[int]
) -> tuple[int, bool]:
    token, deadline = run.token, run.deadline
    uidvalidity = int(folder.uidvalidity or 0)
    claim.renew(mailbox.id, token, sync_done=0, sync_total=len(new))
    sizes = imap.sizes(new) if new else {}
    done = 0
    with storing.overlapped_writes() as writer:
        for uids in storing.batches(new, lambda uid: sizes.get(uid, 0), IMAP_BATCH):
            if time.monotonic() > deadline:
                return writer.total(), False
            batch = imap.fetch_messages(uids)
            store = partial(storing.store_imap_batch, mailbox=mailbox, folder=folder, uidvalidity=uidvalidity)
            writer.submit(partial(store, batch=batch))
            done += len(batch)
            claim.renew(mailbox.id, token, sync_done=done)
    return writer.total(), True


def _imap_remap(imap: ImapSession, mailbox: Mailbox, folder: Folder, uidvalidity: int) -> list[int]:
    """UIDVALIDITY changed: keep every stored message, re-point the ones the server still has.

    Known messages are matched by Message-ID and size without downloading them; what is left
    is downloaded, and a download whose content hash equals a stored message re-points it
    too. Returns the UIDs still to fetch. Stored messages the server no longer has are kept.
    """
    server = imap.fetch_ids(imap.uids())
    stored = list(
        ImapMessage.objects.filter(folder=folder)
        .select_related("message")
        .only("id", "message__message_id", "message__size", "message__sha256")
    )
    by_key = {(row.message.message_id, row.message.size): row for row in stored if row.message.message_id}
    remapped, to_fetch = [], []
    for uid, key in sorted(server.items()):
        row = by_key.pop(key, None) if key[0] else None
        if row is None:
            to_fetch.append(uid)
        else:
            row.uidvalidity, row.uid = uidvalidity, -uid  # negative first: the swap must not collide
            remapped.append(row)
    with transaction.atomic():
        ImapMessage.objects.filter(folder=folder).exclude(pk__in=[row.pk for row in remapped]).update(
            uidvalidity=0
        )
        ImapMessage.objects.bulk_update(remapped, ["uidvalidity", "uid"])
        for row in remapped:
            row.uid = -row.uid
        ImapMessage.objects.bulk_update(remapped, ["uid"])
        Folder.objects.filter(pk=folder.pk).update(
            uidvalidity=uidvalidity, highest_uid=0, highest_modseq=None
        )
    folder.uidvalidity, folder.highest_uid = uidvalidity, 0
    return _drop_known_content(imap, folder, to_fetch)


def _drop_known_content(imap: ImapSession, folder: Folder, uids: list[int]) -> list[int]:
    """Of messages not matched by Message-ID, re-point those whose bytes are already stored."""
    orphans = {
        row.message.sha256: row
        for row in ImapMessage.objects.filter(folder=folder, uidvalidity=0).select_related("message")
    }
    if not orphans or not uids:
        return uids
    remaining = []
    for start in range(0, len(uids), IMAP_BATCH):
        for uid, (raw, _flags) in imap.fetch_messages(uids[start : start + IMAP_BATCH]).items():
            row = orphans.pop(hashlib.sha256(raw).hexdigest(), None)
            if row is None:
                remaining.append(uid)
            else:
                ImapMessage.objects.filter(pk=row.pk).update(uidvalidity=folder.uidvalidity, uid=uid)
    return sorted(remaining)
