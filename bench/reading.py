"""Reading benchmark: server time of the mail list, a deep page and search with 100,000 messages.

    ./postane bench-reading                    # 100,000 messages in one user's three mailboxes
    ./postane bench-reading --messages 20000   # quicker

Messages go through Postane's own ingest (stage one with COPY, stage two in two processes), so
the search vectors are the real ones. Each figure is the median of repeated requests through
Django's test client (view, queries and template; no network), printed beside the bare SQL
query behind the page, run on the same database in the same run. Uses the database
`postane_bench` (dropped and created) on the server of DATABASE_URL.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.ingest import _setup_worker, bench_database_url, setup_django  # noqa: E402

# Words as mail uses them: a few very common ones, the content words rarer (a Zipf
# distribution over 5,000 words), so that a search for a content word matches a few per cent of
# the mailbox, as in real mail, and a common one much more.
STOPWORDS = [
    "ve",
    "bir",
    "bu",
    "da",
    "de",
    "için",
    "ile",
    "çok",
    "daha",
    "gibi",
    "olarak",
    "ama",
    "the",
    "and",
    "to",
    "of",
    "a",
    "in",
    "is",
    "for",
    "on",
    "with",
]
CONTENT = [
    "toplantı",
    "rapor",
    "bütçe",
    "proje",
    "teklif",
    "fatura",
    "sözleşme",
    "ışık",
    "istanbul",
    "ankara",
    "izmir",
    "görüşme",
    "takvim",
    "plan",
    "müşteri",
    "sipariş",
    "kargo",
    "teslimat",
    "ödeme",
    "hesap",
    "banka",
    "kredi",
    "yazılım",
    "sunucu",
    "güncelleme",
    "yedek",
    "güvenlik",
    "meeting",
    "report",
    "budget",
    "project",
    "invoice",
    "contract",
    "delivery",
    "payment",
    "server",
    "update",
    "backup",
    "security",
    "çalışma",
    "grubu",
    "öneri",
    "karar",
]
SYLLABLES = [
    "ka",
    "le",
    "mi",
    "na",
    "sa",
    "ta",
    "ro",
    "du",
    "be",
    "ye",
    "zi",
    "lu",
    "çe",
    "şa",
    "ğı",
    "öz",
    "ün",
    "ay",
    "ev",
    "ık",
    "ol",
    "ar",
    "en",
]


def vocabulary(size: int = 5000) -> list[str]:
    rng = random.Random(5)  # noqa: S311 -- the same made-up words on every run
    words = list(STOPWORDS)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in words:
            words.append(word)
    for position, word in enumerate(CONTENT):  # content words from rank 200 on, one every 40
        words[200 + 40 * position] = word
    return words


WORDS = vocabulary()
WEIGHTS = list(itertools.accumulate(1 / rank for rank in range(1, len(WORDS) + 1)))


def text(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(WORDS, cum_weights=WEIGHTS, k=count))


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
    from fetcher import ingest

    for start in range(0, len(ids), 500):
        ingest.parse_messages(ids[start : start + 500])
    return len(ids)


def fill(count: int) -> Any:
    from accounts.models import Mailbox, User
    from fetcher import ingest

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
            ingest.Fetched(f"b{n}", make_message(n, rng)) for n in range(start, min(start + 1000, count))
        ]
        ids += ingest.store_pop3_batch(mailbox=box, folder=ingest.inbox_of(box), batch=batch)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    setup_django()
    logging.getLogger("fetcher").setLevel(logging.WARNING)
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from fetcher import ingest, search
    from fetcher.models import Message
    from fetcher.selectors import Cursor, view_folder_ids

    settings.ALLOWED_HOSTS = ["*"]
    ingest.queue_parsing = lambda ids: None  # parsed here, in two processes
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


if __name__ == "__main__":
    main()
