"""The header block scanned without the parser: what stage one of ingest needs (Date and
Message-ID, quickly) and the id of a message on a POP3 server without UIDL. Plain Python, no Django.
"""

from __future__ import annotations

import email.errors
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import HeaderParser

# The header block is looked for in this much of a message, here and where the database cuts a
# stored message for its fingerprint (fetcher.sync.pop3, a restored mailbox).
SCAN_LIMIT = 64 * 1024
_DATE = re.compile(rb"^Date:[ \t]*(.+(?:\r?\n[ \t].+)*)", re.IGNORECASE | re.MULTILINE)
# What a list row reads of a message not parsed yet: enough for nearly every header block, little
# enough for a page of 50 such rows (the database cuts it: fetcher.selectors).
SHOWN_HEAD = 8 * 1024
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


def _header_block(raw: bytes) -> bytes:
    head = raw[:SCAN_LIMIT]
    end = re.search(rb"\r?\n\r?\n", head)
    return head[: end.start()] if end else head


def quick_headers(raw: bytes) -> tuple[datetime | None, str]:
    """Date and Message-ID from the header block, without the full parser (stage one is about speed)."""
    block = _header_block(raw)
    date = None
    if match := _DATE.search(block):
        try:
            date = email.utils.parsedate_to_datetime(match[1].decode("ascii", "replace"))
        except (TypeError, ValueError, IndexError):
            date = None
        if date is not None and date.tzinfo is None:
            date = date.replace(tzinfo=UTC)
    message_id = _MESSAGE_ID.search(block)
    return date, message_id[1].decode("ascii", "replace")[:998] if message_id else ""


def fingerprint(header_block: bytes) -> str:
    """The id of a message on a POP3 server without UIDL: a hash of its header block.

    Headers do not change while a message sits on the server, and Received, Message-ID and
    Date lines make two different messages' blocks differ in practice.
    """
    lines = [line.rstrip() for line in _header_block(header_block).splitlines()]
    return "fp:" + hashlib.sha256(b"\n".join(lines)).hexdigest()


@dataclass(frozen=True)
class Shown:
    """Who a message is from and what it is about, as its header block says (decoded)."""

    from_name: str = ""
    from_address: str = ""
    subject: str = ""


def shown_headers(head: bytes) -> Shown:
    """From and Subject decoded (RFC 2047, or raw 8-bit text) from the start of a message, for
    showing a message before stage two has parsed it. `head` may be its first SHOWN_HEAD bytes, cut
    anywhere: a line cut short is not read."""
    block = _header_block(head)
    if len(block) == len(head) >= SHOWN_HEAD and b"\n" in block:  # cut inside the block: so is its last line
        block = block[: block.rindex(b"\n")]
    text = "\n".join(_line_text(line) for line in block.splitlines())
    headers = HeaderParser(policy=email.policy.default).parsestr(text + "\n\n")
    try:
        subject = " ".join(str(headers.get("Subject", "")).split())
        addresses = headers["From"].addresses if headers["From"] is not None else ()
    except (email.errors.HeaderParseError, ValueError, IndexError, TypeError, AttributeError):
        return Shown()
    sender = addresses[0] if addresses else None
    if sender is None:
        return Shown(subject=subject)
    return Shown(sender.display_name, sender.addr_spec[:320], subject)


def _line_text(line: bytes) -> str:
    """Raw 8-bit bytes in a header line: UTF-8 as most such mail is, else the Turkish Windows code
    page (stage two weighs the charsets properly)."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("cp1254", "replace")
