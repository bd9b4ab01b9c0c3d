"""The reading benchmark's person: one IMAP account as years of real mail leave it.

An INBOX of N messages of about 8 KB, oldest first with rising UIDs as a server hands them
out, plus empty Sent, Drafts, Trash and Junk folders (with their roles) and two ordinary folders
with a little mail. What makes it like a real mailbox, and unlike the three-mailbox case:

- most of it unread (85%), a few per cent flagged, some messages with an attachment;
- notifications: a handful of senders repeating one subject thousands of times over the years
  ("Security alert: new sign-in", "Iğdır şubesi açılışı"), with no Re: and no References, so
  every one is a conversation of its own;
- discussions: Message-ID, In-Reply-To and References chains with Re: and YNT: subjects, one of
  them hundreds of messages long; some replies carry only In-Reply-To, some only a "Re:" subject
  (they join their conversation by subject when parsed);
- words from the Zipf vocabulary of bench/words.py, Turkish and English.

Messages are made and stored a batch at a time through Postane's own ingest
(`storing.store_imap_batch`), so memory does not grow with N, then parsed in two processes.
"""

from __future__ import annotations

import base64
import multiprocessing
import random
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bench.ingest import _parse_worker, _setup_worker
from bench.words import text
from fetcher.mail.search import fold

PASSWORD = "a-long-bench-password-4711"  # noqa: S105 -- the bench user's, on a throwaway database
OWNER = ("Ayşe Yılmaz", "ayse@example.net")
LIST = ("Proje Ekibi", "proje-ekibi@liste.example.org")
UIDVALIDITY = 1_700_000_000
START = datetime(2021, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=5 * 365)  # the INBOX runs from START to a month before the benchmark's days
SIZE = 8 * 1024
BATCH = 1000
DATE = "%a, %d %b %Y %H:%M:%S +0300"
TURKEY = timedelta(hours=3)

# Subject, sender and how often, against each other: the notifications of a real inbox.
NOTIFICATIONS = [
    ("Security alert: new sign-in", "Google", "no-reply@accounts.google.com", 5),
    ("Iğdır şubesi açılışı", "Anadolu Bankası", "duyuru@anadolubank.com.tr", 3),
    ("Haftalık bülten", "Mühendisler Derneği", "bulten@dernek.org.tr", 4),
    ("Your invoice is ready", "Hosting Billing", "billing@hosting.example", 3),
    ("Kargonuz yola çıktı", "Hızlı Kargo", "bilgi@hizlikargo.com.tr", 3),
    ("Hesap özetiniz hazır", "Anadolu Bankası", "ekstre@anadolubank.com.tr", 2),
    ("Build failed: main", "CI", "ci@build.example.dev", 4),
    ("Daily digest", "Forum", "digest@forum.example.org", 2),
]
FIRST = ["Zeynep", "Mehmet", "Elif", "Can", "Deniz", "Burak", "Selin", "Emre", "İpek", "Oğuz"]
FIRST += ["Şule", "Çağrı", "John", "Sarah", "Ahmet", "Gül", "Tolga", "Ece", "Murat", "Anna"]
LAST = ["Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Arslan", "Doğan", "Smith", "Koç"]
LAST += ["Yıldız", "Kılıç", "Aksoy", "Erdoğan", "Güneş"]
ATTACHMENTS = ["rapor.pdf", "fatura-2024.pdf", "sunum.pptx", "bütçe tablosu.xlsx", "photo.jpg"]
LONG_SUBJECT = "Bütçe 2026 çalışma grubu"
REPLY_PREFIXES = ["Re: ", "Re: ", "RE: ", "YNT: ", "Ynt: ", "Re: Re: "]


def person(number: int) -> tuple[str, str]:
    first, last = FIRST[number % len(FIRST)], LAST[number // len(FIRST) % len(LAST)]
    return f"{first} {last}", f"{fold(first)}.{fold(last)}@example.com".replace(" ", "")


def encoded(value: str) -> str:
    """A header value as mail clients write it: RFC 2047 encoded words (at most 75 characters each)."""
    if value.isascii():
        return value
    words, piece = [], ""
    for letter in value:
        if len((piece + letter).encode()) > 45:
            words.append(piece)
            piece = ""
        piece += letter
    words.append(piece)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word.encode()).decode()}?=" for word in words)


