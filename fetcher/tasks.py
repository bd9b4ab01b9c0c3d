"""Celery tasks: thin interfaces that take ids, call one service and own their retry policy."""

from __future__ import annotations

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from fetcher import discovery, outbox, services, sync, upkeep
from fetcher.ingest import parsing


@shared_task(bind=True, ignore_result=True)
def heartbeat(self: Task) -> None:  # type: ignore[type-arg]
    """Scheduled by beat; proves that beat, the broker and a worker all work."""
    services.heartbeat_record(hostname=self.request.hostname or "unknown")


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_connection_test(test_id: str) -> None:
    """No retry: the person waiting for the answer clicks again if they want another try."""
    services.connection_test_run(test_id=test_id)


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_discovery(discovery_id: str) -> None:
    """No retry: the page offers the full form when a discovery found nothing or stopped."""
    discovery.discovery_run(discovery_id=discovery_id)


@shared_task(ignore_result=True)
def dispatch_syncs() -> None:
    """Scheduled by beat: queue a sync for every enabled mailbox that is due (or whose worker died),
    and again every connection test whose worker died."""
    services.syncs_dispatch()
    services.connection_tests_requeue()


@shared_task(ignore_result=True, soft_time_limit=600, time_limit=660)
def refresh_statistics() -> None:
    """Scheduled by beat: ANALYZE the message tables once enough of them changed (fetcher.upkeep)."""
    upkeep.statistics_refresh()


@shared_task(ignore_result=True)
def sync_mailbox(mailbox_id: str) -> None:
    """One sync; a busy mailbox returns at once. A large first sync continues in a fresh task.

    Failures are recorded on the mailbox and retried by the dispatcher with backoff, so this
    task itself never retries.
    """
    budget = max(settings.CELERY_TASK_SOFT_TIME_LIMIT - 60, 30)
    result = sync.sync_mailbox(mailbox_id=mailbox_id, budget_seconds=budget)
    if result.status == "more":
        sync_mailbox.delay(mailbox_id)


@shared_task(ignore_result=True)
def requeue_unparsed() -> None:
    """Scheduled by beat: parse what a lost or killed parse task left behind."""
    parsing.requeue_unparsed()


@shared_task(ignore_result=True, autoretry_for=(SoftTimeLimitExceeded,), max_retries=0)
def parse_messages(message_ids: list[int]) -> None:
    parsing.parse_messages(message_ids)


# Long enough for a large message on a slow line (the lease keeps a live sender's claim).
@shared_task(ignore_result=True, soft_time_limit=900, time_limit=960)
def send_outgoing(outgoing_id: str) -> None:
    """One delivery attempt; temporary failures are queued again by the outbox itself, with backoff."""
    outbox.outgoing_deliver(outgoing_id=outgoing_id)


@shared_task(ignore_result=True)
def dispatch_outgoing() -> None:
    """Scheduled by beat: hand every due message (and any whose worker died) to a worker."""
    for outgoing_id in outbox.outgoing_due():
        send_outgoing.delay(str(outgoing_id))


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def draft_to_server(outgoing_id: str) -> None:
    """IMAP: the draft's latest version into the server's Drafts (a failure waits for the next save)."""
    outbox.draft_to_server(outgoing_id=outgoing_id)
