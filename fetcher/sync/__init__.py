"""Syncing a mailbox: claim it, fetch what is new, record health, schedule the next run.

One sync per mailbox at a time, whatever the number of workers: `claim` holds the claim and what
a sync records when it ends; `pop3` and `imap` talk to the server and store what is new. Network
I/O never happens inside a transaction; each batch of messages is committed on its own, and a
message is deleted on a POP3 server only after its row is committed and only if the mailbox's
policy says so.
"""

from __future__ import annotations

import logging
import time
import uuid
from functools import partial

from django.utils import timezone

from accounts.crypto import EncryptionKeyError
from accounts.models import Protocol
from fetcher import leases, upkeep
from fetcher.mail.net import MailError
from fetcher.models import MailboxState
from fetcher.sync import claim, imap, pop3

logger = logging.getLogger(__name__)


def sync_mailbox(*, mailbox_id: uuid.UUID | str, budget_seconds: float) -> claim.SyncResult:
    claimed = claim.mailbox_claim(mailbox_id)
    if claimed is None:
        return claim.SyncResult("busy")
    token, mailbox = claimed
    deadline = time.monotonic() + budget_seconds
    run = pop3.sync_pop3 if mailbox.protocol == Protocol.POP3 else imap.sync_imap
    try:
        with leases.LeaseKeeper(partial(claim.holding, mailbox.id, token), f"mailbox {mailbox.id}"):
            result = run(mailbox, token, deadline)
    except (MailError, EncryptionKeyError) as error:
        claim.record_failure(mailbox, token, error)
        return claim.SyncResult("failed")
    except leases.LeaseLostError:
        logger.warning("mailbox %s: stopped, another worker holds it now", mailbox.id)
        return claim.SyncResult("lost")
    except Exception as error:  # a bug or a time limit: recorded and retried with backoff like any failure
        logger.exception("mailbox %s: the sync failed unexpectedly", mailbox.id)
        claim.record_failure(mailbox, token, claim.UnexpectedSyncError(error))
        return claim.SyncResult("failed")
    except BaseException:
        # The worker is shutting down: let the lease go so that the next worker starts at once.
        claim.release(mailbox.id, token, state=MailboxState.IDLE, next_sync_at=timezone.now())
        raise
    claim.record_success(mailbox, token, result)
    if result.fetched >= upkeep.CHANGED_ROWS:
        # A large first sync: plan the first pages on real figures. Forced, because the activity
        # counters that tell stale tables reach PostgreSQL's statistics a little after the commit.
        upkeep.statistics_refresh(force=True)
    return result
