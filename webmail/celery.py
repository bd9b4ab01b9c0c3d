"""The Celery application: `celery -A webmail worker` and `celery -A webmail beat`."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_ready
from django.conf import settings

from webmail.env import fail

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")

app = Celery("webmail")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _refuse_to_start_without_keys(**kwargs: Any) -> None:
    """Fail closed: a worker that cannot decrypt mailbox passwords must not pretend to work."""
    if not settings.WEBMAIL_ENCRYPTION_KEYS:
        fail("WEBMAIL_ENCRYPTION_KEYS is required to run a worker")


@worker_ready.connect
def _report_ready(sender: Any = None, **kwargs: Any) -> None:
    """A heartbeat as soon as the worker takes tasks: /healthz need not wait for beat's first one."""
    from fetcher import services  # noqa: PLC0415 -- Django's apps are loaded only once the worker runs

    services.heartbeat_record(hostname=getattr(sender, "hostname", None) or "unknown")
