"""Messages above mime.PARSED_BY_BOUNDARIES: parts found by their boundaries, bounded memory, never lost."""

from __future__ import annotations

import base64
import tracemalloc
from pathlib import Path

import pytest

from fetcher import sync
from fetcher.ingest import parsing, storing
from fetcher.mail import mime
from fetcher.models import Attachment, Message
from tests.corpus import CORPUS, MANIFEST
from tests.factories import account_mailbox
from tests.servers.dovecot import Dovecot

MB = 1024 * 1024
TURKISH_LINE = "Çalışma grubu ışık, ğüşöç İĞÜŞÖÇ; toplantı notları ekte.\r\n"


def large_message(text_size: int = 6 * MB, attachment_size: int = 18 * MB) -> tuple[bytes, bytes]:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * (attachment_size // 256)
    encoded = base64.encodebytes(pdf).replace(b"\n", b"\r\n")
    text = TURKISH_LINE.encode("windows-1254") * (text_size // len(TURKISH_LINE))
    raw = (
        b"From: =?utf-8?q?Ay=C5=9Fe?= <ayse@example.com>\r\nTo: bob@example.net\r\n"
        b"Subject: =?iso-8859-9?q?B=FCy=FCk_dosya?=\r\nDate: Fri, 27 Nov 2026 10:00:00 +0300\r\n"
        b"Message-ID: <large@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\nPreamble.\r\n--outer\r\n'
        b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n--inner\r\n'
        b"Content-Type: text/plain; charset=windows-1254\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + text
        + b"\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>K\xc4\xb1sa</p>\r\n--inner--\r\n"
        b"\r\n--outer\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''%C3%87al%C4%B1%C5%9Fma.pdf\r\n\r\n"
        + encoded
        + b"\r\n--outer--\r\nEpilogue.\r\n"
    )
    return raw, pdf


def test_a_25_mb_message_is_read_in_less_than_twice_its_size() -> None:
    raw, pdf = large_message()
    assert len(raw) > 25 * MB

    tracemalloc.start()
    parsed = mime.parse(raw)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert peak < 2 * len(raw)
    assert (parsed.subject, parsed.from_[0].name, parsed.message_id) == (
        "Büyük dosya",
        "Ayşe",
        "<large@example.com>",
    )
    assert parsed.text.startswith(TURKISH_LINE + TURKISH_LINE)
    assert mime.TEXT_LIMIT * 0.9 < len(parsed.text.encode("windows-1254")) <= mime.TEXT_LIMIT
    assert parsed.html == "<p>Kısa</p>"
    assert [(a.filename, a.content_type, a.size, a.inline) for a in parsed.attachments] == [
        ("Çalışma.pdf", "application/pdf", len(pdf), False)
    ]
    assert parsed.state == "partial"
    assert any("read up to" in problem for problem in parsed.problems)


# Where boundary scanning reads a corpus message differently from the full parser: report
# and delivery-status parts are listed as parts rather than opened (r070 too, now that both
# split it by its own delimiter lines), broken boundaries are found where they are, a
# Content-Type without ";" before boundary= is still a multipart (r084; the full parser shows
# it as text), and structural defects are not reported.
DIFFERENT_PARTS = {"r045", "r051", "r052", "r070", "r078", "r082", "r084", "r096"}


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
def test_boundary_scanning_reads_the_corpus_like_the_full_parser(
    entry: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = (CORPUS / entry["file"]).read_bytes()
    full = mime.parse(raw)

    monkeypatch.setattr(mime, "PARSED_BY_BOUNDARIES", 0)
    scanned = mime.parse(raw)

    headers = ("subject", "from_", "to", "cc", "reply_to", "date", "message_id", "in_reply_to", "references")
    assert [getattr(scanned, name) for name in headers] == [getattr(full, name) for name in headers]
    assert not scanned.failed
    if entry["file"][:4] not in DIFFERENT_PARTS:
        assert [(a.index, a.filename, a.content_type) for a in scanned.attachments] == [
            (a.index, a.filename, a.content_type) for a in full.attachments
        ]


@pytest.mark.django_db
@pytest.mark.mailservers
def test_a_25_mb_message_comes_over_pop3_byte_for_byte_and_is_parsed(
    dovecot: Dovecot, local_mail_settings: None, tmp_path: Path
) -> None:
    account = dovecot.fresh_user()
    raw, pdf = large_message()
    dovecot.deliver(account[0], raw, "large")
    mailbox = account_mailbox(account, dovecot.ports["pop3s"])

    assert sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=120).fetched == 1
    message = Message.objects.get(mailbox=mailbox)
    assert bytes(message.raw) == raw
    parsing.parse_messages([message.pk])

    message.refresh_from_db()
    assert (message.subject, message.size) == ("Büyük dosya", len(raw))
    assert Attachment.objects.get(message=message).size == len(pdf)


def test_batches_stop_at_the_byte_limit_but_never_leave_an_item_out() -> None:
    sizes = [10 * MB, 10 * MB, 20 * MB, 40 * MB, 1, 1, 1]

    found = list(storing.batches(sizes, lambda size: size, count=2))

    assert found == [[10 * MB, 10 * MB], [20 * MB], [40 * MB], [1, 1], [1]]
