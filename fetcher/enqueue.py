"""Every task the engine queues, one typed function each: the only place their names are written.

fetcher.tasks imports the services that queue tasks, so this module cannot import it: a task is
sent by its name (Celery's send_task), and tests/fetcher/test_enqueue.py checks every name here against
the tasks the worker registers, and the arguments against their parameters. A renamed task or a
changed signature fails there, not silently in a worker. Callers inside a transaction queue
from transaction.on_commit, so that the worker finds what the task needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from celery import current_app

# Stage two takes messages in tasks of this many: enough to share the per-task costs, few enough
# that a task stays short and a crash re-parses little.
PARSE_BATCH = 50


def _send(name: str, *args: object, countdown: float | None = None) -> None:
    current_app.send_task(name, args=list(args), countdown=countdown)


def parse_messages(ids: Sequence[int]) -> None:
    """Stage two of ingest for these stored messages, PARSE_BATCH to a task."""
    for start in range(0, len(ids), PARSE_BATCH):
        _send("fetcher.tasks.parse_messages", list(ids[start : start + PARSE_BATCH]))


def sync_mailbox(mailbox_id: uuid.UUID | str) -> None:
    _send("fetcher.tasks.sync_mailbox", str(mailbox_id))


def run_discovery(discovery_id: uuid.UUID | str) -> None:
    _send("fetcher.tasks.run_discovery", str(discovery_id))


def run_connection_test(test_id: uuid.UUID | str) -> None:
    _send("fetcher.tasks.run_connection_test", str(test_id))


def send_outgoing(outgoing_id: int | str, delay: float) -> None:
    """Send the message after `delay` seconds (the undo window, or its scheduled time)."""
    _send("fetcher.tasks.send_outgoing", str(outgoing_id), countdown=delay)


def draft_to_server(outgoing_id: int | str, delay: float) -> None:
    """Put the draft in the IMAP server's Drafts folder after `delay` seconds (typing settles)."""
    _send("fetcher.tasks.draft_to_server", str(outgoing_id), countdown=delay)