def address(name: str, mail: str) -> str:
    return f"{encoded(name)} <{mail}>"


@dataclass
class Discussion:
    subject: str
    ids: list[str]  # Message-IDs so far, the first one the conversation's root
    left: int


@dataclass
class Counts:
    """What the generator made, so the benchmark needs no query (and no scan) to describe it."""

    messages: int = 0
    size: int = 0
    unread: int = 0
    flagged: int = 0
    attachments: int = 0
    notifications: int = 0
    discussion: int = 0
    subject_only_replies: int = 0


@dataclass
class Mail:
    """Makes the person's messages, one at a time, in date order."""

    count: int
    rng: random.Random = field(default_factory=lambda: random.Random(31))  # noqa: S311 -- same mail each run
    counts: Counts = field(default_factory=Counts)
    pool: list[str] = field(default_factory=list)
    active: list[Discussion] = field(default_factory=list)
    long: Discussion = field(default_factory=lambda: Discussion(LONG_SUBJECT, [], 0))
    singles: list[str] = field(default_factory=list)  # Message-IDs of messages in no discussion

    def __post_init__(self) -> None:
        # Body lines beyond the first few come from a pool: 8 KB of fresh Zipf words per message
        # would make generating 1,000,000 messages slower than storing them.
        self.pool = [text(self.rng, 12) for _ in range(4000)]
        # The long discussion: about 300 messages over the years (fewer in a small run, where 300
        # would be most of the mailbox).
        self.long_every = max(20, self.count // 300)
        self.single_every = max(1, self.count // 100)  # about 35 singles to open, spread over the years

    def inbox(self, number: int) -> tuple[bytes, tuple[str, ...]]:
        """The INBOX's message `number` (0 the oldest) and its IMAP flags."""
        when = START + SPAN * ((number + self.rng.random()) / self.count)
        chance = self.rng.random()
        if number % self.long_every == self.long_every - 1:
            raw = self.reply(number, when, self.long)
        elif chance < 0.45:
            raw = self.notification(number, when)
        elif chance < 0.80:
            raw = self.single(number, when)
        else:
            raw = self.discussion(number, when)
        return raw, self.flags()

    def folder_message(self, first: int, kind: str, offset: int) -> tuple[bytes, tuple[str, ...]]:
        """A message of an ordinary folder: read, from any time."""
        number = first + offset
        when = START + SPAN * self.rng.random()
        raw = (
            self.notification(number, when, invoice=True) if kind == "invoices" else self.single(number, when)
        )
        return raw, ("\\Seen",)

    def flags(self) -> tuple[str, ...]:
        seen, flagged = self.rng.random() < 0.15, self.rng.random() < 0.03
        self.counts.unread += not seen
        self.counts.flagged += flagged
        return (*(["\\Seen"] if seen else []), *(["\\Flagged"] if flagged else []))

    def notification(self, number: int, when: datetime, *, invoice: bool = False) -> bytes:
        streams = NOTIFICATIONS[3:6:2] if invoice else NOTIFICATIONS
        subject, name, mail = self.rng.choices(streams, weights=[s[3] for s in streams])[0][:3]
        self.counts.notifications += 1
        return self.message(number, when, subject=subject, sender=(name, mail), to=[OWNER])

    def single(self, number: int, when: datetime) -> bytes:
        raw = self.message(
            number, when, subject=text(self.rng, self.rng.randint(2, 6)).capitalize(), to=[OWNER]
        )
        if number % self.single_every == 0:
            self.singles.append(self.message_id(number))
        return raw

    def discussion(self, number: int, when: datetime) -> bytes:
        if not self.active or (len(self.active) < 40 and self.rng.random() < 0.25):
            length = 1 + min(int(self.rng.paretovariate(1.2) * 2), 80)
            subject = text(self.rng, self.rng.randint(2, 5)).capitalize()
            self.active.append(Discussion(subject, [self.message_id(number)], length))
            self.counts.discussion += 1
            return self.message(number, when, subject=subject, to=[LIST, OWNER])
        found = self.rng.choice(self.active)
        found.left -= 1
        if found.left <= 0:
            self.active.remove(found)
        return self.reply(number, when, found)

    def reply(self, number: int, when: datetime, found: Discussion) -> bytes:
        """A reply: mostly with In-Reply-To and References, some with only one of them or neither."""
        self.counts.discussion += 1
        subject = self.rng.choice(REPLY_PREFIXES) + found.subject
        parent = found.ids[-1] if found.ids else ""
        style = self.rng.random()
        headers = ""
        if parent and style < 0.70:
            references = list(dict.fromkeys([found.ids[0], *found.ids[-9:]]))
            headers = f"In-Reply-To: {parent}\r\nReferences: {' '.join(references)}\r\n"
        elif parent and style < 0.85:
            headers = f"In-Reply-To: {parent}\r\n"
        elif parent:
            self.counts.subject_only_replies += 1
        else:
            subject = found.subject  # the long discussion's first message
        found.ids.append(self.message_id(number))
        return self.message(number, when, subject=subject, to=[LIST], cc=[OWNER], headers=headers)

    def message_id(self, number: int) -> str:
        return f"<person.{number}@mail.example.com>"

    def message(
        self,
        number: int,
        when: datetime,
        *,
        subject: str,
        to: list[tuple[str, str]],
        sender: tuple[str, str] | None = None,
        cc: list[tuple[str, str]] | None = None,
        headers: str = "",
    ) -> bytes:
        name, mail = sender or person((int(self.rng.paretovariate(0.6) * 5) - 5) % 300)
        copies = f"Cc: {', '.join(address(*who) for who in cc)}\r\n" if cc else ""
        head = (
            f"Return-Path: <{mail}>\r\n"
            f"Received: from mx{number % 7}.example.com by imap.example.net with ESMTPS;\r\n"
            f" {(when + TURKEY).strftime(DATE)}\r\n"
            f"From: {address(name, mail)}\r\nTo: {', '.join(address(*who) for who in to)}\r\n{copies}"
            f"Subject: {encoded(subject)}\r\nDate: {(when + TURKEY).strftime(DATE)}\r\n"
            f"Message-ID: {self.message_id(number)}\r\n{headers}MIME-Version: 1.0\r\n"
        )
        attached = self.attachment() if self.rng.random() < 0.06 else ""
        body = self.body(SIZE - len(head.encode()) - len(attached))
        plain = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        if attached:
            boundary = f"=_part_{number}"
            raw = (
                f'{head}Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
                f"--{boundary}\r\n{plain}\r\n{body}\r\n--{boundary}\r\n{attached}\r\n--{boundary}--\r\n"
            ).encode()
        else:
            raw = f"{head}{plain}\r\n{body}\r\n".encode()
        self.counts.messages += 1
        self.counts.size += len(raw)
        return raw

    def body(self, size: int) -> str:
        lines = [text(self.rng, 12) for _ in range(3)]
        length = sum(len(line.encode()) + 2 for line in lines)
        while length < size:
            line = self.rng.choice(self.pool)
            lines.append(line)
            length += len(line.encode()) + 2
        return "\r\n".join(lines)

    def attachment(self) -> str:
        self.counts.attachments += 1
        name = self.rng.choice(ATTACHMENTS)
        content = base64.encodebytes(self.rng.randbytes(1800)).decode().replace("\n", "\r\n")
        disposition = f'filename="{name}"' if name.isascii() else f"filename*=utf-8''{_percent(name)}"
        return (
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; {disposition}\r\n\r\n{content}"
        )


def _percent(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


# --- storing it -------------------------------------------------------------------------------------------


@dataclass
class Person:
    """The stored account, and what the benchmark opens in it."""

    owner: Any
    mailbox: Any
    inbox: Any
    folders: list[Any]  # the ordinary folders
    mail: Mail
    fill_seconds: tuple[float, float]  # storing, parsing


FOLDERS = [("Sent", "sent"), ("Drafts", "drafts"), ("Trash", "trash"), ("Junk", "junk")]
ORDINARY = [("Faturalar", "invoices"), ("Proje/2024", "project")]


def fill(count: int) -> Person:
    from accounts.models import Mailbox, Protocol, Security, User
    from fetcher import folders
    from fetcher.models import Folder

    owner = User.objects.create_user("ayse", email=OWNER[1], password=PASSWORD, first_name="Ayşe")
    mailbox = Mailbox(owner=owner, name="Ayşe", email_address=OWNER[1], protocol=Protocol.IMAP)
    mailbox.incoming_host, mailbox.incoming_port = "imap.example.net", 993
    mailbox.incoming_security, mailbox.incoming_login = Security.SSL, "ayse"
    mailbox.smtp_host = "smtp.example.net"
    mailbox.set_incoming_password("unused")
    mailbox.save()
    inbox = folders.inbox_of(mailbox)
    Folder.objects.filter(pk=inbox.pk).update(uidvalidity=UIDVALIDITY, delimiter="/")
    for name, role in FOLDERS:
        Folder.objects.create(mailbox=mailbox, name=name, role=role, uidvalidity=UIDVALIDITY, delimiter="/")
    ordinary = [
        Folder.objects.create(mailbox=mailbox, name=name, uidvalidity=UIDVALIDITY, delimiter="/")
        for name, _kind in ORDINARY
    ]
    mail = Mail(count)
    started = time.perf_counter()
    ids = _store(mailbox, inbox, count, mail.inbox, "INBOX")
    extra = max(20, count // 200)
    for position, (folder, (name, kind)) in enumerate(zip(ordinary, ORDINARY, strict=True)):
        first = count + position * extra  # Message-IDs go on from the INBOX's
        ids += _store(mailbox, folder, extra, partial(mail.folder_message, first, kind), name)
    stored = time.perf_counter() - started
    _parse(ids)
    return Person(owner, mailbox, inbox, ordinary, mail, (stored, time.perf_counter() - started - stored))


def refound(count: int) -> Person:
    """The person of an earlier fill(count) in this database, without storing anything again.

    The generator runs again without storing (its random choices are seeded), so that the
    benchmark knows the same messages to open and the same counts; the database must hold that fill.
    """
    from accounts.models import User
    from fetcher.models import Folder, Message

    owner = User.objects.filter(username="ayse").first()
    mailbox = owner.mailboxes.first() if owner else None
    if mailbox is None:
        raise SystemExit("bench: --reuse needs a database an earlier run filled (POSTANE_BENCH_DATABASE)")
    inbox = Folder.objects.get(mailbox=mailbox, role="inbox")
    stored = Message.objects.filter(folder=inbox).count()
    if stored != count:
        raise SystemExit(f"bench: --reuse: the database holds {stored:,} INBOX messages, not {count:,}")
    mail = Mail(count)
    for number in range(count):
        mail.inbox(number)
    extra = max(20, count // 200)
    ordinary = []
    for position, (name, kind) in enumerate(ORDINARY):
        ordinary.append(Folder.objects.get(mailbox=mailbox, name=name))
        for offset in range(extra):
            mail.folder_message(count + position * extra, kind, offset)
    return Person(owner, mailbox, inbox, ordinary, mail, (0.0, 0.0))


def _store(
    mailbox: Any, folder: Any, count: int, make: Callable[[int], tuple[bytes, tuple[str, ...]]], label: str
) -> array[int]:
    """Store `count` messages in batches of BATCH, as an IMAP sync does: UIDs rising, one transaction each."""
    from fetcher.ingest import storing

    ids: array[int] = array("q")
    started, step = time.perf_counter(), max(BATCH, count // 10 // BATCH * BATCH)
    for start in range(0, count, BATCH):
        batch = {uid + 1: make(uid) for uid in range(start, min(start + BATCH, count))}
        ids.extend(
            storing.store_imap_batch(mailbox=mailbox, folder=folder, uidvalidity=UIDVALIDITY, batch=batch)
        )
        done = start + len(batch)
        if done % step == 0 or done == count:
            rate = done / (time.perf_counter() - started)
            print(f"  stored {done:>9,} / {count:,} in {label} ({rate:,.0f} msg/s)", flush=True)
    return ids


def _chunks(ids: array[int], size: int = 2000) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size].tolist()


def _parse(ids: array[int]) -> None:
    """Stage two in two processes, task-sized pieces handed out as they finish (progress printed)."""
    done, started, step = 0, time.perf_counter(), max(1, len(ids) // 10)
    next_report = step
    with multiprocessing.get_context("spawn").Pool(2, initializer=_setup_worker) as pool:
        for parsed in pool.imap_unordered(_parse_worker, _chunks(ids)):
            done += parsed
            if done >= next_report or done == len(ids):
                rate = done / (time.perf_counter() - started)
                print(f"  parsed {done:>9,} / {len(ids):,} ({rate:,.0f} msg/s)", flush=True)
                next_report += step
