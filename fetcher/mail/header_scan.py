"""The header block scanned without the parser: what stage one of ingest needs (Date and
Message-ID, quickly) and the id of a message on a POP3 server without UIDL. Plain Python, no Django.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from datetime import UTC, datetime

# The header block is looked for in this much of a message, here and where the database cuts a
# stored message for its fingerprint (fetcher.sync.pop3, a restored mailbox).
SCAN_LIMIT = 64 * 1024
_DATE = re.compile(rb"^Date:[ \t]*(.+(?:\r?\n[ \t].+)*)", re.IGNORECASE | re.MULTILINE)
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
