"""What Postane does itself to keep reading fast: planner statistics refreshed after bulk changes,
and the per-folder counts repaired on demand.

PostgreSQL's autovacuum analyses a table after enough of it changed, but an operator may have
turned it off, and after a large first sync it may not have run yet: a planner without
statistics guesses, and its guesses for a 100,000-message folder are ruinous. So after a sync
that stored many messages, at the end of a reindex, and once a minute from beat, the message
tables are analysed when enough of them changed since they last were (by anyone: autovacuum's
own ANALYZE counts). The reading queries are written so that their plan does not depend on the
statistics anyway (tests/fetcher/test_selectors_query_plans.py); fresh statistics keep the rest
of the engine's queries sensible.
"""

from __future__ import annotations

import logging
import uuid

from django.db import connection, transaction

logger = logging.getLogger(__name__)

# The tables whose plans matter for reading and syncing, analysed together.
TABLES = ("fetcher_message", "fetcher_imapmessage", "fetcher_pop3ledger", "fetcher_attachment")
# Analysed once this many rows changed since the last ANALYZE, plus a share of the table
# (autovacuum's own default rule is 50 rows plus 10 %: a little more eager at the start here,
# where a first sync makes the statistics of an empty table meaningless).
CHANGED_ROWS = 1000
CHANGED_SHARE = 0.1
_LOCK = 0x706F7374616E65  # pg_try_advisory_xact_lock key: one ANALYZE at a time ("postane")


def stale_tables() -> list[str]:
    """The tables with more rows changed since their last ANALYZE than the rule allows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s)"
            " AND n_mod_since_analyze > %s + %s * greatest(n_live_tup, 0)",
            [list(TABLES), CHANGED_ROWS, CHANGED_SHARE],
        )
        return [name for (name,) in cursor.fetchall()]


def statistics_refresh(*, force: bool = False) -> list[str]:
    """ANALYZE the stale tables (every table with `force`); return the ones analysed.

    A second caller while one is analysing returns at once: two ANALYZEs of one table would only
    wait for each other.
    """
    tables = list(TABLES) if force else stale_tables()
    if not tables:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK])
        if not cursor.fetchone()[0]:
            return []
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    logger.info("analysed %s", ", ".join(tables))
    return tables


def folder_counts_repair(*, mailbox_id: uuid.UUID | str | None = None) -> int:
    """Count every folder's messages and unread messages again; return how many counts were wrong.

    The count rows are locked before counting (each mailbox in a transaction of its own), so a
    sync storing mail meanwhile either waits for the new count or adds to it afterwards: no change
    is counted twice or lost.
    """
    with connection.cursor() as cursor:
        if mailbox_id is None:
            cursor.execute("SELECT id FROM accounts_mailbox ORDER BY id")
            mailboxes = [row[0] for row in cursor.fetchall()]
        else:
            mailboxes = [mailbox_id]
    return sum(_repair_mailbox(mailbox) for mailbox in mailboxes)


def _repair_mailbox(mailbox_id: uuid.UUID | str) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fetcher_foldercount (folder_id, messages, unread)"
            " SELECT id, 0, 0 FROM fetcher_folder WHERE mailbox_id = %s ON CONFLICT (folder_id) DO NOTHING",
            [mailbox_id],
        )
        cursor.execute(
            "SELECT 1 FROM fetcher_foldercount WHERE folder_id IN"
            " (SELECT id FROM fetcher_folder WHERE mailbox_id = %s) ORDER BY folder_id FOR UPDATE",
            [mailbox_id],
        )
        cursor.execute(
            "UPDATE fetcher_foldercount count SET messages = counted.messages, unread = counted.unread"
            " FROM (SELECT folder.id, count(message.id) AS messages,"
            "       count(message.id) FILTER (WHERE NOT message.seen) AS unread"
            "       FROM fetcher_folder folder"
            "       LEFT JOIN fetcher_message message ON message.folder_id = folder.id"
            "       WHERE folder.mailbox_id = %s GROUP BY folder.id) counted"
            " WHERE count.folder_id = counted.id"
            " AND (count.messages, count.unread) IS DISTINCT FROM (counted.messages, counted.unread)",
            [mailbox_id],
        )
        wrong: int = cursor.rowcount
        return wrong
