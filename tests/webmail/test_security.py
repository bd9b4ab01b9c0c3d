"""The web process against hostile clients: the cache, proxies, sessions, caching, bodies, reset mail."""

from __future__ import annotations

import ipaddress
import pickle
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.auth import client_ip
from fetcher.models import Folder
from tests.factories import account_mailbox, mail, stored
from tests.personas import PASSWORD, Persona
from webmail.sessions import STARTED

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()  # the rate limits count in Redis, which outlives a test


class _Planted:
    """A pickle that, when loaded, creates a file: the shape of a code-execution payload."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return (Path.touch, (self.path,))


# --- point 5: nothing read from Redis is unpickled ------------------------------------


def test_a_pickle_planted_in_redis_under_a_session_or_cache_key_never_runs(
    client: Client, alice: Persona, tmp_path: Path
) -> None:
    client.force_login(alice.user)
    session_key = client.session.session_key
    assert session_key is not None
    planted = tmp_path / "code-ran"
    keys = [
        cache.make_key(f"django.contrib.sessions.cached_db{session_key}"),  # the session cache of old
        cache.make_key(f"connection-tests:{alice.user.pk}"),
    ]
    raw = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in keys:
        raw.set(key, pickle.dumps(_Planted(planted)))

    assert client.get(reverse("home")).status_code == 200
    assert cache.get(f"connection-tests:{alice.user.pk}") is None

    assert not planted.exists()


def test_the_cache_keeps_json_values_and_counts_in_redis() -> None:
    cache.set("value", {"a": [1, "ı"], "b": True})
    cache.add("counter", 0)
    cache.incr("counter")

    assert cache.get("value") == {"a": [1, "ı"], "b": True}
    assert cache.get("counter") == 1
    with pytest.raises(TypeError):
        cache.set("not-json", object())  # a value JSON cannot carry fails loudly, never pickles


# --- point 8: X-Forwarded-For only from trusted proxies ------------------------------


def log_in(client: Client, username: str, password: str, remote: str, forwarded: str) -> Any:
    return client.post(
        "/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=remote,
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def test_a_client_varying_x_forwarded_for_is_still_locked_out(
    client: Client, alice: Persona, settings: Any
) -> None:
    settings.WEBMAIL_BEHIND_PROXY = True
    for attempt in range(5):
        log_in(client, f"guess{attempt}", "wrong", "203.0.113.7", f"198.51.100.{attempt}")

    locked = log_in(client, "alice", PASSWORD, "203.0.113.7", "198.51.100.99")

    assert locked.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    client: Client, alice: Persona, settings: Any
) -> None:
    settings.WEBMAIL_BEHIND_PROXY = True
    for attempt in range(5):  # a spoofed entry left of what our proxy appended changes nothing
        log_in(client, f"guess{attempt}", "wrong", "127.0.0.1", f"10.9.9.{attempt}, 203.0.113.7")

    assert log_in(client, "alice", PASSWORD, "127.0.0.1", "1.2.3.4, 203.0.113.7").status_code == 429
    assert log_in(client, "alice", PASSWORD, "127.0.0.1", "203.0.113.8").status_code == 302


def test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy(settings: Any) -> None:
    settings.WEBMAIL_BEHIND_PROXY = True
    settings.WEBMAIL_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]

    def ip(remote: str, forwarded: str) -> str:
        return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded))

    assert ip("10.0.0.2", "1.1.1.1, 203.0.113.9, 10.0.0.3") == "203.0.113.9"
    assert ip("::ffff:10.0.0.2", "203.0.113.9") == "203.0.113.9"
    assert ip("198.51.100.5", "203.0.113.9") == "198.51.100.5"  # not from a trusted proxy
    assert ip("10.0.0.2", "junk, 10.0.0.3") == "10.0.0.2"
    settings.WEBMAIL_BEHIND_PROXY = False
    assert ip("10.0.0.2", "203.0.113.9") == "10.0.0.2"


# --- point 10a: polls do not keep a session alive; an absolute lifetime -----------------


def test_polling_the_unread_count_does_not_extend_the_session(client: Client, alice: Persona) -> None:
    client.force_login(alice.user)
    soon = timezone.now() + timedelta(minutes=5)
    Session.objects.update(expire_date=soon)

    poll = client.get(reverse("unread_count"))

    assert poll.status_code == 200
    assert django_settings.SESSION_COOKIE_NAME not in poll.cookies
    assert Session.objects.get().expire_date == soon
    client.get(reverse("home"))  # a person's request still does
    assert Session.objects.get().expire_date > timezone.now() + timedelta(hours=1)


def test_a_session_ends_after_its_absolute_lifetime_however_active(
    client: Client, alice: Persona, settings: Any
) -> None:
    settings.WEBMAIL_SESSION_MAX_HOURS = 1
    client.force_login(alice.user)
    assert client.get(reverse("home")).status_code == 200
    store = SessionStore(session_key=client.session.session_key)
    store[STARTED] = int(time.time()) - 3601
    store.save()

    ended = client.get(reverse("home"))

    assert ended.status_code == 302
    assert ended["Location"].startswith(reverse("login"))
    assert not Session.objects.filter(session_key=store.session_key).exists()


# --- point 10b: nothing signed-in is cached ------------------------------------------------


def test_every_signed_in_page_download_and_suggestion_says_no_store(client: Client, alice: Persona) -> None:
    mailbox = account_mailbox(("alice", "unused"), 995, owner=alice.user)
    message = stored(mailbox, mail("Gizli", attachments=[("a.pdf", "application/pdf", b"%PDF-1.4")]))[0]
    folder = Folder.objects.get(mailbox=mailbox, name="INBOX")
    client.force_login(alice.user)
    urls = [
        reverse("home"),
        reverse("mail_view", args=["starred"]),
        reverse("folder", args=[folder.public_id]),
        reverse("search") + "?q=gizli",
        reverse("message", args=[message.public_id]),
        reverse("message_body", args=[message.public_id]),
        reverse("message_source", args=[message.public_id]),
        reverse("message_part", args=[message.public_id, message.attachments.get().part]),
        reverse("message_parts_zip", args=[message.public_id]),
        reverse("unread_count"),
        reverse("compose"),
        reverse("address_suggestions") + "?q=ay",
        reverse("outbox"),
        reverse("mailbox_list"),
        reverse("mailbox_edit", args=[mailbox.id]),
        reverse("preferences"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
        assert "private" in response["Cache-Control"], url


# --- point 10e: an over-limit body is refused before it is read ---------------------------


def test_an_over_limit_upload_is_refused_by_its_length_without_reading_the_body(live_url: str) -> None:
    address = urlsplit(live_url)
    too_long = django_settings.WEBMAIL_MAX_REQUEST_BYTES + 1
    head = (
        f"POST {reverse('compose')} HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; "
        f"boundary=x\r\nContent-Length: {too_long}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port or 80), timeout=10) as conn:
        conn.sendall(head.encode() + b"--x\r\n")  # and nothing more: a server reading on would wait
        answer = b""
        while b"</html>" not in answer and (chunk := conn.recv(65536)):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 413")
    assert b"larger than this server accepts" in answer


def test_a_body_within_the_limit_goes_through(client: Client, alice: Persona) -> None:
    client.force_login(alice.user)

    response = client.post(reverse("compose"), {"subject": "x" * 1000})

    assert response.status_code != 413


# --- point 10g: reset mail is throttled -------------------------------------------------------


def test_password_reset_mail_is_throttled_per_address_without_telling_if_it_exists(
    client: Client, alice: Persona, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL = True
    settings.WEBMAIL_PASSWORD_RESETS_PER_ADDRESS = 3
    for address in ["alice@example.com", "nobody@example.com"]:
        with django_capture_on_commit_callbacks() as queued:
            answers = [
                client.post(reverse("password_reset"), {"email": address}, REMOTE_ADDR=f"198.51.100.{n}")
                for n in range(4)
            ]

        assert [answer.status_code for answer in answers] == [302, 302, 302, 429], address
        assert "Too many reset requests" in answers[-1].content.decode()
        assert len(queued) == (3 if address == "alice@example.com" else 0)


def test_password_reset_mail_is_throttled_per_client(client: Client, settings: Any) -> None:
    settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL = True
    settings.WEBMAIL_PASSWORD_RESETS_PER_CLIENT = 5
    answers = [
        client.post(reverse("password_reset"), {"email": f"p{n}@example.com"}, REMOTE_ADDR="203.0.113.7")
        for n in range(6)
    ]

    assert [answer.status_code for answer in answers] == [302] * 5 + [429]
    other = client.post(reverse("password_reset"), {"email": "q@example.com"}, REMOTE_ADDR="203.0.113.8")
    assert other.status_code == 302
