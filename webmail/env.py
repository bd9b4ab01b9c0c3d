"""Read settings from the environment, failing loudly on a bad value.

Every helper stops start-up with one line that names the variable when its value is
missing or malformed: an operator should never have to read a traceback to find a typo
in a `.env` file.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import sys
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import dj_database_url

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def fail(message: str) -> NoReturn:
    # Printed before exiting because gunicorn and Celery workers may swallow the
    # SystemExit message of a child process.
    print(f"postane: configuration error: {message}", file=sys.stderr)
    raise SystemExit(1)


def envstr(name: str, default: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(f"{name} is required")
    return default


def envbool(name: str, default: bool, env: Mapping[str, str] = os.environ) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int, minimum: int = 0, env: Mapping[str, str] = os.environ) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


def envlist(name: str, default: list[str], env: Mapping[str, str] = os.environ) -> list[str]:
    value = env.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or default


def envnetworks(
    name: str, env: Mapping[str, str] = os.environ
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in envlist(name, [], env=env):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not a network such as 10.0.0.0/8") from None
    return networks


MAIL_PORTS = [25, 110, 143, 465, 587, 993, 995]


def envports(name: str, env: Mapping[str, str] = os.environ) -> list[int] | None:
    """Ports and ranges ("25,587,10000-10100"); "any" lifts the limit. Default: the mail ports."""
    items = envlist(name, [], env=env)
    if items == ["any"]:
        return None
    ports: set[int] = set(MAIL_PORTS)
    for item in items:
        low, _sep, high = item.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not a port or a range such as 10000-10100") from None
        if not 1 <= first <= last <= 65535:
            raise ConfigError(f"{name}: {item!r} is outside 1-65535")
        ports.update(range(first, last + 1))
    return sorted(ports)


def database_from_env(name: str = "DATABASE_URL", env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    url = envstr(name, env=env)
    if urlsplit(url).scheme not in {"postgres", "postgresql"}:
        raise ConfigError(f"{name} must be a postgresql:// URL (Postane runs on PostgreSQL only)")
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{name} is not a valid database URL ({exc})") from None
    if not config.get("NAME"):
        raise ConfigError(f"{name} must name a database, as in postgresql://user@host:5432/postane")
    return config


def redis_url_from_env(name: str = "REDIS_URL", env: Mapping[str, str] = os.environ) -> str:
    url = envstr(name, env=env)
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL")
    try:
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"{name} has a malformed port") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{name} must name a host, as in redis://127.0.0.1:6379/0")
    return url


def encryption_keys_from_env(
    name: str = "WEBMAIL_ENCRYPTION_KEYS", required: bool = True, env: Mapping[str, str] = os.environ
) -> list[str]:
    """Fernet keys, newest first: the first encrypts, all of them decrypt (rotation)."""
    keys = envlist(name, [], env=env)
    if not keys and required:
        raise ConfigError(
            f"{name} is required (generate one with: python -c "
            '"import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())")'
        )
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError(f"{name}: key {position} is not 32 bytes of url-safe base64")
    return keys
