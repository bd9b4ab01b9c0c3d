"""A POP3 mailbox synced: new messages by UIDL (or a fingerprint of their header block), stored in
batches, then deleted on the server if the mailbox's policy says so, each only after its commit."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import partial

from django.db.models import BinaryField, F, Func, Q, Value
from django.utils import timezone

from accounts.models import Mailbox, Retention
from fetcher import config, folders
from fetcher.ingest import storing
from fetcher.mail import header_scan
from fetcher.mail.net import MailError, Step
from fetcher.mail.pop3 import Pop3Session
from fetcher.models import Pop3Ledger
from fetcher.sync import claim

BATCH_SIZE = 200


def sync_pop3(mailbox: Mailbox, token: str, deadline: float) -> claim.SyncResult:
    with Pop3Session(config.incoming_config(mailbox)) as pop:
        listing = _pop3_listing(pop)
        known = set(Pop3Ledger.objects.filter(mailbox=mailbox).values_list("uid", flat=True))
        new = _recognise_restored(pop, mailbox, listing, [(n, uid) for n, uid in listing if uid not in known])
        claim.renew(mailbox.id, token, sync_done=0, sync_total=len(new))
        fetched, finished = _fetch_pop3(pop, mailbox, token, new, deadline)
        to_delete = _pop3_deletions(pop, mailbox, listing) if finished else []
    if to_delete and pop.quit_ok:  # the server applies DELE only at a clean QUIT
        Pop3Ledger.objects.filter(mailbox=mailbox, uid__in=to_delete).update(
            deleted_on_server_at=timezone.now()
        )
    return claim.SyncResult("done" if finished else "more", fetched, len(to_delete) if pop.quit_ok else 0)


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
        for chunk in storing.batches(new, lambda item: sizes.get(item[0], 0), BATCH_SIZE):
            if time.monotonic() > deadline:
                return writer.total(), False
            raws = pop.retr_many([number for number, _uid in chunk])
            batch = [storing.Fetched(uid, raw) for (_number, uid), raw in zip(chunk, raws, strict=True)]
            del raws
            writer.submit(partial(storing.store_pop3_batch, mailbox=mailbox, folder=folder, batch=batch))
            done += len(batch)
            claim.renew(mailbox.id, token, sync_done=done)
    return writer.total(), True


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
