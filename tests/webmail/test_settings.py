"""Start-up configuration: a bad value stops the app with one line that names it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-with-more-than-fifty-random-characters-x7Q",
    "DATABASE_URL": "postgresql://postane:secret@db.internal:5432/postane",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "WEBMAIL_ENCRYPTION_KEYS": "dGVzdC1rZXktb25lLTMyLWJ5dGVzLWxvbmctLS0tLS0=",
    "ALLOWED_HOSTS": "mail.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://mail.example.com",
    "WEBMAIL_HTTPS": "true",
    "WEBMAIL_BEHIND_PROXY": "true",
    "WEBMAIL_HSTS_INCLUDE_SUBDOMAINS": "true",
    "WEBMAIL_HSTS_PRELOAD": "true",
}
_OUR_VARIABLES = {
    *PRODUCTION,
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "WEBMAIL_HSTS_SECONDS",
    "LOG_LEVEL",
    "TIME_ZONE",
    "ALLOW_SIGNUP",
}


def manage(*args: str, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in _OUR_VARIABLES}
    env.update(PRODUCTION)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], variable: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("postane: configuration error: ")
    assert variable in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_production_values_pass_the_deploy_checks_without_a_single_finding() -> None:
    result = manage("check", "--deploy", "--fail-level", "DEBUG")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_deploy_checks_do_find_a_weak_setting() -> None:
    # Proves the check above can fail: without HTTPS, Django warns about cookies and redirects.
    result = manage("check", "--deploy", "--fail-level", "WARNING", WEBMAIL_HTTPS="false")

    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "postgresql://user@host:notaport/postane"),
        ("DATABASE_URL", "sqlite:///db.sqlite3"),
        ("DATABASE_URL", "postgresql://user@host:5432/"),
        ("DATABASE_URL", None),
        ("SECRET_KEY", None),
        ("SECRET_KEY", "short"),
        ("REDIS_URL", "http://redis:6379"),
        ("REDIS_URL", "redis://redis:port/0"),
        ("WEBMAIL_ENCRYPTION_KEYS", None),
        ("WEBMAIL_ENCRYPTION_KEYS", "not-a-fernet-key"),
        ("ALLOWED_HOSTS", ""),
        ("DEBUG", "maybe"),
        ("WEBMAIL_HSTS_SECONDS", "a year"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_missing_or_malformed_value_stops_start_up_with_one_line_naming_it(
    variable: str, value: str | None
) -> None:
    result = manage("check", **{variable: value})

    assert_one_line_error(result, variable)


def test_debug_mode_runs_without_secret_or_encryption_keys() -> None:
    result = manage("check", DEBUG="true", SECRET_KEY=None, WEBMAIL_ENCRYPTION_KEYS=None, ALLOWED_HOSTS=None)

    assert result.returncode == 0, result.stderr


def test_the_celery_worker_refuses_to_start_with_the_same_one_line_error() -> None:
    env = {**os.environ, **PRODUCTION, "DATABASE_URL": "mysql://root@localhost/postane"}
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "webmail", "worker", "--pool", "solo"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "postane: configuration error: DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
