"""Short leases, renewed while their holder works, so a dead holder's claim lapses within seconds.

A sync, a delivery, a connection test and a parse task each claim their rows with a lease of
`WEBMAIL_SYNC_LEASE_SECONDS`. While the holder is alive a thread renews it every quarter of
that, also while the holder's own thread is inside one long download or parse; a holder killed
with SIGKILL renews nothing, and the next dispatcher pass after the lease ran out hands the work
to a live worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType

from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.utils import timezone

logger = logging.getLogger(__name__)


class LeaseLostError(Exception):
    """Another holder owns the claim now (this one stalled longer than its lease): stop, write nothing."""


def lease_length() -> timedelta:
    return timedelta(seconds=settings.WEBMAIL_SYNC_LEASE_SECONDS)


def lease_end() -> datetime:
    return timezone.now() + lease_length()


class LeaseKeeper:
    """`with LeaseKeeper(renew):` runs `renew()` in a thread of its own every quarter lease.

    `renew` returns whether the claim is still this holder's; when it is not, renewing stops (the
    holder learns it from its own next write, which checks the claim). Inside a transaction (tests
    that hold the claimed row locked) there is no thread: its UPDATE would wait for the caller's own
    transaction.
    """

    def __init__(self, renew: Callable[[], bool], what: str) -> None:
        self._renew = renew
        self._what = what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        if not connection.in_atomic_block:
            self._thread = threading.Thread(target=self._run, name=f"lease {self._what}", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        every = lease_length().total_seconds() / 4
        try:
            while not self._stop.wait(every):
                if not self._renew_once():
                    logger.warning("%s: the lease went to another holder", self._what)
                    return
        finally:
            connections.close_all()  # this thread's own connection

    def _renew_once(self) -> bool:
        try:
            return self._renew()
        except DatabaseError:
            # PostgreSQL unreachable for a moment: keep trying; if it lasts, the lease lapses by itself.
            logger.warning("%s: the lease could not be renewed this time", self._what, exc_info=True)
            connections.close_all()
            return True
