"""The reading benchmark's web side: gunicorn as `./postane run` starts it, timed over HTTP.

A page's figure is its time over a real connection to gunicorn (the WSGI server, Django, the
queries, the template, the network stack), beside the time of the very SQL statements that
page runs (captured in this process through Django's test client, then replayed on a plain
psycopg connection): the difference is what Postane adds to the database's work.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPResponse, RemoteDisconnected
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REPETITIONS = 5
LOAD_SCRIPT = BASE_DIR / "bench" / "reading_load.lua"
SAVEPOINTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def secret_key() -> str:
    """One SECRET_KEY for this process and gunicorn: sessions made here must be valid there."""
    return os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))


# --- gunicorn -------------------------------------------------------------------------------------------


def web_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """What `./postane run` gives the web process (webmail/launcher.py app_env), on the bench database."""
    env = dict(os.environ)
    env.update(
        DEBUG="false",
        SECRET_KEY=secret_key(),
        ALLOWED_HOSTS=f"{HOST},localhost",
        WEBMAIL_HTTPS="false",
        DATABASE_URL=database_url,
        WEBMAIL_DATA_DIR=str(data_dir),
        STATIC_ROOT=str(data_dir / "static"),
        DJANGO_SETTINGS_MODULE="webmail.settings",
    )
    return env


@contextmanager
def gunicorn(database_url: str) -> Iterator[int]:
    """gunicorn with the launcher's own command line on a free loopback port; yields the port."""
    from webmail import launcher

    data_dir = Path(tempfile.mkdtemp(prefix="postane-bench-web-"))
    env = web_env(database_url, data_dir)
    collect = [launcher.PYTHON, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"]
    subprocess.run(collect, cwd=BASE_DIR, env=env, check=True)  # DEBUG off serves the manifest's files
    port = launcher.free_port(HOST)
    argv = launcher.app_commands(HOST, port, data_dir, 1)["web"]
    log_path = data_dir / "gunicorn.log"
    with log_path.open("ab") as log:
        web = subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            launcher.wait_until(lambda: _answers(web, port, log_path), "gunicorn")
            workers = env.get("WEB_CONCURRENCY", "2 (webmail/gunicorn_conf.py)")
            print(f"gunicorn on {HOST}:{port}: {' '.join(argv[1:])}; workers: {workers}", flush=True)
            yield port
        finally:
            launcher.stop_process(web, "gunicorn")
            shutil.rmtree(data_dir, ignore_errors=True)


def _answers(web: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    if web.poll() is not None:
        sys.stderr.write(log.read_text(errors="replace")[-3000:])
        raise SystemExit(f"bench: gunicorn exited at start-up (exit code {web.returncode})")
    try:
        connection = HTTPConnection(HOST, port, timeout=5)
        connection.request("GET", "/login/")
        return connection.getresponse().status == 200
    except OSError:
        return False


# --- signing in -----------------------------------------------------------------------------------------


def _cookies(response: HTTPResponse) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def log_in(port: int, username: str, password: str) -> str:
    """Sign in through the login form, CSRF token and all, as a browser does; returns the session cookie."""
    from django.conf import settings

    connection = HTTPConnection(HOST, port, timeout=60)
    connection.request("GET", "/login/")
    response = connection.getresponse()
    page = response.read().decode()
    csrf = _cookies(response)[settings.CSRF_COOKIE_NAME]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None, "no CSRF token in the login form"
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token[1]})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"{settings.CSRF_COOKIE_NAME}={csrf}",
    }
    connection.request("POST", "/login/", body=form, headers=headers)
    response = connection.getresponse()
    response.read()
    session = _cookies(response).get(settings.SESSION_COOKIE_NAME)
    if response.status != 302 or not session:
        raise SystemExit(f"bench: signing in answered {response.status}, not a redirect with a session")
    return f"{settings.SESSION_COOKIE_NAME}={session}"


