"""What the browser tests of reading and writing share: a signed-in browser, screenshots, and
alice with her mailbox."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import BrowserContext, Page

from accounts.models import User
from tests.paths import PROJECT
from tests.personas import Persona

ARTIFACTS = Path(os.environ.get("POSTANE_ARTIFACTS", PROJECT / "test-artifacts"))


@pytest.fixture(autouse=True)
def alice_has_her_mailbox(alice: Persona) -> None:
    """Every test of these modules reads or writes in alice's mailbox: it exists before her browser opens."""
    assert alice.mailbox.pk  # made now, not on first use


def signed_in(new_context: Callable[..., BrowserContext], live_url: str, user: User, **options: Any) -> Page:
    """A browser whose session cookie belongs to `user` (the login form has its own tests)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    context = new_context(**({"locale": "en-US"} | options))
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": session.session_key or "", "url": live_url}
    context.add_cookies([cookie])  # type: ignore[list-item]
    return context.new_page()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\xa7\xf4\x0b\xd9\x00\x00\x00\x00IEND\xaeB`\x82"
)


class Attacker:
    """A server on another address that records every request the page makes to it."""

    def __init__(self) -> None:
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.wfile.write(PNG)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.requests = seen
        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
