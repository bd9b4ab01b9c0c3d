"""Mailboxes for the tests: a Dovecot account registered as a Postane mailbox."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from accounts.models import Mailbox, User


def account_mailbox(
    account: tuple[str, str], port: int, *, security: str = "ssl", owner: User | None = None, **fields: Any
) -> Mailbox:
    """A saved mailbox for this (login, password) on localhost; `fields` override any value,
    the engine's too (paused, next_sync_at...: they go to its MailboxSync)."""
    from fetcher.models import MailboxSync  # noqa: PLC0415 -- keeps this module importable before Django is set up

    engine = {name: fields.pop(name) for name in list(fields) if name in _engine_fields(MailboxSync)}
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
    if engine:
        MailboxSync.objects.filter(mailbox=mailbox).update(**engine)
        mailbox.refresh_from_db()
    return mailbox


def _engine_fields(model: type[Any]) -> set[str]:
    return {field.name for field in model._meta.concrete_fields if not field.primary_key}


def stored(mailbox: Mailbox, *raws: bytes) -> list[Any]:
    """Messages stored and parsed as a sync would leave them (stage one, then stage two)."""
    from fetcher import folders  # noqa: PLC0415 -- keeps this module importable before Django is set up
    from fetcher.ingest import parsing, storing  # noqa: PLC0415
    from fetcher.models import Message  # noqa: PLC0415

    start = Message.objects.filter(mailbox=mailbox).count()
    batch = [storing.Fetched(f"u{start + number}", raw) for number, raw in enumerate(raws)]
    ids = storing.store_pop3_batch(mailbox=mailbox, folder=folders.inbox_of(mailbox), batch=batch)
    parsing.parse_messages(ids)
    return list(Message.objects.filter(id__in=ids).order_by("id"))


def mail(
    subject: str = "Merhaba",
    *,
    sender: str = "Ayşe Yılmaz <ayse@example.com>",
    to: str = "alice@example.com",
    body: str = "Gövde",
    date: str = "Fri, 27 Nov 2026 10:00:00 +0300",
    headers: str = "",
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    """A message built with the stdlib, Turkish headers encoded as mail clients encode them."""
    from email.message import EmailMessage  # noqa: PLC0415
    from email.utils import make_msgid  # noqa: PLC0415

    message = EmailMessage()
    message["From"], message["To"], message["Subject"], message["Date"] = sender, to, subject, date
    message["Message-ID"] = make_msgid(domain="example.com")
    for line in filter(None, headers.split("\n")):
        name, _sep, value = line.partition(":")
        del message[name.strip()]
        message[name.strip()] = value.strip()
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments or []:
        maintype, _slash, subtype = content_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def related_mail(subject: str, html: str, parts: list[tuple[str, str, bytes]]) -> bytes:
    """An HTML message whose `parts` (Content-ID, type, content) ride in its multipart/related part, as
    mail clients send a logo: the HTML shows them by `cid:`. A part that is no image is marked an
    attachment (an inline text part would join the body)."""
    from email.message import EmailMessage  # noqa: PLC0415

    message = EmailMessage()
    message["From"], message["To"] = "Ayşe <ayse@example.com>", "alice@example.com"
    message["Subject"], message["Date"] = subject, "Fri, 27 Nov 2026 10:00:00 +0300"
    message.set_content("Resimli ileti.")
    message.add_alternative(html, subtype="html")
    body = message.get_body(("html",))
    assert isinstance(body, EmailMessage)
    for cid, content_type, content in parts:
        maintype, _slash, subtype = content_type.partition("/")
        disposition = "inline" if maintype == "image" else "attachment"
        body.add_related(
            content,
            maintype=maintype,
            subtype=subtype,
            cid=f"<{cid}>",
            disposition=disposition,
            filename=cid.partition("@")[0],
        )
    return message.as_bytes()


def earlier_today(zone: str) -> datetime:
    """A moment of today in `zone` that has passed and stays "today" while a test runs.

    Tests that show "today" must not depend on the day they run: halfway between midnight and
    now, and a test started in the last two minutes of a day waits for the next one.
    """
    now = datetime.now(ZoneInfo(zone))
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    if tomorrow - now < timedelta(minutes=2):
        time.sleep((tomorrow - now).total_seconds() + 1)
        now = datetime.now(ZoneInfo(zone))
    midnight = datetime.combine(now.date(), datetime.min.time(), now.tzinfo)
    return (midnight + (now - midnight) / 2).replace(second=0, microsecond=0)
