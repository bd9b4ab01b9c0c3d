"""Syncing a mailbox: claim it, fetch what is new, record health, schedule the next run.

One sync per mailbox at a time, whatever the number of workers: a sync first claims the
mailbox with a compare-and-set on a lease (`MailboxSync.sync_lease_until`), which runs out by
itself if its worker dies. Network I/O never happens inside a transaction; each batch of messages is
committed on its own, and a message is deleted on a POP3 server only after its row is
committed and only if the mailbox's policy says so.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BinaryField, F, Func, Q, Value
from django.utils import timezone

from accounts.crypto import EncryptionKeyError
from accounts.models import Mailbox, Protocol, Retention
from fetcher import config, folders, leases, selectors, upkeep
from fetcher.ingest import storing
from fetcher.mail import header_scan
from fetcher.mail.imap import Folder as ImapFolder
from fetcher.mail.imap import FolderStatus, ImapSession
from fetcher.mail.net import MailError, Step
from fetcher.mail.pop3 import Pop3Session
from fetcher.models import (
    Folder,
    FolderRole,
    ImapDeletion,
    ImapMessage,
    MailboxState,
    MailboxSync,
    Message,
    Pop3Ledger,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
BATCH_BYTES = 32 * 1024 * 1024  # a batch of large messages stops here (one message at least)
MAX_BACKOFF = timedelta(hours=6)
PAUSE_AFTER_AUTH_FAILURES = 3


@dataclass(frozen=True)
class SyncResult:
    status: str  # done, busy, more (budget used up: continue in a new task), failed, lost (taken over)
    fetched: int = 0
    deleted: int = 0


# --- the claim ------------------------------------------------------------------------------------

# The claim also makes the mailbox due at once: should its holder die, the dispatcher's first pass
# after the lease lapsed picks it up again (docs/architecture.md, "Claim"). The mailbox row is
# read FOR SHARE, so a disable being committed meanwhile is waited for and seen, as when the
# lease lived on that row; the engine's row comes back under aliases the claim takes apart.
_SYNC_FIELDS = MailboxSync._meta.concrete_fields
_SYNC_COLUMNS = ", ".join(f'sync.{field.column} AS "sync.{field.column}"' for field in _SYNC_FIELDS)
_CLAIM = (
    "WITH mailbox AS (SELECT * FROM accounts_mailbox WHERE id = %s AND enabled FOR SHARE)"  # noqa: S608 -- constant SQL
    " UPDATE fetcher_mailboxsync sync"
    " SET sync_lease_until = %s, sync_lease_token = %s, state = %s, next_sync_at = %s"
    " FROM mailbox WHERE sync.mailbox_id = mailbox.id AND NOT sync.paused"
    " AND (sync.sync_lease_until IS NULL OR sync.sync_lease_until < %s)"
    f" RETURNING mailbox.*, {_SYNC_COLUMNS}"
)


def mailbox_claim(mailbox_id: uuid.UUID | str) -> tuple[str, Mailbox] | None:
    """Compare-and-set: the caller owns the mailbox until the lease runs out, or gets None.

    One statement claims and loads the mailbox with its MailboxSync (an unchanged poll is a
    handful of round trips).
    """
    now = timezone.now()
    token = secrets.token_hex(16)
    values = [str(mailbox_id), leases.lease_end(), token, MailboxState.SYNCING, now, now]
    mailbox = next(iter(Mailbox.objects.raw(_CLAIM, values)), None)
    if mailbox is None:
        return None
    row = [vars(mailbox).pop(f"sync.{field.column}") for field in _SYNC_FIELDS]
    mailbox.sync = MailboxSync.from_db(connection.alias, [field.attname for field in _SYNC_FIELDS], row)
    return token, mailbox


def _renew(mailbox_id: uuid.UUID | str, token: str, **fields: object) -> None:
    """Progress, written only while the claim is still ours (else another holder has taken over)."""
    if not _holding(mailbox_id, token, **fields):
        raise leases.LeaseLostError(f"mailbox {mailbox_id}")


def _holding(mailbox_id: uuid.UUID | str, token: str, **fields: object) -> bool:
    renewed = MailboxSync.objects.filter(mailbox_id=mailbox_id, sync_lease_token=token).update(
        sync_lease_until=leases.lease_end(), **fields
    )
    return bool(renewed)


def _release(mailbox_id: uuid.UUID | str, token: str, **fields: object) -> None:
    MailboxSync.objects.filter(mailbox_id=mailbox_id, sync_lease_token=token).update(
        sync_lease_until=None, sync_lease_token="", **fields
    )


def _next_run(mailbox: Mailbox, failures: int = 0) -> datetime:
    """The poll interval plus jitter; after failures, exponential backoff with a cap."""
    interval = timedelta(minutes=max(mailbox.poll_interval_minutes, settings.WEBMAIL_MIN_POLL_MINUTES))
    if failures:
        interval = min(interval * 2 ** (failures - 1), MAX_BACKOFF)
    jitter = interval.total_seconds() * random.uniform(0, 0.1)  # noqa: S311 -- spreading load, not security
    return timezone.now() + interval + timedelta(seconds=jitter)


# --- one sync ----------------------------------------------------------------------------------------


def sync_mailbox(*, mailbox_id: uuid.UUID | str, budget_seconds: float) -> SyncResult:
    claim = mailbox_claim(mailbox_id)
    if claim is None:
        return SyncResult("busy")
    token, mailbox = claim
    deadline = time.monotonic() + budget_seconds
    run = _sync_pop3 if mailbox.protocol == Protocol.POP3 else _sync_imap
    try:
        with leases.LeaseKeeper(partial(_holding, mailbox.id, token), f"mailbox {mailbox.id}"):
            result = run(mailbox, token, deadline)
    except (MailError, EncryptionKeyError) as error:
        _record_failure(mailbox, token, error)
        return SyncResult("failed")
    except leases.LeaseLostError:
        logger.warning("mailbox %s: stopped, another worker holds it now", mailbox.id)
        return SyncResult("lost")
    except Exception as error:  # a bug or a time limit: recorded and retried with backoff like any failure
        logger.exception("mailbox %s: the sync failed unexpectedly", mailbox.id)
        _record_failure(mailbox, token, UnexpectedSyncError(error))
        return SyncResult("failed")
    except BaseException:
        # The worker is shutting down: let the lease go so that the next worker starts at once.
        _release(mailbox.id, token, state=MailboxState.IDLE, next_sync_at=timezone.now())
        raise
    _record_success(mailbox, token, result)
    if result.fetched >= upkeep.CHANGED_ROWS:
        # A large first sync: plan the first pages on real figures. Forced, because the activity
        # counters that tell stale tables reach PostgreSQL's statistics a little after the commit.
        upkeep.statistics_refresh(force=True)
    return result


class UnexpectedSyncError(Exception):
    """What the mailbox records about an exception no step expected (the log has the traceback)."""

    kind = "internal"

    def __init__(self, error: Exception) -> None:
        name = error.__class__.__name__
        super().__init__(f"The sync stopped on an unexpected error ({name}); it will be tried again.")


def _record_success(mailbox: Mailbox, token: str, result: SyncResult) -> None:
    fields: dict[str, object] = {"state": MailboxState.IDLE, "consecutive_failures": 0}
    if result.status == "done":
        fields |= {"last_success_at": timezone.now(), "next_sync_at": _next_run(mailbox)}
    else:  # the budget ran out: the task queues a continuation at once
        fields |= {"next_sync_at": timezone.now()}
    _release(mailbox.id, token, **fields)
    logger.info(
        "mailbox %s: %s, %d fetched, %d deleted", mailbox.id, result.status, result.fetched, result.deleted
    )


def _record_failure(
    mailbox: Mailbox, token: str, error: MailError | EncryptionKeyError | UnexpectedSyncError
) -> None:
    failures = mailbox.sync.consecutive_failures + 1
    kind = _failure_kind(error)
    pause = kind == Step.AUTH and failures >= PAUSE_AFTER_AUTH_FAILURES
    _release(
        mailbox.id,
        token,
        state=MailboxState.ERROR,
        consecutive_failures=failures,
        paused=pause,
        last_error_at=timezone.now(),
        last_error_kind=kind,
        last_error_message=str(error)[:2000],
        next_sync_at=_next_run(mailbox, failures),
    )
    logger.warning("mailbox %s: sync failed at %s: %s", mailbox.id, kind, error)


def _failure_kind(error: MailError | EncryptionKeyError | UnexpectedSyncError) -> str:
    if isinstance(error, MailError):
        return str(error.step)
    return UnexpectedSyncError.kind if isinstance(error, UnexpectedSyncError) else "key"


# --- POP3 ----------------------------------------------------------------------------------------------


def _sync_pop3(mailbox: Mailbox, token: str, deadline: float) -> SyncResult:
    with Pop3Session(config.incoming_config(mailbox)) as pop:
        listing = _pop3_listing(pop)
        known = set(Pop3Ledger.objects.filter(mailbox=mailbox).values_list("uid", flat=True))
        new = _recognise_restored(pop, mailbox, listing, [(n, uid) for n, uid in listing if uid not in known])
        _renew(mailbox.id, token, sync_done=0, sync_total=len(new))
        fetched, finished = _fetch_pop3(pop, mailbox, token, new, deadline)
        to_delete = _pop3_deletions(pop, mailbox, listing) if finished else []
    if to_delete and pop.quit_ok:  # the server applies DELE only at a clean QUIT
        Pop3Ledger.objects.filter(mailbox=mailbox, uid__in=to_delete).update(
            deleted_on_server_at=timezone.now()
        )
    return SyncResult("done" if finished else "more", fetched, len(to_delete) if pop.quit_ok else 0)


def _pop3_listing(pop: Pop3Session) -> list[tuple[int, str]]:
    try:
        return pop.uidl()
    except MailError as error:
        if error.step is not Step.UIDL:
            raise
    # No UIDL: a fingerprint of the header block identifies a message instead (docs/architecture.md).
    count, _size = pop.stat()
    return [(number, header_scan.fingerprint(pop.top_headers(number))) for number in range(1, count + 1)]


def _recognise_restored(
    pop: Pop3Session, mailbox: Mailbox, listing: list[tuple[int, str]], new: list[tuple[int, str]]
) -> list[tuple[int, str]]:
    """New UIDLs that are stored messages under a new name (a restored mailbox, a rebuilt UIDL
    list) take over their ledger rows instead of being downloaded again. Each new message is
    matched by its header block (TOP n 0) against the ledger rows whose UIDL vanished from the
    server in this listing, one to one, so two genuinely separate identical deliveries are both
    kept. The vanished rows left over are gone from the server, and marked so."""
    if not new:  # an unchanged poll: not even the query below is built (its IN list is the whole mailbox)
        return new
    listed = {uid for _number, uid in listing}
    vanished = Pop3Ledger.objects.filter(mailbox=mailbox, deleted_on_server_at__isnull=True).exclude(
        uid__in=listed
    )
    if not vanished.exists():
        return new
    by_header: dict[str, list[int]] = {}
    head = Func(
        F("message__raw"),
        Value(1),
        Value(header_scan.SCAN_LIMIT),
        function="substring",
        output_field=BinaryField(),
    )
    for pk, block in vanished.filter(message__isnull=False).annotate(head=head).values_list("pk", "head"):
        by_header.setdefault(header_scan.fingerprint(bytes(block)), []).append(pk)
    remaining = []
    for number, uid in new:
        rows = by_header.get(header_scan.fingerprint(pop.top_headers(number))) if by_header else None
        if rows:
            Pop3Ledger.objects.filter(pk=rows.pop()).update(uid=uid)
        else:
            remaining.append((number, uid))
    vanished.update(deleted_on_server_at=timezone.now())  # re-pointed rows are listed now: not these
    return remaining


def _fetch_pop3(
    pop: Pop3Session, mailbox: Mailbox, token: str, new: list[tuple[int, str]], deadline: float
) -> tuple[int, bool]:
    folder = folders.inbox_of(mailbox)
    sizes = pop.sizes() if new else {}
    done = 0
    with storing.overlapped_writes() as writer:
        for chunk in batches(new, lambda item: sizes.get(item[0], 0), BATCH_SIZE):
            if time.monotonic() > deadline:
                return writer.total(), False
            raws = pop.retr_many([number for number, _uid in chunk])
            batch = [storing.Fetched(uid, raw) for (_number, uid), raw in zip(chunk, raws, strict=True)]
            del raws
            writer.submit(partial(storing.store_pop3_batch, mailbox=mailbox, folder=folder, batch=batch))
            done += len(batch)
            _renew(mailbox.id, token, sync_done=done)
    return writer.total(), True


def batches[T](items: list[T], size_of: Callable[[T], int], count: int) -> Iterator[list[T]]:
    """Consecutive batches of at most `count` items and BATCH_BYTES bytes (but one item at least)."""
    batch: list[T] = []
    total = 0
    for item in items:
        size = size_of(item)
        if batch and (len(batch) >= count or total + size > BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += size
    if batch:
        yield batch


def _pop3_deletions(pop: Pop3Session, mailbox: Mailbox, listing: list[tuple[int, str]]) -> list[str]:
    """DELE what the policy (or a delete made here) allows, each only if this session's number
    still carries the same UIDL."""
    if mailbox.pop3_retention == Retention.KEEP and not mailbox.pop3_delete_with_local:
        return []
    pending = Pop3Ledger.objects.filter(mailbox=mailbox, deleted_on_server_at__isnull=True)
    eligible = pending.filter(delete_requested=True)
    if mailbox.pop3_retention == Retention.DELETE:
        eligible = pending
    elif mailbox.pop3_retention == Retention.DELETE_AFTER_DAYS:
        cutoff = timezone.now() - timedelta(days=mailbox.pop3_retention_days or 0)
        eligible = pending.filter(Q(first_seen_at__lte=cutoff) | Q(delete_requested=True))
    committed = set(eligible.values_list("uid", flat=True))
    deleted = []
    for number, uid in listing:
        if uid in committed and (uid.startswith("fp:") or pop.uid_of(number) == uid):
            pop.dele(number)
            deleted.append(uid)
    return deleted


# --- IMAP ---------------------------------------------------------------------------------------------

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


def _sync_imap(mailbox: Mailbox, token: str, deadline: float) -> SyncResult:
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
                return SyncResult("more", fetched)
    return SyncResult("done", fetched)


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
    Message.objects.bulk_update(changed, ["seen", "flagged", "answered"])
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


_PUSHED_FLAGS = {"seen": "\\Seen", "flagged": "\\Flagged", "answered": "\\Answered"}


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
    for field, flag in _PUSHED_FLAGS.items():
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
    _renew(mailbox.id, token, sync_done=0, sync_total=len(new))
    sizes = imap.sizes(new) if new else {}
    done = 0
    with storing.overlapped_writes() as writer:
        for uids in batches(new, lambda uid: sizes.get(uid, 0), IMAP_BATCH):
            if time.monotonic() > deadline:
                return writer.total(), False
            batch = imap.fetch_messages(uids)
            store = partial(storing.store_imap_batch, mailbox=mailbox, folder=folder, uidvalidity=uidvalidity)
            writer.submit(partial(store, batch=batch))
            done += len(batch)
            _renew(mailbox.id, token, sync_done=done)
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
