"""Ingest benchmark: Postane's POP3/IMAP fetch and parse rates beside bare baselines, in one run.

    ./postane bench                 # 10,000 messages of about 8 KB (the issue's figure)
    ./postane bench --messages 2000 # quicker

It starts its own Dovecot (as the tests do), fills a mailbox, and measures on the same machine
and the same mailbox: a bare poplib loop, a bare imaplib UID FETCH, the bare stdlib parse,
PostgreSQL COPY, fetchmail to a BSMTP file and getmail6 to a Maildir (Debian's fetchmail and
getmail6; skipped with a note when absent), then Postane's secured rate (raw bytes committed),
its searchable rate (fully parsed and indexed) with one and two processes, an unchanged poll,
and the peak memory while ingesting a 25 MB message. Uses the database `postane_bench`
(dropped and created; POSTANE_BENCH_DATABASE names another) on the server of DATABASE_URL.
"""

from __future__ import annotations

import argparse
import imaplib
import logging
import multiprocessing
import os
import poplib
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
USER, PASSWORD = "bench", "bench-password"
BIG_USER = "big"


def bench_database_name() -> str:
    """POSTANE_BENCH_DATABASE, so that two benchmarks can run on one server without dropping each other's."""
    return os.environ.get("POSTANE_BENCH_DATABASE", "").strip() or "postane_bench"


def bench_database_url() -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + quote(bench_database_name())))


def setup_django(*, fresh: bool = True) -> None:
    """Django on the benchmark's database: dropped and created again unless `fresh` is false."""
    import psycopg
    from psycopg import sql

    admin_url = os.environ["DATABASE_URL"]
    name = sql.Identifier(bench_database_name())
    if fresh:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- the mailbox ------------------------------------------------------------------------------------


