"""`./postane run` on a fresh data folder: embedded PostgreSQL and Redis, web, worker, beat."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psutil
import pytest
import redis

from tests.conftest import BASE_DIR, wait_for
from tests.servers.net import free_port
from webmail.launcher import _redis_major_version

pytestmark = pytest.mark.slow


@dataclass
class Run:
    process: subprocess.Popen[str]
    url: str
    output: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.output)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


def start_run(data_dir: Path) -> Run:
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "WEBMAIL_ENCRYPTION_KEYS", "ALLOWED_HOSTS"}
    }
    env |= {"WEBMAIL_HEARTBEAT_SECONDS": "2", "POSTANE_CONCURRENCY": "1", "WEB_CONCURRENCY": "1"}
    process = subprocess.Popen(
        ["./postane", "run", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = Run(process, f"http://127.0.0.1:{port}")
    assert process.stdout is not None
    threading.Thread(target=lambda: run.output.extend(process.stdout or []), daemon=True).start()
    wait_for(lambda: "Postane is running at" in run.text() or process.poll() is not None, "start-up", 180)
    assert process.poll() is None, run.text()
    return run


def stop_run(run: Run) -> None:
    pids = [child.pid for child in run.descendants()]
    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(timeout=90) == 0, run.text()
    still_there = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert still_there == [], run.text()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"
    leftovers = [
        p.pid for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    for pid in leftovers:  # never leave a stray server behind, even when the test failed
        os.kill(pid, signal.SIGKILL)


def get(url: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def healthy(run: Run) -> dict[str, Any] | None:
    status, body = get(f"{run.url}/healthz")
    return json.loads(body) if status == 200 else None


def log_in(run: Run, username: str, password: str) -> str:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    _status, page = get(f"{run.url}/login/", opener)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    form = urlencode({"csrfmiddlewaretoken": token[1], "username": username, "password": password}).encode()
    request = urllib.request.Request(f"{run.url}/login/", data=form, headers={"Referer": f"{run.url}/login/"})
    with opener.open(request, timeout=10) as response:
        return str(response.read().decode())


def assert_private(data_dir: Path) -> None:
    """Nothing under the data folder is open to other local users (root: PostgreSQL's group may pass)."""
    assert stat.S_IMODE(data_dir.stat().st_mode) == (0o710 if os.geteuid() == 0 else 0o700)
    assert stat.S_IMODE((data_dir / "secrets.env").stat().st_mode) == 0o600
    for path in data_dir.rglob("*"):
        mode = path.lstat().st_mode
        if not stat.S_ISSOCK(mode):  # PostgreSQL's socket sits in its 0700 folder
            assert stat.S_IMODE(mode) & 0o077 == 0, f"{path} is {stat.S_IMODE(mode):o}"


def assert_redis_wants_its_password(run: Run, data_dir: Path) -> None:
    port = int(re.findall(r"Redis is up on 127\.0\.0\.1:(\d+)", run.text())[-1])
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_timeout=5).ping()
    password = re.findall(r"(?m)^POSTANE_REDIS_PASSWORD=(\S+)$", (data_dir / "secrets.env").read_text())[0]
    server = redis.Redis(port=port, password=password, socket_timeout=5)
    assert server.ping()
    system = shutil.which("redis-server")
    if system is not None and _redis_major_version(system) >= 7:  # a maintained server is preferred
        assert int(str(server.info("server")["redis_version"]).split(".")[0]) >= 7
    cmdlines = " ".join(" ".join(child.cmdline()) for child in run.descendants())
    assert password not in cmdlines  # the command line is every local user's to read


def assert_idle_connections_hold_no_worker(run: Run) -> None:
    """Connections that never send their request (a browser's idle keep-alive or preconnect, a slow
    client) do not take the web server's only worker: the next page still answers."""
    host, port = urlsplit(run.url).hostname, urlsplit(run.url).port
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(8)]
    try:
        status, _page = get(f"{run.url}/login/")  # within get()'s 10 s
        assert status == 200
    finally:
        for connection in idle:
            connection.close()


def sign_in_line(run: Run) -> str:
    """The start-up's last line (it must end with how to sign in), once it is printed."""
    wait_for(lambda: "sign in " in run.text().rpartition("Postane is running at")[2], "the sign-in line", 10)
    return run.text().rstrip("\n").rpartition("\n")[2]


def test_the_run_command_brings_up_everything_and_leaves_nothing_behind(data_dir: Path) -> None:
    run = start_run(data_dir)
    try:
        # "running" only when it is true: /healthz is all green at once (a worker has reported in).
        health = healthy(run)
        assert health is not None, run.text()
        assert health["checks"]["worker"]["ok"] is True
        status, page = get(f"{run.url}/login/")
        assert status == 200
        assert "<h1>Log in</h1>" in page
        assert_idle_connections_hold_no_worker(run)

        # The start-up ends with the URL and the login, not buried in migrations and banners.
        found = re.fullmatch(
            r"postane: sign in as (\w+) with the password (\S+) \(also kept in .*", sign_in_line(run)
        )
        assert found is not None, run.text()
        username, password = found[1], found[2]
        assert "Applying " not in run.text()  # migrations, and Celery's banner, go to the logs
        assert "celery@" not in run.text()
        assert "celery@" in (data_dir / "logs" / "worker.log").read_text()
        assert "There is no mail here yet." in log_in(run, username, password)
        assert (data_dir / "first-admin.txt").read_text().count(password) == 1
        assert (data_dir / "postgres" / "PG_VERSION").exists()
        assert (data_dir / "redis").is_dir()
        assert_private(data_dir)
        assert_redis_wants_its_password(run, data_dir)
    finally:
        stop_run(run)

    # A second start reuses the data: same database, same administrator, same secrets. Folders an
    # older version left open to everyone (0755, 0644) are closed again.
    secrets_before = (data_dir / "secrets.env").read_text()
    for path in [data_dir, *(data_dir / "redis").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    again = start_run(data_dir)
    try:
        kept = data_dir / "first-admin.txt"
        assert (
            sign_in_line(again)
            == f"postane: sign in as an administrator (the first administrator's password: {kept})"
        )
        assert "There is no mail here yet." in log_in(again, username, password)
        assert (data_dir / "secrets.env").read_text() == secrets_before
        assert_private(data_dir)
        assert_redis_wants_its_password(again, data_dir)
    finally:
        stop_run(again)
