"""The shared corpus of 115 real-world messages: every one stored exactly, read as well as Python or better.

Where Postane does better than the manifest's `expected` (what Python's email package gives):
- raw UTF-8 in addresses (RFC 6532) comes out as text, not as surrogate escapes (r001);
- an attached message (message/rfc822) is listed as one attachment; Python's listing skips it or
  lists the parts inside it instead (r043-r054, r066, r079);
- parts without a disposition that are not text (inline images, octet-streams) are listed as inline
  attachments, so cid: images and stray files stay reachable (r044, r067, r068, r073);
- unknown charsets (r024-r027) decode with a fallback instead of raising LookupError;
- a multipart message without a boundary shows its content as text instead of nothing (r084);
- a multipart Python cannot split (no boundary, or one its lines do not use) is split by its own
  delimiter lines, or shown as text, so a body is found where Python finds none (r070, r075, r081, r086);
- raw 8-bit header bytes in a legacy charset are decoded (declared charsets, then the reader's
  language, then a detector) where Python shows U+FFFD (r006, r011, r022, r023, r098);
- subjects lose trailing whitespace.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from accounts.models import User
from fetcher import folders
from fetcher.ingest import parsing, storing
from fetcher.mail import mime
from fetcher.models import Message
from tests.corpus import CORPUS, MANIFEST, needs_corpus
from tests.factories import account_mailbox

pytestmark = needs_corpus


def fix_surrogates(text: str | None) -> str:
    """The manifest keeps Python's surrogate escapes for raw 8-bit bytes; decode them as UTF-8."""
    if not text:
        return ""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def matches_or_better(ours: str, pythons: str) -> bool:
    """Equal, or equal where Python has U+FFFD for bytes it could not decode and we have letters.

    A multi-byte charset Python read in the wrong codec (r017, gb2312) puts it off by a letter
    around each U+FFFD: there, what Python read before its first U+FFFD and no U+FFFD of ours.
    """
    runs = re.findall(r"\ufffd+|[^\ufffd]+", pythons)
    pattern = "".join(".+?" if run[0] == "\ufffd" else re.escape(run) for run in runs)
    if re.fullmatch(pattern, ours, re.DOTALL) is not None:
        return True
    return (
        "\ufffd" in pythons
        and "\ufffd" not in ours
        and ours.startswith(pythons.split("\ufffd", maxsplit=1)[0])
    )


def expected_date(text: str | None) -> datetime | None:
    try:
        value = parsedate_to_datetime(text) if text else None
    except ValueError:  # r105: Python's "date" is a line of HTML
        return None
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def test_the_corpus_is_where_the_tests_expect_it() -> None:
    assert len(MANIFEST) == 115


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
def test_each_message_is_read_as_well_as_python_or_better(entry: dict[str, Any]) -> None:
    raw = (CORPUS / entry["file"]).read_bytes()
    expected = entry["expected"]

    parsed = mime.parse(raw)

    assert not parsed.failed, parsed.problems
    assert matches_or_better(parsed.subject, fix_surrogates(expected["subject"]).strip())
    assert [address.address for address in parsed.from_] == [
        fix_surrogates(a) for a in expected["from_addresses"]
    ]
    assert parsed.date == expected_date(expected["date"])
    unbounded = "defect: NoBoundaryInMultipartDefect" in parsed.problems  # better: shown as text (r084)
    found_more = expected["body_type"] is None and (parsed.text or parsed.html).strip()  # better (r081)
    assert (
        (parsed.body_type or None) == expected["body_type"]
        or found_more
        or (unbounded and parsed.body_type == "text/plain")
    )
    ours = [(part.filename, part.content_type) for part in parsed.attachments]
    has_attached_message = any(part.content_type == "message/rfc822" for part in parsed.attachments)
    for attachment in expected["attachments"]:
        wanted = (attachment["filename"] or "", attachment["content_type"])
        assert wanted in ours or has_attached_message, (wanted, ours)
    for part in parsed.attachments:
        known = (part.filename, part.content_type) in {
            (a["filename"] or "", a["content_type"]) for a in expected["attachments"]
        }
        assert known or part.inline or part.content_type == "message/rfc822", part


@pytest.mark.parametrize("name", ["r024", "r025", "r026", "r027"])
def test_messages_python_cannot_decode_still_get_a_readable_body(name: str) -> None:
    entry = next(e for e in MANIFEST if e["file"].startswith(name))
    assert entry["python_email"]["failures"]  # Python itself fails on these

    parsed = mime.parse((CORPUS / entry["file"]).read_bytes())

    assert (parsed.text or parsed.html).strip()
    assert not parsed.failed


@pytest.mark.django_db
def test_every_corpus_file_is_stored_byte_for_byte_and_parsed_without_a_crash() -> None:
    owner = User.objects.create_user("corpus")
    mailbox = account_mailbox(("corpus", "unused"), 995, owner=owner, name="Corpus")
    folder = folders.inbox_of(mailbox)
    batch = [storing.Fetched(entry["file"], (CORPUS / entry["file"]).read_bytes()) for entry in MANIFEST]

    ids = storing.store_pop3_batch(mailbox=mailbox, folder=folder, batch=batch)
    assert parsing.parse_messages(ids) == len(MANIFEST)

    stored = {m.sha256: m for m in Message.objects.filter(mailbox=mailbox)}
    for entry in MANIFEST:
        message = stored[entry["sha256"]]
        assert hashlib.sha256(bytes(message.raw)).hexdigest() == entry["sha256"]
        assert message.parse_state in {"parsed", "partial"}
        assert "\x00" not in message.subject + message.text_body + message.html_body
    assert not Message.objects.filter(mailbox=mailbox, search_vector__isnull=True).exists()


def test_an_unknown_charset_is_marked_and_read_with_the_fallback() -> None:
    headers = b"Subject: x\r\nContent-Type: text/plain; charset=invalid-charset\r\n\r\n"
    raw = headers + "Türkçe ışğ\r\n".encode("windows-1254")

    parsed = mime.parse(raw)

    assert "Türkçe ışğ" in parsed.text
    assert parsed.state == "partial"
    assert any("unknown charset" in problem for problem in parsed.problems)


@pytest.mark.django_db
def test_reindex_rebuilds_every_derived_field_from_the_raw_bytes() -> None:
    mailbox = account_mailbox(("reindex", "unused"), 995, name="R")
    entries = MANIFEST[:20]
    batch = [storing.Fetched(e["file"], (CORPUS / e["file"]).read_bytes()) for e in entries]
    ids = storing.store_pop3_batch(mailbox=mailbox, folder=folders.inbox_of(mailbox), batch=batch)
    parsing.parse_messages(ids)
    before = {m.id: (m.subject, m.from_address, m.snippet) for m in Message.objects.filter(id__in=ids)}
    Message.objects.filter(id__in=ids).update(subject="", from_address="", snippet="", search_vector=None)

    call_command("reindex", stdout=StringIO())

    after = {m.id: (m.subject, m.from_address, m.snippet) for m in Message.objects.filter(id__in=ids)}
    assert after == before
    assert not Message.objects.filter(id__in=ids, search_vector__isnull=True).exists()
