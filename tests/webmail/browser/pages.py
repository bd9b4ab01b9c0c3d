"""What the browser tests of reading and writing share: a signed-in browser, screenshots, and
alice with her mailbox."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import BrowserContext, Page

from accounts.models import User
from fetcher import enqueue
from tests.paths import PROJECT
from tests.personas import Persona

ARTIFACTS = Path(os.environ.get("POSTANE_ARTIFACTS", PROJECT / "test-artifacts"))


@pytest.fixture(autouse=True)
def alice_has_her_mailbox(alice: Persona) -> None:
    """Every test of these modules reads or writes in alice's mailbox: it exists before her browser opens."""
    assert alice.mailbox.pk  # made now, not on first use


@pytest.fixture(autouse=True)
def parsed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """stored() parses at once; no parse task may outlive the test (it would race the teardown)."""
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)


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
