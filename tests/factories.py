"""Mailboxes for the tests: a Dovecot account registered as a Postane mailbox."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from accounts.models import Mailbox, User

if TYPE_CHECKING:
    from fetcher.sync.claim import SyncResult
    from tests.servers.dovecot import Dovecot


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


def raw_message(number: int, subject: str = "Merhaba", body_size: int = 0) -> bytes:
    """A numbered plain message, with about `body_size` bytes of body."""
    return (
        f"From: Ayşe <ayse@example.com>\r\nTo: alice@example.com\r\nSubject: {subject} {number}\r\n"
        f"Message-ID: <m{number}.{uuid.uuid4().hex}@example.com>\r\n"
        f"Date: Fri, 27 Nov 2026 10:{number % 60:02d}:00 +0300\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGövde {number}\r\n"
        + ("x" * 76 + "\r\n")
        * (body_size // 78)
    ).encode()


def deliver(dovecot: Dovecot, account: tuple[str, str], count: int, start: int = 0) -> list[bytes]:
    """`count` numbered messages delivered to the Dovecot account."""
    raws = [raw_message(number) for number in range(start, start + count)]
    for number, raw in enumerate(raws, start=start):
        dovecot.deliver(account[0], raw, f"m{number}")
    return raws


def run_sync(mailbox: Mailbox) -> SyncResult:
    """One sync of the mailbox, here in the test's process."""
    from fetcher import sync  # noqa: PLC0415 -- keeps this module importable before Django is set up

    return sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=60)


def in_folder(mailbox: Mailbox, folder: str) -> list[Any]:
    """The mailbox's stored messages in the IMAP folder of that name, by UID."""
    from fetcher.models import Message  # noqa: PLC0415

    return list(Message.objects.filter(mailbox=mailbox, folder__name=folder).order_by("imap__uid"))


def counted() -> dict[str, tuple[int, int]]:
    """Each folder's (messages, unread) counted from the messages themselves."""
    from fetcher.models import Folder, Message  # noqa: PLC0415

    found: dict[str, tuple[int, int]] = {}
    for folder in Folder.objects.all():
        messages = Message.objects.filter(folder=folder)
        found[f"{folder.mailbox.name}/{folder.name}"] = (
            messages.count(),
            messages.filter(seen=False).count(),
        )
    return found


def kept() -> dict[str, tuple[int, int]]:
    """Each folder's (messages, unread) as the triggers kept them."""
    from fetcher.models import Folder, FolderCount  # noqa: PLC0415

    found = {}
    for folder in Folder.objects.select_related("mailbox"):
        count = FolderCount.objects.filter(folder=folder).first() or FolderCount(folder=folder)
        found[f"{folder.mailbox.name}/{folder.name}"] = (count.messages, count.unread)
    return found


def conversation(mailbox: Mailbox, count: int, *, unread: set[int]) -> list[Any]:
    """`count` messages of one conversation, a minute apart; those numbered in `unread` not yet read."""
    from fetcher.models import Message  # noqa: PLC0415

    root = "References: <kok@example.com>\nIn-Reply-To: <kok@example.com>"
    messages = stored(
        mailbox,
        mail("Proje", headers="Message-ID: <kok@example.com>", date="Fri, 27 Nov 2026 09:00:00 +0300"),
        *[
            mail("Re: Proje", headers=root, body=f"Yanıt {n}", date=f"Fri, 27 Nov 2026 10:{n:02d}:00 +0300")
            for n in range(1, count)
        ],
    )
    read = [message.pk for number, message in enumerate(messages) if number not in unread]
    Message.objects.filter(pk__in=read).update(seen=True)
    return messages


def imap_mailbox(owner: User, name: str) -> Mailbox:
    """An IMAP mailbox with its Trash and Archive, as a folder listing leaves it (no server needed)."""
    from fetcher.models import Folder, FolderRole  # noqa: PLC0415

    mailbox = account_mailbox((name, "unused"), 993, owner=owner, protocol="imap")
    Folder.objects.create(mailbox=mailbox, name="Trash", role=FolderRole.TRASH)
    Folder.objects.create(mailbox=mailbox, name="Archive", role=FolderRole.ARCHIVE)
    return mailbox


def on_server(mailbox: Mailbox, count: int, *, start: int = 0) -> list[Any]:
    """`count` messages in the mailbox's INBOX, each with the UID its server copy has."""
    from fetcher.models import ImapMessage  # noqa: PLC0415

    messages = stored(mailbox, *(mail(f"{mailbox.name} {start + n}") for n in range(count)))
    for number, message in enumerate(messages, start=start + 1):
        ImapMessage.objects.create(folder=message.folder, uidvalidity=7, uid=number, message=message)
    return messages
