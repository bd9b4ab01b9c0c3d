"""The claim on a mailbox and its bookkeeping: one sync per mailbox at a time, whatever the number
of workers.

A sync first claims the mailbox with a compare-and-set on a lease (`MailboxSync.sync_lease_until`),
which runs out by itself if its worker dies; it writes progress only while the claim is still its
own, and lets it go with the outcome recorded (health, backoff, the next run).
"""

from __future__ import annotations

import logging
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.crypto import EncryptionKeyError
from accounts.models import Mailbox
from fetcher import leases
from fetcher.mail.net import MailError, Step
from fetcher.models import MailboxState, MailboxSync

logger = logging.getLogger(__name__)

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


def renew(mailbox_id: uuid.UUID | str, token: str, **fields: object) -> None:
    """Progress, written only while the claim is still ours (else another holder has taken over)."""
    if not holding(mailbox_id, token, **fields):
        raise leases.LeaseLostError(f"mailbox {mailbox_id}")


def holding(mailbox_id: uuid.UUID | str, token: str, **fields: object) -> bool:
    """The lease renewed (with `fields`) if the claim is still this token's: the lease keeper's beat."""
    renewed = MailboxSync.objects.filter(mailbox_id=mailbox_id, sync_lease_token=token).update(
        sync_lease_until=leases.lease_end(), **fields
    )
    return bool(renewed)


def release(mailbox_id: uuid.UUID | str, token: str, **fields: object) -> None:
    """The claim let go with `fields` written, unless another holder has it now."""
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


# --- what a sync records when it lets the claim go ------------------------------------------------


class UnexpectedSyncError(Exception):
    """What the mailbox records about an exception no step expected (the log has the traceback)."""

    kind = "internal"

    def __init__(self, error: Exception) -> None:
        name = error.__class__.__name__
        super().__init__(f"The sync stopped on an unexpected error ({name}); it will be tried again.")


def record_success(mailbox: Mailbox, token: str, result: SyncResult) -> None:
    fields: dict[str, object] = {"state": MailboxState.IDLE, "consecutive_failures": 0}
    if result.status == "done":
        fields |= {"last_success_at": timezone.now(), "next_sync_at": _next_run(mailbox)}
    else:  # the budget ran out: the task queues a continuation at once
        fields |= {"next_sync_at": timezone.now()}
    release(mailbox.id, token, **fields)
    logger.info(
        "mailbox %s: %s, %d fetched, %d deleted", mailbox.id, result.status, result.fetched, result.deleted
    )


def record_failure(
    mailbox: Mailbox, token: str, error: MailError | EncryptionKeyError | UnexpectedSyncError
) -> None:
    failures = mailbox.sync.consecutive_failures + 1
    kind = _failure_kind(error)
    pause = kind == Step.AUTH and failures >= PAUSE_AFTER_AUTH_FAILURES
    release(
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
