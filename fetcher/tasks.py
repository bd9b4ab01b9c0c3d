"""Celery tasks: thin interfaces that take ids, call one service and own their retry policy."""

from __future__ import annotations

from celery import Task, shared_task

from fetcher.services import heartbeat_record


@shared_task(bind=True, ignore_result=True)
def heartbeat(self: Task) -> None:  # type: ignore[type-arg]
    """Scheduled by beat; proves that beat, the broker and a worker all work."""
    heartbeat_record(hostname=self.request.hostname or "unknown")
