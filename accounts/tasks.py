"""Celery tasks about people."""

from __future__ import annotations

from celery import shared_task

from accounts.services import SiteLink, connection_tests_purge, password_reset_send, signup_mail_send


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_password_reset(user_id: int, domain: str, use_https: bool, language: str = "en") -> None:
    password_reset_send(user_id=user_id, domain=domain, use_https=use_https, language=language)


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def send_signup_mail(user_id: int, kind: str, domain: str, use_https: bool, language: str = "en") -> None:
    signup_mail_send(user_id=user_id, kind=kind, site=SiteLink(domain, use_https, language))


@shared_task(ignore_result=True)
def purge_connection_tests() -> None:
    """Scheduled by beat: tests past their use keep no encrypted password."""
    connection_tests_purge()
