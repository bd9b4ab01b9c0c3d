"""Reading benchmark: page times of a person's mailbox over HTTP, with 100,000 messages or 1,000,000.

    ./postane bench-reading                       # the person: one IMAP mailbox of 100,000 messages
    ./postane bench-reading --messages 1000000    # the 1M case (by hand: about an hour to fill)
    ./postane bench-reading --messages 5000 --load-seconds 10   # quicker
    ./postane bench-reading --case three          # the older case: 3 mailboxes, test client, ANALYZE

The person (`--case person`, bench/person.py) is one IMAP account shaped like years of real
mail: notifications repeating one subject thousands of times, discussions with References
chains and Re:/YNT: subjects, 85% unread, some flagged, some attachments, empty role folders
and two small ordinary folders. It is stored through Postane's own ingest (stage one with COPY
into INBOX with IMAP UIDs, stage two in two processes) a batch at a time, and read on a fresh
database: no ANALYZE, no VACUUM (autovacuum is printed; off on the development machine).

Pages are timed over HTTP against gunicorn started as `./postane run` starts it
(bench/web.py): 1 warm-up, then the median (min, max) of 5 requests over one connection,
signed in through the login form. Beside each figure: the same page's SQL statements, captured
by running the request once in this process through Django's test client and replayed on a
plain psycopg connection (median of 5), and how many there are. Then `wrk` runs 50 signed-in
readers at once (50 sessions made in Django's session store; bench/reading_load.lua) for
`--load-seconds`: throughput, p50/p95/p99 latency, and every answer must be a 200.

`--case three` is the earlier benchmark: 100,000 messages in one user's three mailboxes,
VACUUM ANALYZE, then the median of 25 requests through Django's test client (no network).

Uses the database POSTANE_BENCH_DATABASE (default `postane_bench`; dropped and created) on
the server of DATABASE_URL.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import logging
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import person, web  # noqa: E402
from bench.ingest import _setup_worker, bench_database_url, setup_django  # noqa: E402
from bench.words import text  # noqa: E402

RUNS = 25
DATE = "%a, %d %b %Y %H:%M:%S +0300"


def make_message(number: int, rng: random.Random) -> bytes:
    day = rng.randrange(0, 3 * 365)
    subject = text(rng, rng.randint(2, 6)).capitalize()
    body = "\r\n".join(text(rng, 12) for _ in range(rng.randint(3, 30)))
    sender = rng.randrange(300)
    reply = f"In-Reply-To: <bench.{number - 1}@example.com>\r\n" if number % 7 == 0 and number else ""
    return (
        f"From: Kişi {sender} <kisi{sender}@example.com>\r\nTo: Alice <alice@example.net>\r\n"
        f"Subject: {subject}\r\nMessage-ID: <bench.{number}@example.com>\r\n{reply}"
        f"Date: {time.strftime(DATE, time.gmtime(1_700_000_000 + day * 86400 + number))}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def _parse(ids: list[int]) -> int:
    from fetcher.ingest import parsing

    for start in range(0, len(ids), 500):
        parsing.parse_messages(ids[start : start + 500])
    return len(ids)


def fill(count: int) -> Any:
    from accounts.models import Mailbox, User
    from fetcher import folders
    from fetcher.ingest import storing

    owner = User.objects.create_user("alice")
    boxes = []
    for name in ("İş", "Ev", "Dernek"):
        box = Mailbox(owner=owner, name=name, email_address=f"{name}@example.net", incoming_host="localhost")
        box.incoming_port, box.incoming_login, box.smtp_host = 995, name, "localhost"
        box.set_incoming_password("unused")
        box.save()
        boxes.append(box)
    rng = random.Random(27)  # noqa: S311 -- the same made-up mail on every run
    ids: list[int] = []
    started = time.perf_counter()
    for start in range(0, count, 1000):
        box = boxes[(start // 1000) % len(boxes)]
        batch = [
            storing.Fetched(f"b{n}", make_message(n, rng)) for n in range(start, min(start + 1000, count))
        ]
        ids += storing.store_pop3_batch(mailbox=box, folder=folders.inbox_of(box), batch=batch)
    with multiprocessing.get_context("spawn").Pool(2, initializer=_setup_worker) as pool:
        pool.map(_parse, [ids[0::2], ids[1::2]])
    print(f"filled {count:,} messages in {time.perf_counter() - started:.0f} s (stored and parsed)")
    return owner


def median_ms(run: Callable[[], Any]) -> float:
    run()  # warm caches and connections once
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def count_queries(run: Callable[[], Any]) -> int:
    """Statements one request sends (the test client resets Django's own query log per request)."""
    from django.db import connection

    count = 0

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        run()
    return count


def get(client: Any, url: str, **params: str) -> Callable[[], Any]:
    def run() -> Any:
        response = client.get(url, params)
        assert response.status_code == 200, response.status_code
        return response

    return run


def bare_sql(sql: str, params: list[Any]) -> Callable[[], Any]:
    import psycopg

    connection = psycopg.connect(bench_database_url())

    def run() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return run


def three(args: argparse.Namespace) -> None:
    """The earlier case: three mailboxes, VACUUM ANALYZE, timed through Django's test client."""
    from django.db import connection
    from django.test import Client

    from fetcher.mail import search
    from fetcher.models import Message
    from fetcher.selectors import Cursor, view_folder_ids

    owner = fill(args.messages)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE fetcher_message")
    client = Client()
    client.force_login(owner)
    folders = view_folder_ids(owner, "inbox")
    middle = Message.objects.order_by("-sort_date", "-id").values_list("sort_date", "id")[args.messages // 2]
    deep = Cursor(*middle).encode()
    columns = "message.id, public_id, subject, from_name, from_address, snippet, sort_date, seen, flagged"
    page_sql = (
        f"SELECT {columns} FROM fetcher_message message WHERE folder_id = ANY(%s)"  # noqa: S608 -- constant columns
        " AND (sort_date, message.id) < (%s, %s) ORDER BY sort_date DESC, message.id DESC LIMIT 51"
    )
    far = ("infinity", 2**62)
    search_sql = (
        f"SELECT {columns} FROM fetcher_message message JOIN accounts_mailbox m ON m.id = mailbox_id"  # noqa: S608
        " WHERE m.owner_id = %s AND search_vector @@ %s::tsquery"
        " ORDER BY sort_date DESC, message.id DESC LIMIT 51"
    )
    rare, common = "ışık görüşme", "toplantı"
    figures = [
        ("first page of all inboxes", get(client, "/"), bare_sql(page_sql, [folders, *far])),
        (
            "a page halfway down (keyset)",
            get(client, "/", after=deep),
            bare_sql(page_sql, [folders, *middle]),
        ),
        (
            f"search '{common}' (a common word)",
            get(client, "/mail/search/", q=common),
            bare_sql(search_sql, [owner.pk, search.tsquery(common)]),
        ),
        (
            f"search '{rare}' (two words)",
            get(client, "/mail/search/", q=rare),
            bare_sql(search_sql, [owner.pk, search.tsquery(rare)]),
        ),
        (
            "search 'from:kişi7 bütçe'",
            get(client, "/mail/search/", q="from:kişi7 bütçe"),
            bare_sql(search_sql, [owner.pk, search.tsquery("bütçe")]),
        ),
    ]
    print(f"\n{args.messages:,} messages in one user's 3 mailboxes; median of {RUNS} requests\n")
    for name, page, bare in figures:
        server, sql = median_ms(page), median_ms(bare)
        print(f"  {name:<38} {server:6.1f} ms  (bare SQL {sql:5.1f} ms), {count_queries(page)} SQL queries")
    print("\ntargets: first page and deep page <= 50 ms, search <= 150 ms")


# --- the person ---------------------------------------------------------------------------------------------

SEARCHES = [
    ("a common word", "toplantı"),
    ("a rare two-word query", "ışık görüşme"),
    ("subject:", "subject:bülten"),
    ("from:", "from:zeynep"),
    ("to:", "to:proje-ekibi"),
    ("has:attachment", "has:attachment"),
    ("is:unread", "is:unread"),
    ("is:starred", "is:starred"),
    ("before:", "before:2023-01-01"),
    ("after:", "after:2026-06-01"),
    ("in:", "in:faturalar"),
]
DEEP_PAGES = (2, 5, 10, 25, 50, 100)


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    conversations: bool = False  # the user's setting while this page is timed


def search_path(query: str) -> str:
    return "/mail/search/?" + urlencode({"q": query})


def page_cursors(inbox: Any) -> dict[int, str]:
    """The `after` cursor of each deep page of the inbox (page n starts after (n - 1) x 50 messages)."""
    from fetcher.models import Message
    from fetcher.selectors import PAGE_SIZE, Cursor

    newest = Message.objects.filter(folder=inbox).order_by("-sort_date", "-id")
    rows = list(newest.values_list("sort_date", "id")[: max(DEEP_PAGES) * PAGE_SIZE])
    last = min(max(DEEP_PAGES), (len(rows) - 1) // PAGE_SIZE + 1)  # the last page that has mail
    pages = sorted({page for page in DEEP_PAGES if page < last} | {last})
    return {page: Cursor(*rows[(page - 1) * PAGE_SIZE - 1]).encode() for page in pages if page > 1}


def public_id(message_id: str) -> str:
    from fetcher.models import Message

    return str(Message.objects.values_list("public_id", flat=True).get(message_id=message_id))


def person_cases(found: person.Person, cursors: dict[int, str]) -> list[Case]:
    deepest = max(cursors)
    mail = found.mail
    single = public_id(mail.singles[len(mail.singles) // 2])
    discussion = public_id(mail.long.ids[-1])
    return [
        Case("first page of the inbox", "/"),
        Case(f"page {deepest} of the inbox (cursor)", "/?" + urlencode({"after": cursors[deepest]})),
        Case("conversation list, first page", "/", conversations=True),
        Case("opening a message", f"/mail/m/{single}/"),
        Case(f"opening a conversation ({len(mail.long.ids)} messages)", f"/mail/m/{discussion}/", True),
        Case("preferences (the sidebar alone)", "/account/preferences/"),
        *(Case(f"search {query} ({what})", search_path(query)) for what, query in SEARCHES),
    ]


def load_paths(found: person.Person, cursors: dict[int, str]) -> list[str]:
    """What the readers ask for, in turn: first pages, deeper pages, message opens, searches."""
    from fetcher.models import Folder

    sent = Folder.objects.get(mailbox=found.mailbox, role="sent").public_id
    folders = [f"/mail/folder/{folder.public_id}/" for folder in found.folders] + [f"/mail/folder/{sent}/"]
    deep = ["/?" + urlencode({"after": cursor}) for cursor in cursors.values()]
    opens = [f"/mail/m/{public_id(message_id)}/" for message_id in found.mail.singles[:10]]
    opens.append(f"/mail/m/{public_id(found.mail.long.ids[-1])}/")
    paths = ["/"] * 4 + folders + deep + opens + [search_path(query) for _what, query in SEARCHES]
    random.Random(3).shuffle(paths)  # noqa: S311 -- the same order on every run
    return paths


def table_state(database_url: str) -> str:
    """Whether anything analysed or vacuumed the messages (the statistics views, not the table)."""
    import psycopg

    with psycopg.connect(database_url) as connection:
        autovacuum = connection.execute("SHOW autovacuum").fetchone()
        row = connection.execute(
            "SELECT coalesce(greatest(last_analyze, last_autoanalyze)::text, 'never'),"
            " coalesce(greatest(last_vacuum, last_autovacuum)::text, 'never'), n_live_tup, n_dead_tup"
            " FROM pg_stat_user_tables WHERE relname = 'fetcher_message'"
        ).fetchone()
    assert autovacuum is not None
    assert row is not None
    return (
        f"autovacuum {autovacuum[0]}; fetcher_message analysed: {row[0]}, vacuumed: {row[1]},"
        f" {row[2]:,} live and {row[3]:,} dead row versions"
    )


def describe(found: person.Person, count: int) -> None:
    counts, (stored, parsed) = found.mail.counts, found.fill_seconds
    extra = counts.messages - count
    print(
        f"\nfilled in {stored + parsed:.0f} s: stored in {stored:.0f} s"
        f" ({counts.messages / stored:,.0f} msg/s), parsed in {parsed:.0f} s"
        f" ({counts.messages / parsed:,.0f} msg/s, 2 processes)"
    )
    print(
        f"mailbox: {count:,} messages in INBOX + {extra:,} in "
        f"{', '.join(folder.name for folder in found.folders)}; empty Sent, Drafts, Trash, Junk;"
        f" {counts.size / counts.messages / 1024:.1f} KB each"
    )
    print(
        f"  {counts.unread / count:.0%} of INBOX unread, {counts.flagged / count:.1%} flagged,"
        f" {counts.attachments / counts.messages:.1%} with an attachment;"
        f" {counts.notifications / counts.messages:.0%} notifications ({len(person.NOTIFICATIONS)} subjects),"
        f" {counts.discussion / counts.messages:.0%} in discussions (longest {len(found.mail.long.ids)},"
        f" {counts.subject_only_replies:,} replies with only a Re: subject)"
    )


def person_case(args: argparse.Namespace) -> None:
    from django.test import Client

    from accounts.models import User

    database_url = bench_database_url()
    state = "kept" if args.reuse else "fresh"
    print(f"{state} database {database_url.rsplit('/', 1)[-1]}: {table_state(database_url)}")
    if args.reuse:
        print(f"\nreusing the {args.messages:,}-message mailbox an earlier run filled")
        found = person.refound(args.messages)
    else:
        print(f"\nfilling one IMAP mailbox with {args.messages:,} messages")
        found = person.fill(args.messages)
        describe(found, args.messages)
    if args.hold_until:  # fill while the machine is busy, measure once it is quiet
        print(f"filled; measuring once {args.hold_until} exists", flush=True)
        while not Path(args.hold_until).exists():
            time.sleep(1)
    when = "reused: as the earlier run left it" if args.reuse else "no ANALYZE, no VACUUM"
    print(f"before the first request ({when}): {table_state(database_url)}")
    cursors = page_cursors(found.inbox)
    with web.gunicorn(database_url) as port:
        reader = web.Reader(port, web.log_in(port, found.owner.username, person.PASSWORD))
        client = Client()  # the same pages once in this process, for their SQL
        client.force_login(found.owner)
        cases = person_cases(found, cursors)
        failed = time_pages(
            args, database_url=database_url, owner=found.owner, reader=reader, client=client, cases=cases
        )
        User.objects.filter(pk=found.owner.pk).update(conversations=args.load_conversations == "on")
        failed += run_load(args, database_url, port, found, cursors)
    print(f"\nafter the run: {table_state(database_url)}")
    if failed:
        raise SystemExit(f"bench: {', '.join(failed)}")


def time_pages(
    args: argparse.Namespace,
    *,
    database_url: str,
    owner: Any,
    reader: web.Reader,
    client: Any,
    cases: list[Case],
) -> list[str]:
    """Each page over HTTP, then its SQL captured in this process and replayed; returns what failed."""
    from accounts.models import User

    limit = 25 if args.messages <= 100_000 else 50
    failed = []
    print(f"\n{'page, over HTTP':<46} {'median (min-max)':>24} {'first':>9} {'bare SQL':>9} queries")
    for case in cases:
        User.objects.filter(pk=owner.pk).update(conversations=case.conversations)
        timing = reader.time(case.path)
        if timing.problem:
            web.cancel_runaways(database_url)
        statements = web.captured_sql(client, case.path)
        bare = web.replayed(database_url, statements)
        problem = timing.problem or statements.problem or bare.problem
        verdict = "met" if timing.median <= limit and not problem else "OVER"
        spread = f"({min(timing.repeated):.1f}-{max(timing.repeated):.1f})"
        print(
            f"  {case.name:<44} {timing.median:7.1f} ms {spread:>14} {timing.first:6.1f} ms"
            f" {bare.median:6.1f} ms {statements.queries:7}   <= {limit} ms: {verdict}"
        )
        if problem:
            print(f"      {problem}")
            failed.append(f"{case.name}: {problem}")
        if args.sql:
            for statement, ms in itertools.zip_longest(statements.sql, bare.each):
                print(f"      {'' if ms is None else f'{ms:6.2f} ms':>9}  {statement}")
    runs = web.REPETITIONS
    print(f"\nmedian of {runs} requests after 1 warm-up ('first'), signed in through the login form;")
    print(f"bare SQL: the page's statements replayed on a plain connection (median of {runs});")
    print(
        "queries: how many (BEGIN, COMMIT not counted); conversations off but for the two conversation cases."
    )
    if reader.closed:
        print("the server closed the connection after an answer: some requests reconnected.")
    print("target: every page <= 25 ms at 100,000 messages, <= 50 ms at 1,000,000")
    return failed


def run_load(
    args: argparse.Namespace, database_url: str, port: int, found: person.Person, cursors: dict[int, str]
) -> list[str]:
    if args.load_seconds <= 0:
        return []
    if shutil.which("wrk") is None:
        print("\nload test skipped: wrk is not installed (Debian/Ubuntu: sudo apt-get install wrk)")
        return []
    paths = load_paths(found, cursors)
    sessions = web.made_sessions(found.owner, args.readers)
    failed = []
    # Flat out (each reader asks again the moment it has its answer) shows the throughput; the
    # latency that a person meets is that of readers who look at each page before the next.
    for think in dict.fromkeys((0, args.think_ms)):
        pace = f"each looking {think} ms on average at a page" if think else "flat out, no pause"
        print(
            f"\nload: {args.readers} signed-in readers at once (wrk, one session each),"
            f" {args.load_seconds} s, {pace}, rotating over {len(paths)} pages,"
            f" conversations {args.load_conversations}"
        )
        load = web.wrk_load(port, sessions, paths, args.load_seconds, think)
        web.cancel_runaways(database_url)
        verdict = "met" if load.p95 <= 200 else "OVER"
        print(
            f"  {load.requests:,} requests in {load.seconds:.1f} s"
            f" = {load.requests / load.seconds:,.1f} requests/s;"
            f" latency p50 {load.p50:.1f} ms, p95 {load.p95:.1f} ms, p99 {load.p99:.1f} ms"
        )
        print(
            f"  target p95 <= 200 ms: {verdict}; answers other than 200: {load.not_ok};"
            f" socket errors: {load.socket_errors}"
        )
        if load.not_ok or load.unanswered:
            failed.append(
                f"under load {load.not_ok} answers were not 200 and {load.unanswered} requests had no answer"
            )
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--case", choices=("person", "three"), default="person")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--load-seconds", type=int, default=30, help="the wrk load test (person; 0: none)")
    parser.add_argument("--readers", type=int, default=50, help="concurrent readers in the load test")
    parser.add_argument(
        "--think-ms", type=int, default=1000, help="how long a reader looks at a page (the paced load run)"
    )
    parser.add_argument("--sql", action="store_true", help="print each page's SQL statements (person)")
    parser.add_argument(
        "--hold-until", metavar="PATH", help="after the fill, wait for PATH to exist (person)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the mailbox an earlier run of the same --messages left in the database (person)",
    )
    parser.add_argument(
        "--load-conversations", choices=("on", "off"), default="on", help="the setting during the load test"
    )
    args = parser.parse_args()
    if args.reuse and args.case != "person":
        parser.error("--reuse is for the person case")
    web.secret_key()  # before Django reads it: sessions made here must be valid in gunicorn
    os.environ.setdefault("WEBMAIL_ENCRYPTION_KEYS", base64.urlsafe_b64encode(os.urandom(32)).decode())
    setup_django(fresh=not args.reuse)
    for noisy in ("fetcher", "axes"):  # a line per sync or sign-in would bury the figures
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from django.conf import settings

    from fetcher import enqueue

    settings.ALLOWED_HOSTS = ["*"]
    enqueue.parse_messages = lambda ids: None  # parsed here, in two processes
    if args.case == "three":
        three(args)
    else:
        person_case(args)


if __name__ == "__main__":
    main()
