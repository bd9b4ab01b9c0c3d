"""Fixtures of the engine's tests that sync real Dovecot accounts: a fresh account, the account as
another mail client sees it, and mailboxes registered on it (a module may define its own instead)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from imapclient import IMAPClient

from accounts.models import Mailbox, User
from tests.factories import account_mailbox
from tests.servers.dovecot import Dovecot


@pytest.fixture
def mail_server(dovecot: Dovecot) -> Dovecot:
    """The Dovecot the accounts below live on; a module sets up another (Courier-like, stock) by
    defining its own `mail_server`."""
    return dovecot


@pytest.fixture
def account(mail_server: Dovecot) -> tuple[str, str]:
    """A fresh account per test: (login, password)."""
    return mail_server.fresh_user()


@pytest.fixture
def server(mail_server: Dovecot, account: tuple[str, str]) -> Iterator[IMAPClient]:
    """The account as another mail client sees it, over plain IMAP on this machine."""
    with mail_server.client(account) as client:
        yield client


@pytest.fixture
def mailbox(dovecot: Dovecot, account: tuple[str, str], local_mail_settings: None) -> Mailbox:
    """The account registered as an IMAP mailbox."""
    return account_mailbox(account, dovecot.ports["imaps"], protocol="imap", name="Iş")


@pytest.fixture
def make_mailbox(
    dovecot: Dovecot, account: tuple[str, str], local_mail_settings: None
) -> Callable[..., Mailbox]:
    """Registers the account as a POP3 mailbox, with any password or field changed."""
    owner = User.objects.create_user(f"owner-{account[0]}")

    def make(password: str = account[1], **fields: Any) -> Mailbox:
        return account_mailbox((account[0], password), dovecot.ports["pop3s"], owner=owner, **fields)

    return make
