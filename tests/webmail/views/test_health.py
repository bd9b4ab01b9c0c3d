from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.test import Client, override_settings
from django.utils import timezone

from fetcher.models import WorkerHeartbeat
from fetcher.services import heartbeat_record

pytestmark = pytest.mark.django_db


def test_it_answers_200_when_database_redis_and_worker_are_up(client: Client) -> None:
    heartbeat_record(hostname="celery@test")

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "worker": True,
    }


def test_it_answers_503_naming_the_worker_when_no_heartbeat_was_ever_recorded(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["down"] == ["worker"]


def test_it_answers_503_when_the_last_heartbeat_is_stale(client: Client, settings: object) -> None:
    WorkerHeartbeat.objects.create(hostname="celery@old", beat_at=timezone.now() - timedelta(minutes=10))

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["down"] == ["worker"]
    assert "s ago" in response.json()["checks"]["worker"]["detail"]


def test_it_answers_503_naming_redis_when_redis_stops(client: Client, redis_server: str) -> None:
    heartbeat_record(hostname="celery@test")
    with override_settings(REDIS_URL=redis_server):
        assert client.get("/healthz").status_code == 200
        redis.Redis.from_url(redis_server).shutdown(nosave=True)
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["down"] == ["redis"]


def test_it_is_not_cached_and_needs_no_login(client: Client) -> None:
    response = client.get("/healthz")

    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert response["Content-Type"] == "application/json"
