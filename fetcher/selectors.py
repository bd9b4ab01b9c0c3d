"""Reads of the mail engine."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max

from fetcher.models import WorkerHeartbeat


def heartbeat_latest() -> datetime | None:
    latest: datetime | None = WorkerHeartbeat.objects.aggregate(latest=Max("beat_at"))["latest"]
    return latest
