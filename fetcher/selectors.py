"""Reads of the mail engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Sum

from fetcher.models import Message, WorkerHeartbeat


def heartbeat_latest() -> datetime | None:
    latest: datetime | None = WorkerHeartbeat.objects.aggregate(latest=Max("beat_at"))["latest"]
    return latest


def mailbox_storage(mailbox_ids: list[Any]) -> dict[Any, tuple[int, int]]:
    """(messages stored, bytes stored) per mailbox, in one query."""
    rows = (
        Message.objects.filter(mailbox_id__in=mailbox_ids)
        .values("mailbox_id")
        .annotate(count=Count("id"), size=Sum("size"))
    )
    return {row["mailbox_id"]: (row["count"], row["size"] or 0) for row in rows}
