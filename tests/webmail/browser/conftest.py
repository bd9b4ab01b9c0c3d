"""Fixtures of every browser test: parsing happens here and now, and a server on another address
that records what a page fetches from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fetcher import enqueue
from tests.webmail.browser.pages import Attacker


@pytest.fixture(autouse=True)
def parsed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """stored() parses at once; no parse task may outlive the test (it would race the teardown)."""
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    server = Attacker()
    yield server
    server.server.shutdown()
