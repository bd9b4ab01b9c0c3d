"""Query plans under test: many messages stored quickly, planner statistics taken away or skewed,
and the EXPLAIN of every statement a page runs.

A page must be fast however the planner's statistics look: right after a large first sync the
message table has never been analysed (autovacuum may be off, or not have run yet), and after a
burst of new mail the statistics describe a mailbox that no longer exists. These helpers put the
database into those states inside the test's transaction (so they are rolled back after it) and
report any sequential scan of the message table in the plans.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection

from accounts.models import Mailbox
from fetcher.mail import search
from fetcher.models import Folder

MESSAGE_TABLE = "fetcher_message"


def bulk_messages(
    mailbox: Mailbox,
    folder: Folder,
    count: int,
    *,
    unread_every: int = 1,
    subject: str = "Haftalık bülten {n}",
    attachment_every: int = 10,
    flagged_every: int = 20,
    to: tuple[str, str] = ("Alice", "alice@example.net"),
) -> None:
    """`count` parsed messages in one statement (SQL, not the ORM: tens of thousands in a second).

    Every `unread_every`-th message is unread (1: all of them), each has its own conversation, and
    the search vector holds the words of the subject, the sender and the recipient (`to`: name,
    address), folded, and each field's words once more with its tag, like a parsed message's would
    (without the stems), and its mailbox. The sender is 'Kişi <n mod 300>'.
    """
    subject_sql = "replace(%s, '{n}', n::text)"
    sender_sql = "'Kişi ' || (n %% 300) || ' kisi' || (n %% 300) || '@example.com'"
    to_sql = "%(to_name)s || ' ' || %(to_address)s"
    document_sql = " || ".join(
        [
            _lexemes_sql(f"{subject_sql % '%(subject)s'} || ' ' || {sender_sql} || ' ' || {to_sql}"),
            _lexemes_sql(subject_sql % "%(subject)s", search.FIELD_TAGS["subject"]),
            _lexemes_sql(sender_sql, search.FIELD_TAGS["from"]),
            _lexemes_sql(to_sql, search.FIELD_TAGS["to"]),
            f"array_to_tsvector(ARRAY['{search.MAILBOX_TAG}' || replace(%(mailbox)s::text, '-', '')])",
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO fetcher_message (
                public_id, mailbox_id, folder_id, raw, size, sha256, fetched_at, parse_state,
                parse_problems, parse_attempts, message_id, subject, from_name, from_address, "to", cc,
                reply_to, date, sort_date, in_reply_to, "references", thread_key, base_subject,
                text_body, html_body, body_source, snippet, has_attachments, search_vector, seen,
                flagged, answered, pending_flags, pending_move, show_images, pending_append)
            SELECT gen_random_uuid(), %(mailbox)s, %(folder)s, ''::bytea, 1000, md5(n::text), now(),
                'parsed', '[]', 1, '<bulk.' || %(folder)s || '.' || n || '@example.com>',
                {subject_sql % "%(subject)s"}, 'Kişi ' || (n %% 300), 'kisi' || (n %% 300) || '@example.com',
                jsonb_build_array(jsonb_build_object('name', %(to_name)s, 'address', %(to_address)s)),
                '[]', '[]',
                timestamptz '2024-01-01' + n * interval '10 minutes',
                timestamptz '2024-01-01' + n * interval '10 minutes', '', '[]',
                '<bulk.' || %(folder)s || '.' || n || '@example.com>', lower({subject_sql % "%(subject)s"}),
                'Gövde', '', '', 'Gövde', n %% %(attachment_every)s = 0,
                {document_sql},
                n %% %(unread_every)s <> 0, n %% %(flagged_every)s = 0, false, '{{}}', false, false, false
            FROM generate_series(1, %(count)s) AS n
            """,  # noqa: S608 -- the SQL is constant; values are parameters
            {
                "mailbox": mailbox.pk,
                "folder": folder.pk,
                "count": count,
                "subject": subject,
                "unread_every": unread_every,
                "attachment_every": attachment_every,
                "flagged_every": flagged_every,
                "to_name": to[0],
                "to_address": to[1],
            },
        )


def _lexemes_sql(text_sql: str, tag: str = "") -> str:
    """SQL for a tsvector of the words of a text folded as fetcher.mail.search folds them, each with `tag`."""
    folded = f"translate(lower({text_sql}), '{search.FOLD_FROM}', '{search.FOLD_TO}')"
    return (
        f"array_to_tsvector(ARRAY(SELECT DISTINCT '{tag}' || word"  # noqa: S608 -- constant SQL pieces
        f" FROM unnest(regexp_split_to_array({folded}, '\\W+')) AS word WHERE word <> ''))"
    )


