"""Writes of the mail engine (Django-Styleguide services: `<entity>_<action>(*, ...)`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Case, F, Func, JSONField, Q, Value, When
from django.utils import timezone

from accounts import crypto
from accounts.models import ConnectionTest, ConnectionTestStatus, Mailbox, Protocol, User
from accounts.services import MissingPasswordError, Passwords, connection_settings, stored_secret
from fetcher import config, enqueue, folders, leases, selectors
from fetcher.mail.net import Step
from fetcher.mail.probe import ProbeReport, probe
from fetcher.mail.session import Secret
from fetcher.models import (
    Folder,
    FolderRole,
    ImageSender,
    ImapDeletion,
    ImapMessage,
    MailboxState,
    MailboxSync,
    Message,
    OutgoingMessage,
    OutgoingState,
    Pop3Ledger,
    WorkerHeartbeat,
)

logger = logging.getLogger(__name__)


def heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    beat, _created = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"beat_at": timezone.now()}
    )
    return beat


# --- connection tests -----------------------------------------------------------------------


def connection_test_start(
    *, owner: User, mailbox: Mailbox | None, values: dict[str, Any], passwords: Passwords
) -> ConnectionTest:
    """Record the typed settings (passwords encrypted) and queue the test for a worker.

    A password left empty reuses the stored one only while the settings still send it where it
    was saved for; otherwise MissingPasswordError (the form asks for it first).
    """
    test = ConnectionTest.objects.create(
        owner=owner,
        mailbox=mailbox,
        settings=connection_settings(values),
        incoming_password_encrypted=_test_secret(mailbox, values, passwords.incoming, smtp=False),
        smtp_password_encrypted=_test_secret(mailbox, values, passwords.smtp, smtp=True),
        incoming_password_digest=crypto.secret_digest(passwords.incoming) if passwords.incoming else "",
        smtp_password_digest=crypto.secret_digest(passwords.smtp) if passwords.smtp else "",
    )
    transaction.on_commit(lambda: enqueue.run_connection_test(test.id))
    return test


def _test_secret(mailbox: Mailbox | None, values: dict[str, Any], typed: str, *, smtp: bool) -> str:
    if typed:
        return crypto.encrypt(typed)
    if smtp and values["smtp_same_login"]:
        return ""
    stored = stored_secret(mailbox=mailbox, values=values, smtp=smtp)
    if not stored and mailbox is not None:
        raise MissingPasswordError("the settings changed: the stored password is not sent there")
    return stored


def mailbox_probe(
    *, mailbox: Mailbox, incoming: Secret | None = None, smtp: Secret | None = None
) -> list[ProbeReport]:
    """The connection test of a mailbox's incoming and outgoing server.

    The stored passwords are decrypted unless given (typed on the command line, or held by a
    ConnectionTest); the outgoing login falls back to the incoming password when they are shared.
    """
    outgoing = smtp or (incoming if mailbox.smtp_same_login else None)
    return [
        probe(mailbox.protocol, config.incoming_config(mailbox, incoming)),
        probe("smtp", config.outgoing_config(mailbox, outgoing)),
    ]


def _test_reports(test: ConnectionTest) -> list[ProbeReport]:
    """A ConnectionTest's settings are a mailbox's connection fields: probe them as an unsaved one."""
    incoming = Secret(crypto.decrypt(test.incoming_password_encrypted))
    smtp = None if test.settings["smtp_same_login"] else Secret(crypto.decrypt(test.smtp_password_encrypted))
    return mailbox_probe(mailbox=Mailbox(**test.settings), incoming=incoming, smtp=smtp)


def connection_test_run(*, test_id: uuid.UUID | str) -> None:
    """Claim the test (so a redelivered task does not run it twice), probe both servers, store reports.

    A test whose worker died while running it is claimed again once its lease lapsed.
    """
    now = timezone.now()
    waiting = Q(status=ConnectionTestStatus.PENDING) | Q(
        status=ConnectionTestStatus.RUNNING, lease_until__lt=now
    )
    claimed = ConnectionTest.objects.filter(waiting, id=test_id).update(
        status=ConnectionTestStatus.RUNNING, lease_until=leases.lease_end()
    )
    if not claimed:
        return
    test = ConnectionTest.objects.get(id=test_id)
    with leases.LeaseKeeper(partial(_test_running, test_id), f"connection test {test_id}"):
        reports = _reports_or_failure(test)
    ConnectionTest.objects.filter(id=test_id).update(
        status=ConnectionTestStatus.DONE,
        incoming_report=reports[0],
        outgoing_report=reports[1],
        finished_at=timezone.now(),
        lease_until=None,
    )
    logger.info(
        "connection test %s: incoming ok=%s, outgoing ok=%s", test_id, reports[0]["ok"], reports[1]["ok"]
    )


def _test_running(test_id: uuid.UUID | str) -> bool:
    renewed = ConnectionTest.objects.filter(id=test_id, status=ConnectionTestStatus.RUNNING).update(
        lease_until=leases.lease_end()
    )
    return bool(renewed)


def _reports_or_failure(test: ConnectionTest) -> list[dict[str, Any]]:
    try:
        return [report.as_json() for report in _test_reports(test)]
    except crypto.EncryptionKeyError as exc:
        logger.error("connection test %s: %s", test.id, exc)
        failed = ProbeReport("config", failed_step=Step.INPUT, message=str(exc)).as_json()
    except Exception:
        logger.exception("connection test %s failed unexpectedly", test.id)
        failed = ProbeReport(
            "internal", failed_step=Step.PROTOCOL, message="The test failed unexpectedly."
        ).as_json()
    return [failed, failed]


# A pending test is normally taken within seconds; one still waiting after this lost its task.
TEST_QUEUED_WAIT = timedelta(minutes=2)


def connection_tests_requeue() -> int:
    """Queue again the tests whose worker died (lease lapsed) or whose task was lost; return how many."""
    now = timezone.now()
    lost = Q(status=ConnectionTestStatus.RUNNING, lease_until__lt=now) | Q(
        status=ConnectionTestStatus.PENDING, created_at__lt=now - TEST_QUEUED_WAIT
    )
    # Only recent ones: the person is still waiting for them.
    ids = list(
        ConnectionTest.objects.filter(lost, created_at__gte=now - timedelta(hours=1)).values_list(
            "id", flat=True
        )
    )
    for test_id in ids:
        enqueue.run_connection_test(test_id)
    return len(ids)


# --- scheduling ------------------------------------------------------------------------------


# A queued sync that no worker has claimed after this (a lost task) is queued again. The claim
# makes a mailbox due at once, so a sync whose worker died is queued as soon as its lease lapses.
QUEUED_WAIT = timedelta(minutes=5)


def syncs_dispatch() -> int:
    """Queue a sync for every enabled, unpaused, unclaimed mailbox that is due; return how many.

    The next run is pushed forward with a compare-and-set, so two beats (or a slow worker)
    never queue the same mailbox twice; the sync's claim is the real guard anyway.
    """
    now = timezone.now()
    due = (
        MailboxSync.objects.filter(mailbox__enabled=True, paused=False)
        .filter(Q(next_sync_at__isnull=True) | Q(next_sync_at__lte=now))
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .values_list("mailbox_id", "next_sync_at")
    )
    queued = 0
    for mailbox_id, next_sync_at in due:
        pushed = MailboxSync.objects.filter(mailbox_id=mailbox_id, next_sync_at=next_sync_at).update(
            next_sync_at=now + QUEUED_WAIT
        )
        if pushed:
            enqueue.sync_mailbox(mailbox_id)
            queued += 1
    return queued


def mailbox_sync_now(*, mailbox: Mailbox) -> None:
    """ "Sync now": skip the wait (and a pause after login failures: the person asked)."""
    MailboxSync.objects.filter(mailbox_id=mailbox.id).update(paused=False, next_sync_at=timezone.now())
    transaction.on_commit(lambda: enqueue.sync_mailbox(mailbox.id))


# --- the engine's record of each mailbox (fetcher.receivers calls these on accounts' signals) ---------


def mailbox_sync_create(*, mailbox: Mailbox) -> None:
    """Every mailbox has its MailboxSync from its first save (a fixture that brings one keeps it)."""
    MailboxSync.objects.bulk_create([MailboxSync(mailbox=mailbox)], ignore_conflicts=True)


def mailbox_sync_restart(*, mailbox: Mailbox) -> None:
    """New settings deserve a fresh start: no pause from old failures, due at once, and the
    folders listed again (the chosen ones may have changed)."""
    _sync_update(
        mailbox,
        state=_resting_state(mailbox),
        paused=False,
        consecutive_failures=0,
        next_sync_at=None,
        folders_listed_at=None,
    )


def mailbox_sync_follow_enabled(*, mailbox: Mailbox) -> None:
    _sync_update(mailbox, state=_resting_state(mailbox))


def mailbox_sync_pause(*, mailbox: Mailbox, paused: bool) -> None:
    """An administrator sets or lifts the pause (saving the mailbox's settings lifts it too)."""
    _sync_update(mailbox, paused=paused)


def _resting_state(mailbox: Mailbox) -> str:
    return MailboxState.IDLE if mailbox.enabled else MailboxState.DISABLED


def _sync_update(mailbox: Mailbox, **fields: object) -> None:
    # Only these columns: a sync running meanwhile keeps its claim and its progress.
    sync = mailbox.sync
    for name, value in fields.items():
        setattr(sync, name, value)
    sync.save(update_fields=list(fields))


# --- changes made in Postane ------------------------------------------------------------------
# Each change takes a set of messages (the list's chosen rows, one message's buttons): the same few
# statements however many (one UPDATE per change and mailbox), and one sync queued per IMAP mailbox
# they touch, which pushes them all. The single-message forms are the same change for a set of one.
# Each returns what it changed (a Change): what its notice says, and what its Undo reverses.

FLAGS = frozenset({"seen", "flagged", "answered"})


@dataclass(frozen=True)
class Change:
    """What a change did: the flags it set and on which messages, where the messages it moved came
    from, how many it deleted for good (those cannot come back)."""

    flags: dict[str, bool] = field(default_factory=dict)
    flagged: tuple[int, ...] = ()  # the messages whose flags changed
    moved_from: dict[int, int] = field(default_factory=dict)  # message -> the folder it left
    deleted: int = 0

    def __add__(self, other: Change) -> Change:
        return Change(
            {**self.flags, **other.flags},
            (*self.flagged, *other.flagged),
            {**self.moved_from, **other.moved_from},
            self.deleted + other.deleted,
        )

    @property
    def undoable(self) -> bool:
        return bool(self.flagged or self.moved_from)

    def as_json(self) -> dict[str, Any]:
        return {"flags": self.flags, "flagged": list(self.flagged), "moved": list(self.moved_from.items())}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        """A Change kept as JSON (an undo in the session): anything malformed reads as no change."""
        try:
            flags = {str(name): bool(value) for name, value in data["flags"].items() if name in FLAGS}
            moved = {int(message): int(folder) for message, folder in data["moved"]}
            return cls(flags, tuple(int(message) for message in data["flagged"]), moved)
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls()


def messages_set_flags(*, messages: Sequence[Message], **flags: bool) -> Change:
    """Read/unread, star, answered. IMAP: the next sync (queued at once) pushes them. POP3: they stay here.

    Only what differs changes; the messages that need the same change share one UPDATE.
    """
    wanted = {name: bool(value) for name, value in flags.items() if name in FLAGS}
    alike: dict[tuple[tuple[str, bool], ...], list[Message]] = {}
    for message in messages:
        changed = tuple((name, value) for name, value in wanted.items() if getattr(message, name) != value)
        if changed:
            alike.setdefault(changed, []).append(message)
    for changed, group in alike.items():
        _set_flags(group, dict(changed))
    touched = [message for group in alike.values() for message in group]
    _push_soon(touched)
    return Change(flags=wanted, flagged=tuple(message.pk for message in touched))


def _set_flags(messages: list[Message], changed: dict[str, bool]) -> None:
    """One UPDATE; for IMAP the change is also added to pending_flags, what the sync pushes."""
    imap = [message.pk for message in messages if _is_imap(message)]
    fields: dict[str, Any] = dict(changed)
    if imap:
        pending = Func(
            F("pending_flags"), Value(changed, JSONField()), arg_joiner=" || ", template="%(expressions)s"
        )
        fields["pending_flags"] = Case(When(pk__in=imap, then=pending), default=F("pending_flags"))
    Message.objects.filter(pk__in=[message.pk for message in messages]).update(**fields)
    for message in messages:
        for name, value in changed.items():
            setattr(message, name, value)
        if message.pk in imap:
            message.pending_flags = {**(message.pending_flags or {}), **changed}


def message_set_flags(*, message: Message, **flags: bool) -> Message:
    messages_set_flags(messages=[message], **flags)
    return message


def _is_imap(message: Message) -> bool:
    return message.mailbox.protocol == Protocol.IMAP


def _push_soon(messages: Iterable[Message]) -> None:
    """IMAP: the next sync of each mailbox touched, queued once this transaction commits, takes the
    changes to the server."""
    for mailbox_id in dict.fromkeys(message.mailbox_id for message in messages if _is_imap(message)):
        transaction.on_commit(partial(enqueue.sync_mailbox, mailbox_id))


def _moves(moved: Sequence[Message], origins: dict[int, int]) -> Change:
    return Change(moved_from={message.pk: origins[message.pk] for message in moved})


class MoveRefusedError(ValueError):
    """A move into a folder that some of the messages cannot go to (another mailbox's): nothing moved."""

    def __init__(self, folder: Folder, others: int) -> None:
        super().__init__(f"a message moves only between the folders of its own mailbox ({others} are not)")
        self.folder, self.others = folder, others


def messages_move(*, messages: Sequence[Message], folder: Folder) -> Change:
    """Move messages to another folder of their mailbox; for IMAP the sync moves them on the server too
    (those with a server copy elsewhere are marked pending_move). MoveRefusedError, and nothing
    moves, when some are in another mailbox: a folder holds only its own mailbox's messages."""
    others = sum(1 for message in messages if message.mailbox_id != folder.mailbox_id)
    if others:
        raise MoveRefusedError(folder, others)
    origins = {message.pk: message.folder_id for message in messages}
    moved = _move(messages, folder)
    _push_soon(moved)
    return _moves(moved, origins)


def _move(messages: Sequence[Message], folder: Folder) -> list[Message]:
    """The move without its push; returns the messages that moved (not those already there)."""
    if any(message.mailbox_id != folder.mailbox_id for message in messages):
        raise ValueError("a message moves only between the folders of its own mailbox")
    moving = [message for message in messages if message.folder_id != folder.pk]
    if not moving:
        return []
    located = _server_folders([message for message in moving if _is_imap(message)])
    # A message moved back where its server copy still is (an undo before the sync) has nothing to push.
    on_server = {pk for pk, server_folder in located.items() if server_folder != folder.pk}
    Message.objects.filter(pk__in=[message.pk for message in moving]).update(
        folder=folder, pending_move=Case(When(pk__in=on_server, then=True), default=False)
    )
    for message in moving:
        message.folder, message.pending_move = folder, message.pk in on_server
    return moving


def _server_folders(messages: list[Message]) -> dict[int, int]:
    """The folder of each of those messages' IMAP server copy (an ImapMessage row), in one query."""
    if not messages:
        return {}
    found = ImapMessage.objects.filter(message__in=[message.pk for message in messages])
    return dict(found.values_list("message_id", "folder_id"))


def message_move(*, message: Message, folder: Folder) -> Message:
    messages_move(messages=[message], folder=folder)
    return message


def messages_delete(*, messages: Sequence[Message]) -> Change:
    """Delete as mail clients do: into the mailbox's Trash, and from Trash for good. An IMAP
    server without a Trash gets one (`INBOX.Trash` on Courier) with the next sync.

    POP3 with "also delete on the server": the next sync deletes the server's copy (ours stays
    in Trash until it is emptied).
    """
    origins = {message.pk: message.folder_id for message in messages}
    moved: list[Message] = []
    deleted: list[Message] = []
    for mailbox, group in _by_mailbox(messages):
        if mailbox.protocol == Protocol.POP3 and mailbox.pop3_delete_with_local:
            Pop3Ledger.objects.filter(mailbox_id=mailbox.id, message__in=[m.pk for m in group]).update(
                delete_requested=True
            )
        trash = folders.role_folder(mailbox, FolderRole.TRASH)
        in_trash = [message for message in group if message.folder_id == trash.pk]  # before _move sets them
        moved += _move([message for message in group if message.folder_id != trash.pk], trash)
        deleted += _delete_for_good(in_trash)
    _push_soon([*moved, *deleted])
    return _moves(moved, origins) + Change(deleted=len(deleted))


def _by_mailbox(messages: Sequence[Message]) -> list[tuple[Mailbox, list[Message]]]:
    grouped: dict[uuid.UUID, list[Message]] = {}
    for message in messages:
        grouped.setdefault(message.mailbox_id, []).append(message)
    return [(group[0].mailbox, group) for group in grouped.values()]


def message_delete(*, message: Message) -> None:
    messages_delete(messages=[message])


def messages_delete_for_good(*, messages: Sequence[Message]) -> Change:
    """Remove the stored messages now; an IMAP server copy is deleted by the next sync.

    A POP3 message stays in the ledger, so it is never downloaded again.
    """
    deleted = _delete_for_good(messages)
    _push_soon(deleted)
    return Change(deleted=len(deleted))


def _delete_for_good(messages: Sequence[Message]) -> Sequence[Message]:
    """The deletion without its push; returns the messages deleted."""
    if not messages:
        return messages
    ids = {message.pk: message for message in messages}
    with transaction.atomic():
        # Where each server copy is, for the next sync to expunge (a UIDVALIDITY of 0 names none).
        located = ImapMessage.objects.filter(message__in=list(ids)).exclude(uidvalidity=0)
        ImapDeletion.objects.bulk_create(
            [
                ImapDeletion(
                    folder_id=location.folder_id,
                    uidvalidity=location.uidvalidity,
                    uid=location.uid,
                    message_id=ids[location.message_id].message_id,
                    size=ids[location.message_id].size,
                )
                for location in located
            ],
            ignore_conflicts=True,
        )
        Message.objects.filter(pk__in=list(ids)).delete()
    return messages


def message_delete_for_good(*, message: Message) -> None:
    messages_delete_for_good(messages=[message])


def drafts_discard(*, drafts: Sequence[OutgoingMessage] = (), messages: Sequence[Message] = ()) -> int:
    """Discard drafts for good: those written here (`drafts`, still drafts) and those of the servers'
    Drafts folders (`messages`; a message in any other folder is left alone). Returns how many went.

    A draft written here goes with its copies: the one outbox.draft_to_server put in the IMAP
    server's Drafts, and the one a sync may have brought back here from there. The next sync of
    each IMAP mailbox deletes them on the server, as it deletes whatever was deleted here for good
    (ImapDeletion: only while the UID still names that draft, by its Message-ID). A message queued,
    sent or failed is not a draft: it stays (the outbox's Undo makes a queued one a draft again).
    """
    chosen = [message for message in messages if message.folder.role == FolderRole.DRAFTS]
    with transaction.atomic():
        rows = list(
            OutgoingMessage.objects.select_for_update(of=("self",))
            .select_related("mailbox", "server_draft_folder")
            .filter(pk__in=[draft.pk for draft in drafts], state=OutgoingState.DRAFT)
        )
        ImapDeletion.objects.bulk_create(
            [
                _server_draft(row, folder, row.server_draft_uid)
                for row in rows
                if (folder := row.server_draft_folder) is not None and row.server_draft_uid is not None
            ],
            ignore_conflicts=True,
        )
        copies = _stored_copies(rows, already={message.pk for message in chosen})
        deleted = _delete_for_good([*chosen, *copies])
        OutgoingMessage.objects.filter(pk__in=[row.pk for row in rows]).delete()
    on_server = [row.mailbox_id for row in rows if row.server_draft_uid is not None]
    for mailbox_id in dict.fromkeys([*on_server, *_imap_mailboxes(deleted)]):
        transaction.on_commit(partial(enqueue.sync_mailbox, mailbox_id))
    return len(rows) + len(chosen)


def _server_draft(row: OutgoingMessage, folder: Folder, uid: int) -> ImapDeletion:
    # The folder's UIDVALIDITY when the copy was appended (fetcher.folders.server_folder knows it
    # first); if it changed since, or is unknown (0), the sync finds the copy by its Message-ID.
    return ImapDeletion(
        folder=folder,
        uidvalidity=folder.uidvalidity or 0,
        uid=uid,
        message_id=row.message_id,
        size=None,  # not kept: the Message-ID, fixed when the draft was made, names it alone
    )


def _stored_copies(rows: Sequence[OutgoingMessage], already: set[int]) -> list[Message]:
    """The copies of these drafts that a sync brought here from the servers' Drafts folders."""
    if not rows:
        return []
    found = Message.objects.filter(
        mailbox__in={row.mailbox_id for row in rows},
        folder__role=FolderRole.DRAFTS,
        message_id__in={row.message_id for row in rows},
    )
    return [message for message in found.select_related("mailbox").defer("raw") if message.pk not in already]


def _imap_mailboxes(messages: Iterable[Message]) -> list[uuid.UUID]:
    return [message.mailbox_id for message in messages if _is_imap(message)]


def messages_archive(*, messages: Sequence[Message]) -> Change:
    """Into the mailbox's Archive (the server's, found by flag or name, or made there by the next
    sync when it has none; a local one for POP3)."""
    return messages_file(messages=messages, role=FolderRole.ARCHIVE)


def messages_file(*, messages: Sequence[Message], role: str) -> Change:
    """Into each message's own mailbox's folder for a role (Inbox, Archive, Junk, Trash), one move per
    mailbox: what a move across several mailboxes can mean."""
    origins = {message.pk: message.folder_id for message in messages}
    moved: list[Message] = []
    for mailbox, group in _by_mailbox(messages):
        target = folders.inbox_of(mailbox) if role == FolderRole.INBOX else folders.role_folder(mailbox, role)
        moved += _move(group, target)
    _push_soon(moved)
    return _moves(moved, origins)


def message_archive(*, message: Message) -> Message:
    messages_archive(messages=[message])
    return message


def messages_undo(*, owner: User, change: Change) -> Change:
    """Reverse a change (a notice's Undo): the flags it set set back on the messages it changed, and
    the messages it moved back to the folders they left, each within its own mailbox. Only the
    owner's messages and folders count; what is gone since (deleted for good) stays gone.

    A POP3 message taken back out of the Trash is no longer to be deleted on the server (unless
    the sync did that already). Returns what the undo changed.
    """
    found = {m.pk: m for m in selectors.owned_for_change(owner, [*change.flagged, *change.moved_from])}
    undone = Change()
    if change.flags:
        flagged = [found[pk] for pk in change.flagged if pk in found]
        undone += messages_set_flags(
            messages=flagged, **{name: not value for name, value in change.flags.items()}
        )
    back = Folder.objects.filter(mailbox__owner=owner, pk__in=set(change.moved_from.values()))
    targets = {folder.pk: folder for folder in back.select_related("mailbox")}
    origins = {message.pk: message.folder_id for message in found.values()}
    moved: list[Message] = []
    for folder_pk, folder in targets.items():
        group = [found[pk] for pk, left in change.moved_from.items() if left == folder_pk and pk in found]
        moved += _move([message for message in group if message.mailbox_id == folder.mailbox_id], folder)
    Pop3Ledger.objects.filter(
        message__in=[message.pk for message in moved],
        delete_requested=True,
        deleted_on_server_at__isnull=True,
    ).update(delete_requested=False)
    _push_soon(moved)
    return undone + _moves(moved, origins)


def message_show_images(*, message: Message, always_from_sender: bool = False) -> None:
    """Remote images of this message may load (and of every message from its sender, if asked)."""
    Message.objects.filter(pk=message.pk).update(show_images=True)
    message.show_images = True
    if always_from_sender and message.from_address:
        ImageSender.objects.get_or_create(owner=message.mailbox.owner, address=message.from_address.lower())


def trash_empty(*, owner: User) -> int:
    """Delete for good every message in the owner's Trash folders; returns how many."""
    trashed = Message.objects.filter(mailbox__owner=owner, folder__role=FolderRole.TRASH)
    found = list(trashed.select_related("mailbox").defer("raw"))
    messages_delete_for_good(messages=found)
    return len(found)
