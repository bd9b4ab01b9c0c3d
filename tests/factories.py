"""Mailboxes for the tests: a Dovecot account registered as a Postane mailbox."""

from __future__ import annotations

from typing import Any

from accounts.models import Mailbox, User


def account_mailbox(
    account: tuple[str, str], port: int, *, security: str = "ssl", owner: User | None = None, **fields: Any
) -> Mailbox:
    """A saved mailbox for this (login, password) on localhost; `fields` override any value."""
    login, password = account
    values: dict[str, Any] = {
        "owner": owner or User.objects.create_user(f"owner-{login}"),
        "name": login,
        "email_address": f"{login}@example.com",
        "protocol": "pop3",
        "incoming_host": "localhost",
        "incoming_port": port,
        "incoming_security": security,
        "incoming_login": login,
        "smtp_host": "localhost",
    }
    mailbox = Mailbox(**(values | fields))
    mailbox.set_incoming_password(password)
    mailbox.save()
    return mailbox