def forget_statistics() -> None:
    """The message table as a large first sync leaves it: never analysed, no statistics at all."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM pg_statistic WHERE starelid = %s::regclass"
            " OR starelid IN (SELECT indexrelid FROM pg_index WHERE indrelid = %s::regclass)",
            [MESSAGE_TABLE, MESSAGE_TABLE],
        )
        cursor.execute(
            "UPDATE pg_class SET reltuples = -1 WHERE oid = %s::regclass"
            " OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = %s::regclass)",
            [MESSAGE_TABLE, MESSAGE_TABLE],
        )


def analyse() -> None:
    """Statistics of the table as it is now (taken inside the test's transaction: rolled back after)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {MESSAGE_TABLE}")


def analysed_before_parsing() -> None:
    """Statistics taken between the two stages of a large first sync: every conversation key was
    still empty ('' is the only value the planner has seen), now each message has its own."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE kept_keys AS SELECT id, thread_key FROM {MESSAGE_TABLE}")  # noqa: S608 -- a constant name
        cursor.execute(f"UPDATE {MESSAGE_TABLE} SET thread_key = ''")  # noqa: S608
        cursor.execute(f"ANALYZE {MESSAGE_TABLE}")
        cursor.execute(
            f"UPDATE {MESSAGE_TABLE} AS m SET thread_key = kept.thread_key FROM kept_keys AS kept"  # noqa: S608
            " WHERE kept.id = m.id"
        )
        cursor.execute("DROP TABLE kept_keys")


def plan_of(sql: str, params: Any = None, *, analyse: bool = False) -> dict[str, Any]:
    """The plan of a statement; with `analyse`, run it and record what each step really read."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON{', ANALYZE' if analyse else ''}) {sql}", params)
        return _first_plan(cursor.fetchone()[0])


def _first_plan(found: Any) -> dict[str, Any]:
    plan: dict[str, Any] = (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def sequential_scans(plan: dict[str, Any], table: str = MESSAGE_TABLE) -> list[dict[str, Any]]:
    return [
        node
        for node in _nodes(plan)
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == table
    ]


def rows_read(plan: dict[str, Any], table: str = MESSAGE_TABLE) -> int:
    """Rows of `table` an analysed plan read: returned by its scans or thrown away by their filters."""
    total = 0
    for node in _nodes(plan):
        if node.get("Relation Name") != table:
            continue
        per_loop = (
            node.get("Actual Rows", 0)
            + node.get("Rows Removed by Filter", 0)
            + node.get("Rows Removed by Index Recheck", 0)
        )
        total += per_loop * node.get("Actual Loops", 1)
    return total


@dataclass
class Analysed:
    """A statement a page sent and its plan, run for real (EXPLAIN ANALYZE) just before the page ran it."""

    sql: str
    plan: dict[str, Any]


def analysed_statements(run: Callable[[], Any]) -> list[Analysed]:
    """Every statement `run()` (a page request through the test client, say) sends that reads
    messages, each with its plan under the settings and in the transaction it really ran in."""
    found: list[Analysed] = []

    def analysing(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not many and MESSAGE_TABLE in sql and sql.lstrip().upper().startswith(("SELECT", "WITH", "(")):
            raw = context["cursor"].cursor  # psycopg's own cursor: not wrapped again
            raw.execute(f"EXPLAIN (FORMAT JSON, ANALYZE) {sql}", params)
            found.append(Analysed(sql % tuple(params) if params else sql, _first_plan(raw.fetchone()[0])))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(analysing):
        run()
    return found


def costly_reads(statements: list[Analysed], budget: int) -> list[str]:
    """Each statement that scans the message table sequentially or reads more than `budget` of its rows.

    Both are judged on the statement run for real: a plan that walks a whole folder through an
    index to sort it is as bad as a sequential scan, and only the rows it really read show it,
    whatever the planner estimated.
    """
    found = []
    for statement in statements:
        read = rows_read(statement.plan)
        if sequential_scans(statement.plan) or read > budget:
            found.append(
                f"{statement.sql}\nread {read} rows of messages:\n{json.dumps(statement.plan, indent=1)}"
            )
    return found
