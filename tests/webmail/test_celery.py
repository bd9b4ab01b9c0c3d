from __future__ import annotations

import pytest

from fetcher.models import WorkerHeartbeat
from fetcher.tasks import heartbeat
from tests.conftest import WorkerProcess, wait_for
from webmail.celery import app as celery_app


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_takes_a_task_from_redis_and_writes_to_postgres(celery_worker: WorkerProcess) -> None:
    assert not WorkerHeartbeat.objects.exists()

    heartbeat.delay()

    beat = wait_for(
        lambda: WorkerHeartbeat.objects.filter(hostname=celery_worker.hostname).first(),
        "the worker to record its heartbeat",
    )
    assert beat.beat_at is not None


def test_tasks_travel_as_json_and_are_acknowledged_late() -> None:
    assert celery_app.conf.task_serializer == "json"
    assert celery_app.conf.accept_content == ["json"]
    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.task_soft_time_limit < celery_app.conf.task_time_limit
    assert celery_app.conf.broker_url.startswith("redis://")
