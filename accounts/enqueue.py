"""Every task accounts queues, one typed function each: the only place their names are written.

Sent by name, as fetcher.enqueue does and for the same reason (the tasks module imports what
queues them); tests/fetcher/test_enqueue.py checks the names and arguments against the registered tasks.
accounts sits below fetcher, so its tasks have a module of their own here.
"""

from __future__ import annotations

from celery import current_app


def send_password_reset(user_id: int, domain: str, use_https: bool, language: str) -> None:
    current_app.send_task("accounts.tasks.send_password_reset", args=[user_id, domain, use_https, language])


def send_signup_mail(user_id: int, kind: str, domain: str, use_https: bool, language: str) -> None:
    """`kind`: "confirm" (the link that confirms an address) or "address-used"."""
    current_app.send_task(
        "accounts.tasks.send_signup_mail", args=[user_id, kind, domain, use_https, language]
    )
