"""Celery tasks: thin interfaces that take ids, call one service and own their retry policy."""

from __future__ import annotations

from celery import Task, shared_task

from fetcher.services import connection_test_run, heartbeat_record


@shared_task(bind=True, ignore_result=True)
def heartbeat(self: Task) -> None:  # type: ignore[type-arg]
    """Scheduled by beat; proves that beat, the broker and a worker all work."""
    heartbeat_record(hostname=self.request.hostname or "unknown")


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_connection_test(test_id: str) -> None:
    """No retry: the person waiting for the answer clicks again if they want another try."""
    connection_test_run(test_id=test_id)
