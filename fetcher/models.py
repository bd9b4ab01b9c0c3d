"""The mail engine's tables. Messages and sync state arrive with issue #4."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the beat-scheduled heartbeat task.

    One row per worker host name; /healthz reads the newest one to tell whether
    beat and at least one worker are alive.
    """

    hostname = models.CharField(max_length=255, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.beat_at.isoformat()}"
