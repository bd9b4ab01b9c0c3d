"""The checks behind /healthz: PostgreSQL, Redis, and a worker that beat keeps busy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from fetcher.selectors import heartbeat_latest


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return Check(False, f"unreachable: {type(exc).__name__}")
    return Check(True, "ok")


def check_redis() -> Check:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return Check(False, f"unreachable: {type(exc).__name__}")
    finally:
        client.close()
    return Check(True, "ok")


def check_worker() -> Check:
    try:
        latest = heartbeat_latest()
    except DatabaseError:
        return Check(False, "unknown: the database is unreachable")
    if latest is None:
        return Check(False, "no heartbeat recorded yet")
    age = timezone.now() - latest
    if age > timedelta(seconds=settings.WEBMAIL_HEARTBEAT_STALE_SECONDS):
        return Check(False, f"last heartbeat {int(age.total_seconds())} s ago")
    return Check(True, f"last heartbeat {int(age.total_seconds())} s ago")


def run_checks() -> dict[str, Check]:
    return {"database": check_database(), "redis": check_redis(), "worker": check_worker()}
