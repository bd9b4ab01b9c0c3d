"""The command line as a script runs it: `manage.py mailbox ...` in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.conftest import BASE_DIR, database_url_for_subprocess

Manage = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def manage(mail_ca_file: str) -> Manage:
    def run(
        *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "DATABASE_URL": database_url_for_subprocess(),
            "WEBMAIL_ALLOWED_MAIL_NETWORKS": "127.0.0.0/8,::1/128",
            "WEBMAIL_ALLOWED_MAIL_PORTS": "any",
            "WEBMAIL_EXTRA_CA_FILE": mail_ca_file,
            **(env or {}),
        }
        return subprocess.run(
            [sys.executable, "manage.py", "mailbox", *args],
            cwd=BASE_DIR,
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run