def make_message(number: int, size: int = 8 * 1024) -> bytes:
    head = (
        f"Return-Path: <sender{number % 97}@example.com>\r\n"
        "Received: from mx.example.com by mail.example.net;\r\n"
        f" Fri, 27 Nov 2026 10:00:{number % 60:02d} +0300\r\n"
        f"From: =?utf-8?q?Ay=C5=9Fe_Y=C4=B1lmaz?= <sender{number % 97}@example.com>\r\n"
        f"To: Bench <bench@example.net>\r\n"
        f"Subject: =?utf-8?b?{_b64(f'Toplantı notları {number}')}?=\r\n"
        f"Date: Fri, 27 Nov 2026 10:{number % 60:02d}:00 +0300\r\n"
        f"Message-ID: <bench.{number}@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode()
    line = "Çalışma grubu ışık, ğüşöç İĞÜŞÖÇ; the quick brown fox jumps over the lazy dog.\r\n".encode()
    return head + line * max(1, (size - len(head)) // len(line))


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def fill(dovecot: Any, user: str, count: int) -> int:
    total = 0
    for number in range(count):
        raw = make_message(number)
        dovecot.deliver(user, raw, f"b{number}")
        total += len(raw)
    return total


# --- baselines ----------------------------------------------------------------------------------------


def timed(run: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = run()
    return count, time.perf_counter() - started


def bare_pop3(port: int) -> int:
    pop = poplib.POP3("127.0.0.1", port, timeout=60)
    pop.user(USER)
    pop.pass_(PASSWORD)
    _resp, listing, _octets = pop.uidl()
    for line in listing:
        pop.retr(int(line.split()[0]))
    pop.quit()
    return len(listing)


def bare_imap(port: int) -> int:
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login(USER, PASSWORD)
    _typ, data = imap.select("INBOX", readonly=True)
    total = int(data[0] or 0)
    for start in range(1, total + 1, 500):
        imap.uid("FETCH", f"{start}:{min(start + 499, total)}", "(BODY.PEEK[])")
    imap.logout()
    return total


def bare_parse(raws: list[bytes]) -> int:
    parser = BytesParser(policy=policy.default)
    for raw in raws:
        msg = parser.parsebytes(raw)
        _ = (msg["subject"], msg["from"], msg["date"])
        body = msg.get_body(("html", "plain"))
        if body is not None:
            body.get_content()
    return len(raws)


def postgres_copy(raws: list[bytes]) -> int:
    import psycopg

    with psycopg.connect(bench_database_url()) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE copy_bench (id int, raw bytea)")
        with cursor.copy("COPY copy_bench (id, raw) FROM STDIN") as copy:
            for number, raw in enumerate(raws):
                copy.write_row((number, raw))
        conn.commit()
    return len(raws)


def fetchmail(port: int, workdir: Path) -> int | None:
    if shutil.which("fetchmail") is None:
        return None
    rc = workdir / "fetchmailrc"
    account = f'user "{USER}" password "{PASSWORD}"'
    rc.write_text(f"poll 127.0.0.1 protocol pop3 port {port} {account} keep fetchall sslproto ''\n")
    rc.chmod(0o600)
    out = workdir / "out.bsmtp"
    env = {**os.environ, "HOME": str(workdir), "FETCHMAILHOME": str(workdir)}
    subprocess.run(
        [
            "fetchmail",
            "-f",
            str(rc),
            "--bsmtp",
            str(out),
            "--nodetach",
            "--silent",
            "--idfile",
            str(workdir / "ids"),
        ],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=3600,
    )
    if not out.exists():
        raise SystemExit("bench: fetchmail wrote nothing; run it by hand with -v to see why")
    data = out.read_bytes()
    return data.count(b"\nMAIL FROM:") + data.startswith(b"MAIL FROM:")


def getmail(port: int, workdir: Path, limit: int) -> int | None:
    if shutil.which("getmail") is None:
        return None
    maildir = workdir / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    rc = workdir / "getmailrc"
    deliver_as = ""
    if os.geteuid() == 0:  # getmail refuses to deliver as root: deliver as nobody, into a Maildir nobody owns
        deliver_as = "user = nobody\n"
        nobody = __import__("pwd").getpwnam("nobody")
        workdir.chmod(0o755)
        for path in [maildir, *maildir.iterdir()]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    rc.write_text(
        "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\n"
        f"port = {port}\nusername = {USER}\npassword = {PASSWORD}\n\n"
        f"[destination]\ntype = Maildir\npath = {maildir}/\n{deliver_as}\n"
        f"[options]\nread_all = true\ndelete = false\nmax_messages_per_session = {limit}\nverbose = 0\n"
    )
    subprocess.run(
        ["getmail", "--getmaildir", str(workdir), "--rcfile", str(rc)],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=3600,
    )
    return sum(1 for _ in (maildir / "new").iterdir())


# --- Postane --------------------------------------------------------------------------------------------


def postane_mailbox(protocol: str, port: int, login: str = USER, password: str = PASSWORD) -> Any:
    from accounts.models import Mailbox, User

    owner, _created = User.objects.get_or_create(username="bench")
    mailbox = Mailbox(
        owner=owner,
        name=f"{protocol}-{login}",
        email_address=f"{protocol}.{login}@example.net",
        protocol=protocol,
        incoming_host="localhost",
        incoming_port=port,
        incoming_security="none",
        incoming_login=login,
        smtp_host="localhost",
    )
    mailbox.set_incoming_password(password)
    mailbox.save()
    return mailbox


def postane_sync(mailbox: Any) -> int:
    from fetcher import sync

    result = sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=3600)
    if result.status != "done":
        raise SystemExit(f"bench: the sync ended with {result}")
    return result.fetched


def _setup_worker() -> None:
    import django

    django.setup()


def _parse_worker(ids: list[int]) -> int:
    from fetcher.ingest import parsing

    for start in range(0, len(ids), 500):  # as the parse tasks do, in task-sized pieces
        parsing.parse_messages(ids[start : start + 500])
    return len(ids)


def postane_parse(ids: list[int], processes: int) -> tuple[int, float]:
    """Parse with this many worker processes; timed once they are up, as Celery's pool would be."""
    chunks = [ids[index::processes] for index in range(processes)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_setup_worker) as pool:
        pool.map(int, range(processes))  # every process started and set up
        return timed(lambda: sum(pool.map(_parse_worker, chunks)))


def reset_parsed(mailbox_ids: list[Any]) -> list[int]:
    from fetcher.models import Message

    messages = Message.objects.filter(mailbox_id__in=mailbox_ids)
    messages.update(parse_state="pending", search_vector=None)
    return list(messages.order_by("id").values_list("id", flat=True))


def bare_poll(protocol: str, port: int) -> int:
    if protocol == "pop3":
        pop = poplib.POP3("127.0.0.1", port)
        pop.user(USER)
        pop.pass_(PASSWORD)
        pop.uidl()
        pop.quit()
    else:
        imap = imaplib.IMAP4("127.0.0.1", port)
        imap.login(USER, PASSWORD)
        imap.select("INBOX", readonly=True)
        imap.logout()
    return 1


POLLS = 15


def median_seconds(run: Callable[[], Any]) -> float:
    """One poll is a few milliseconds: take the median of several, alternating with nothing else."""
    samples = sorted(timed(run)[1] for _ in range(POLLS))
    return samples[len(samples) // 2]


def counted_queries(run: Callable[[], Any]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries)


def big_message_peak(dovecot: Any, port: int) -> tuple[int, int]:
    from fetcher.ingest import parsing
    from fetcher.models import Message

    raw = make_message(0, size=25 * 1024 * 1024)
    dovecot.deliver(BIG_USER, raw, "big")
    mailbox = postane_mailbox("pop3", port, BIG_USER, dovecot.users[BIG_USER])
    tracemalloc.start()
    postane_sync(mailbox)
    parsing.parse_messages(list(Message.objects.filter(mailbox=mailbox).values_list("id", flat=True)))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(raw), peak


# --- the run ---------------------------------------------------------------------------------------------


def rate(count: int | None, seconds: float) -> str:
    if count is None:
        return "not installed"
    return f"{count / seconds:,.0f} msg/s ({count} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--getmail-limit", type=int, default=2_000, help="getmail6 is slow: time this many")
    args = parser.parse_args()
    setup_django()
    from django.conf import settings

    from fetcher import enqueue
    from tests.servers.dovecot import start_dovecot

    settings.WEBMAIL_ALLOWED_MAIL_NETWORKS = [__import__("ipaddress").ip_network("127.0.0.0/8")]
    settings.WEBMAIL_ALLOWED_MAIL_PORTS = None
    enqueue.parse_messages = lambda ids: None  # the benchmark times the two stages apart
    logging.getLogger("fetcher").setLevel(logging.WARNING)  # one line per sync would bury the figures
    root = Path(tempfile.mkdtemp(prefix="postane-bench-"))
    dovecot = start_dovecot(root, None, {USER: PASSWORD, BIG_USER: "big-password"}, tls=False)
    try:
        run(args, dovecot, root)
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace, dovecot: Any, root: Path) -> None:
    pop3, imap = dovecot.ports["pop3"], dovecot.ports["imap"]
    size = fill(dovecot, USER, args.messages)
    raws = [make_message(number) for number in range(args.messages)]
    print(
        f"mailbox: {args.messages} messages, {size / args.messages / 1024:.1f} KB each; {os.cpu_count()} CPUs"
    )
    print("\nBaselines (same machine, same mailbox)")
    figures: dict[str, tuple[int | None, float]] = {}
    figures["bare poplib UIDL+RETR"] = timed(lambda: bare_pop3(pop3))
    figures["bare imaplib UID FETCH"] = timed(lambda: bare_imap(imap))
    figures["bare stdlib parse"] = timed(lambda: bare_parse(raws))
    figures["PostgreSQL COPY"] = timed(lambda: postgres_copy(raws))
    figures["fetchmail -> BSMTP file"] = timed(lambda: fetchmail(pop3, Path(tempfile.mkdtemp(dir=root))) or 0)
    figures["getmail6 -> Maildir"] = timed(
        lambda: getmail(pop3, Path(tempfile.mkdtemp(dir=root)), args.getmail_limit) or 0
    )
    for name, (count, seconds) in figures.items():
        print(f"  {name:<28} {rate(count, seconds)}")

    print("\nPostane")
    pop_box, imap_box = postane_mailbox("pop3", pop3), postane_mailbox("imap", imap)
    secured_pop = timed(lambda: postane_sync(pop_box))
    secured_imap = timed(lambda: postane_sync(imap_box))
    bare_loop = figures["bare poplib UIDL+RETR"][0] / figures["bare poplib UIDL+RETR"][1]  # type: ignore[operator]
    fetch_count, fetch_seconds = figures["fetchmail -> BSMTP file"]
    share = secured_pop[0] / secured_pop[1] / bare_loop
    print(f"  secured POP3                 {rate(*secured_pop)}  = {share:.0%} of the bare loop")
    if fetch_count:
        print(f"                               target: >= fetchmail {fetch_count / fetch_seconds:,.0f} msg/s")
    print(f"  secured IMAP                 {rate(*secured_imap)}  target: >= 4,000 msg/s")
    parse_base = figures["bare stdlib parse"][0] / figures["bare stdlib parse"][1]  # type: ignore[operator]
    for processes in (1, 2):
        ids = reset_parsed([pop_box.id])
        count, seconds = postane_parse(ids, processes)
        print(
            f"  searchable, {processes} process{'es' if processes > 1 else '  '}     {rate(count, seconds)}"
            f"  = {count / seconds / parse_base / processes:.0%} of bare parse per process"
        )
    for protocol, box, port in (("pop3", pop_box, pop3), ("imap", imap_box, imap)):
        poll = median_seconds(partial(postane_sync, box))
        bare = median_seconds(partial(bare_poll, protocol, port))
        queries = counted_queries(partial(postane_sync, box))
        print(
            f"  unchanged {protocol.upper()} poll (median of {POLLS})"
            f" {poll * 1000:.1f} ms vs bare {bare * 1000:.1f} ms"
            f" ({poll / bare:.2f}x; target <= 2x), {queries} SQL queries"
        )
    raw_size, peak = big_message_peak(dovecot, pop3)
    ratio = peak / raw_size
    print(f"  25 MB message peak memory    {peak / 2**20:.1f} MiB = {ratio:.1f}x its size (target < 4x)")


if __name__ == "__main__":
    main()