def made_sessions(user: Any, count: int) -> list[str]:
    """Signed-in sessions made in Django's session store, as django.contrib.auth.login() fills them
    (a login through the form hashes the password: 50 of them would take a minute)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from webmail.sessions import STARTED

    store = import_module(settings.SESSION_ENGINE).SessionStore
    cookies = []
    for _ in range(count):
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session[STARTED] = int(time.time())
        session.create()
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
    return cookies


# --- timing one page ------------------------------------------------------------------------------------

# gunicorn's worker timeout (webmail/gunicorn_conf.py): a page slower than this fails for the person
# too, so the captured and replayed SQL stop there as well (statement_timeout).
PATIENCE_SECONDS = 60
SLOW_MS = 10_000.0  # a page this slow is timed once, not repeated: it has failed its target anyway


@dataclass(frozen=True)
class Timing:
    samples: list[float]  # milliseconds, the warm-up first
    problem: str = ""  # why there is no figure: "no answer (RemoteDisconnected)", "answered 500"

    @property
    def first(self) -> float:
        return self.samples[0]

    @property
    def repeated(self) -> list[float]:
        return self.samples[1:] or self.samples[:1]

    @property
    def median(self) -> float:
        return statistics.median(self.repeated)


class Reader:
    """One signed-in browser tab over one HTTP/1.1 connection (reopened when the server closes it)."""

    def __init__(self, port: int, cookie: str) -> None:
        self.connection = HTTPConnection(HOST, port, timeout=PATIENCE_SECONDS + 30)
        self.headers = {"Cookie": cookie}
        self.closed = False  # the server closed the connection after an answer

    def get(self, path: str) -> int:
        try:
            response = self._ask(path)
        except (RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # An idle keep-alive connection the server has since closed (gunicorn's `keepalive`):
            # a browser opens a new one, and so does the reader.
            self.connection.close()
            response = self._ask(path)
        response.read()
        self.closed = self.closed or response.will_close
        return response.status

    def _ask(self, path: str) -> HTTPResponse:
        self.connection.request("GET", path, headers=self.headers)
        return self.connection.getresponse()

    def time(self, path: str) -> Timing:
        """One warm-up request, then REPETITIONS timed ones (none when the warm-up was very slow)."""
        samples: list[float] = []
        for _ in range(1 + REPETITIONS):
            started = time.perf_counter()
            try:
                status = self.get(path)
            except (OSError, HTTPException) as exc:  # gunicorn killed the worker: no answer at all
                self.connection.close()
                return Timing(samples or [(time.perf_counter() - started) * 1000], f"no answer ({exc!r})")
            samples.append((time.perf_counter() - started) * 1000)
            if status != 200:
                return Timing(samples, f"answered {status}")
            if samples[0] > SLOW_MS:
                break
        return Timing(samples)


# --- the same page's SQL, bare ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Statements:
    sql: list[str]
    problem: str = ""

    @property
    def queries(self) -> int:
        """Statements but the transaction control Django logs beside them (BEGIN, COMMIT)."""
        return sum(statement not in {"BEGIN", "COMMIT", "ROLLBACK"} for statement in self.sql)


def captured_sql(client: Any, path: str) -> Statements:
    """The statements one request for `path` sends, as PostgreSQL received them (values inlined)."""
    from django.db import DatabaseError, connection
    from django.test.utils import CaptureQueriesContext

    problem = ""
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{PATIENCE_SECONDS}s'")
    try:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        if response.status_code != 200:
            problem = f"answered {response.status_code} in this process"
    except DatabaseError as exc:
        problem = f"stopped in this process: {str(exc).strip().splitlines()[0]}"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    return Statements([str(query["sql"]) for query in captured.captured_queries], problem)


@dataclass(frozen=True)
class Replayed:
    median: float  # milliseconds, the statements' summed time
    each: list[float | None]  # each statement's median (None: a savepoint, not replayed)
    problem: str = ""


def replayed(database_url: str, statements: Statements) -> Replayed:
    """The median, over REPETITIONS after one warm-up, of the statements' summed time on a plain connection.

    Each statement commits on its own as in the web process (autocommit; Django's BEGIN and
    COMMIT are replayed as they came). Savepoints, which need Django's transaction, are left out.
    """
    import psycopg

    runnable = [statement for statement in statements.sql if not statement.startswith(SAVEPOINTS)]
    runs: list[list[float]] = []
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SET TIME ZONE 'UTC'")  # as Django sets it
        connection.execute(f"SET statement_timeout = '{PATIENCE_SECONDS}s'")
        for _ in range(1 + REPETITIONS):
            try:
                runs.append([_run(connection, statement) for statement in runnable])
            except psycopg.errors.QueryCanceled:
                return Replayed(PATIENCE_SECONDS * 1000, [], f"over {PATIENCE_SECONDS} s")
            if sum(runs[0]) > SLOW_MS:
                break
    repeated = runs[1:] or runs
    medians = iter([statistics.median(times) for times in zip(*repeated, strict=True)])
    each = [None if statement.startswith(SAVEPOINTS) else next(medians) for statement in statements.sql]
    return Replayed(statistics.median(sum(run) for run in repeated), each)


def _run(connection: Any, statement: str) -> float:
    started = time.perf_counter()
    cursor = connection.execute(statement.encode())
    if cursor.description is not None:
        cursor.fetchall()
    return (time.perf_counter() - started) * 1000


def cancel_runaways(database_url: str) -> int:
    """Cancel the bench database's queries still running from a request gunicorn gave up on.

    gunicorn kills a worker after its timeout, but PostgreSQL only notices the client is gone
    when it sends the result: a runaway query would slow every later figure.
    """
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        cancelled = connection.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state = 'active' AND now() - query_start > interval '2 s'"
        ).fetchall()
    return len(cancelled)


# --- many readers at once --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50: float
    p95: float
    p99: float
    not_ok: int  # answers other than 200
    socket_errors: str  # "connect 0, read 0, write 0, timeout 0": a request with no answer at all

    @property
    def unanswered(self) -> int:
        return sum(int(part.split()[-1]) for part in self.socket_errors.split(","))


def wrk_load(port: int, cookies: list[str], paths: list[str], seconds: int, think_ms: int = 0) -> Load:
    """`wrk` with one thread and one connection per reader, each with its own session
    (bench/reading_load.lua), requests rotating over `paths`; each reader waits about `think_ms`
    (uniformly half to one and a half times) before its next request, 0: none."""
    workdir = Path(tempfile.mkdtemp(prefix="postane-bench-wrk-"))
    try:
        (workdir / "cookies").write_text("\n".join(cookies) + "\n")
        (workdir / "paths").write_text("\n".join(paths) + "\n")
        readers = str(len(cookies))
        argv = [
            "wrk",
            "-t",
            readers,
            "-c",
            readers,
            "-d",
            f"{seconds}s",
            "--timeout",
            f"{PATIENCE_SECONDS + 10}s",
        ]
        argv += ["-s", str(LOAD_SCRIPT), f"http://{HOST}:{port}", "--"]
        argv += [str(workdir / "cookies"), str(workdir / "paths"), str(think_ms)]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 300)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("postane "):
            _prefix, name, value = line.split(" ", 2)
            found[name] = value
    if result.returncode != 0 or "requests" not in found:
        raise SystemExit(f"bench: wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    return Load(
        int(found["requests"]),
        float(found["seconds"]),
        float(found["p50"]) / 1000,
        float(found["p95"]) / 1000,
        float(found["p99"]) / 1000,
        int(found["not_ok"]),
        found["socket_errors"],
    )
