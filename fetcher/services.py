"""Writes of the mail engine (Django-Styleguide services: `<entity>_<action>(*, ...)`)."""

from __future__ import annotations

from django.utils import timezone

from fetcher.models import WorkerHeartbeat


def heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    beat, _created = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"beat_at": timezone.now()}
    )
    return beat
