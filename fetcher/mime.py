"""Reading a raw message: headers, bodies and attachment metadata. Plain Python, no Django.

The stdlib `email` package with `policy.default` does the work. Where it fails (an unknown
charset, raw 8-bit headers, NUL bytes, a header that will not parse) we fall back step by step
and record what could not be decoded in `Parsed.problems`, so a message is never lost for being
strange: at worst it is stored raw with state "failed".
"""

from __future__ import annotations

import binascii
import codecs
import email.header
import email.utils
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import BaseHeader
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import EmailPolicy
from html.parser import HTMLParser
from typing import Any, cast

MAX_PARTS = 500
SNIPPET_LENGTH = 200
# Turkish mail first: when a charset is unknown and the bytes are not UTF-8, windows-1254 reads
# Turkish letters right and every other western text as windows-1252 would.
FALLBACK_CHARSET = "windows-1254"
_CHARSET_ALIASES = {
    "x-unknown": "utf-8",
    "unknown": "utf-8",
    "x-mac-cyrillic": "mac-cyrillic",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "x-user-defined": "windows-1252",
    "utf8": "utf-8",
    "gb2312": "gb18030",
    "gbk": "gb18030",
}
_WHITESPACE = re.compile(r"\s+")
_SURROGATES = re.compile(r"[\udc80-\udcff]")


@dataclass(frozen=True)
class Address:
    name: str
    address: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True)
class Part:
    index: int
    filename: str
    content_type: str
    size: int
    content_id: str
    inline: bool


@dataclass
class Parsed:
    subject: str = ""
    from_: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    date: datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    text: str = ""
    html: str = ""
    attachments: list[Part] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failed: bool = False
    body_type: str = ""  # text/html when the message has an HTML body, else text/plain (as get_body())

    @property
    def state(self) -> str:
        if self.failed:
            return "failed"
        return "partial" if self.problems else "parsed"

    @property
    def snippet(self) -> str:
        source = self.text[: SNIPPET_LENGTH * 8] or html_to_text(self.html[: SNIPPET_LENGTH * 40])
        return _WHITESPACE.sub(" ", source).strip()[:SNIPPET_LENGTH]


# --- charsets -------------------------------------------------------------------------------------


def normalise_charset(name: str | None) -> str | None:
    """A Python codec for a declared charset, or None when nothing sensible matches."""
    if not name:
        return None
    cleaned = name.strip().strip("\"'").lower()
    cleaned = re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", cleaned.split("$")[0])
    for candidate in (_CHARSET_ALIASES.get(cleaned), cleaned, cleaned.removeprefix("x-")):
        if not candidate:
            continue
        try:
            return codecs.lookup(candidate).name
        except LookupError:
            continue
    return None


def decode_bytes(data: bytes, declared: str | None, problems: list[str], what: str) -> str:
    """Decode with the declared charset, else UTF-8, else the fallback; never raises."""
    charset = normalise_charset(declared)
    if declared and charset is None:
        problems.append(f"{what}: unknown charset {declared!r}")
    for candidate in [c for c in (charset, "utf-8") if c]:
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    if charset:
        problems.append(f"{what}: bytes invalid in {charset}; decoded with replacement characters")
        return data.decode(charset, "replace")
    problems.append(f"{what}: decoded as {FALLBACK_CHARSET}")
    return data.decode(FALLBACK_CHARSET, "replace")


def _clean(text: str, problems: list[str], what: str) -> str:
    if "\x00" in text:
        problems.append(f"{what}: NUL characters removed")
        text = text.replace("\x00", "")
    return text


def _unescape_8bit(value: str, charset_hint: str | None, problems: list[str], what: str) -> str:
    """Raw 8-bit bytes in a header arrive as surrogate escapes; decode them properly."""
    if not _SURROGATES.search(value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return decode_bytes(raw, charset_hint, problems, what)


# --- headers ----------------------------------------------------------------------------------------


def _header(msg: Message, name: str, problems: list[str], hint: str | None) -> str:
    try:
        value = msg.get(name)
    except Exception as exc:  # the header parser itself failed: decode the raw value by hand
        problems.append(f"{name}: {exc.__class__.__name__} while parsing")
        value = _raw_header(msg, name, hint, problems)
    if value is None:
        return ""
    text = _unescape_8bit(str(value), hint, problems, name)
    if "\n" in text or "\r" in text:
        problems.append(f"{name}: decodes to a line break; shown on one line")
        text = _WHITESPACE.sub(" ", text)
    return _clean(text, problems, name).strip()


def _raw_header(msg: Message, name: str, hint: str | None, problems: list[str]) -> str | None:
    for key, raw in msg.raw_items():
        if key.lower() == name.lower():
            pieces = []
            for chunk, charset in email.header.decode_header(str(raw)):
                if isinstance(chunk, bytes):
                    pieces.append(decode_bytes(chunk, charset or hint, problems, name))
                else:
                    pieces.append(chunk)
            return "".join(pieces)
    return None


def _addresses(msg: Message, name: str, problems: list[str], hint: str | None) -> list[Address]:
    try:
        header: Any = msg.get(name)
        if header is None:
            return []
        found = [
            Address(
                _unescape_8bit(addr.display_name, hint, problems, name),
                _unescape_8bit(addr.addr_spec, hint, problems, name),
            )
            for addr in header.addresses
        ]
    except Exception as exc:
        problems.append(f"{name}: {exc.__class__.__name__}; read with the lenient parser")
        text = _header(msg, name, problems, hint)
        found = [Address(n, a) for n, a in email.utils.getaddresses([text]) if a or n]
    return [
        Address(_clean(a.name, problems, name), _clean(a.address, problems, name)) for a in found if a.address
    ]


def _date(msg: Message, problems: list[str]) -> datetime | None:
    try:
        header = msg.get("date")
        if header is None:
            return None
        value: datetime | None = getattr(header, "datetime", None)
    except Exception:
        value = None
    if value is None:
        try:
            value = email.utils.parsedate_to_datetime(str(msg.get("date", "")))
        except (TypeError, ValueError, IndexError):
            problems.append("date: not a date")
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _message_ids(text: str) -> list[str]:
    return re.findall(r"<[^<>\s]+>", text)


# --- bodies and parts -------------------------------------------------------------------------------


def _payload_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


@dataclass(frozen=True)
class _Leaf:
    """A part with its Content-Type and Content-Disposition read once: each read re-parses the header."""

    index: int
    part: Message
    content_type: str
    charset: str | None
    disposition: str  # "" when the part has none
    named: bool  # the raw headers mention a name or filename
    size: int | None = None  # decoded size when known without decoding `part` (large messages)
    body: tuple[int, int] | None = None  # where the encoded body lies in the raw bytes (large messages)


def _leaf(index: int, part: Message, size: int | None = None, body: tuple[int, int] | None = None) -> _Leaf:
    try:
        header: Any = part.get("content-type")
        content_type = header.content_type if header is not None else part.get_default_type()
        charset = header.params.get("charset") if header is not None else None
    except Exception:  # a Content-Type beyond repair reads as the default, like Python's own fallback
        content_type, charset = part.get_default_type(), None
    try:
        disposition_header: Any = part.get("content-disposition")
        disposition = (disposition_header.content_disposition or "") if disposition_header is not None else ""
    except Exception:
        disposition = ""
    raw = " ".join(
        str(value) for key, value in part.raw_items() if key.lower().startswith("content-")
    ).lower()
    return _Leaf(index, part, content_type, charset, disposition.lower(), "name" in raw, size, body)


def _text_of(leaf: _Leaf, problems: list[str]) -> str:
    what = f"{leaf.content_type} body"
    data = _payload_bytes(leaf.part)
    return _clean(decode_bytes(data, leaf.charset, problems, what), problems, what)


def _filename(leaf: _Leaf, problems: list[str], hint: str | None) -> str:
    if not leaf.named:
        return ""
    try:
        name = leaf.part.get_filename() or ""
    except Exception as exc:
        problems.append(f"attachment name: {exc.__class__.__name__}")
        name = ""
    return _clean(_unescape_8bit(name, hint, problems, "attachment name"), problems, "attachment name")


def _walk(msg: Message) -> list[_Leaf]:
    """Depth-first leaves, not descending into attached messages (they are attachments)."""
    leaves: list[_Leaf] = []
    stack = [msg]
    index = 0
    while stack and index < MAX_PARTS:
        part = stack.pop()
        leaf = _leaf(index, part)
        index += 1
        if part.is_multipart() and leaf.content_type != "message/rfc822":
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(child for child in reversed(children) if isinstance(child, Message))
        else:
            leaves.append(leaf)
    return leaves


def _is_attachment(leaf: _Leaf, filename: str) -> bool:
    if leaf.disposition == "attachment" or leaf.content_type == "message/rfc822":
        return True
    return bool(filename) or leaf.content_type.split("/")[0] not in {"text", "multipart"}


def _collect_parts(leaves: list[_Leaf], parsed: Parsed, hint: str | None) -> None:
    for leaf in leaves:
        filename = _filename(leaf, parsed.problems, hint)
        if _take_as_body(leaf, parsed):
            if filename:  # shown as the body, and downloadable under its name too
                parsed.attachments.append(_attachment(leaf, filename))
            continue
        if _is_attachment(leaf, filename):
            parsed.attachments.append(_attachment(leaf, filename))
        elif leaf.content_type.startswith("text/") and leaf.content_type != "text/html":
            # A further inline text part: mail clients show it after the first one.
            more = _text_of(leaf, parsed.problems)
            parsed.text = f"{parsed.text}\n\n{more}" if parsed.text else more


def _take_as_body(leaf: _Leaf, parsed: Parsed) -> bool:
    """The first inline text/plain and text/html parts are the body, even when they carry a name."""
    if (leaf.disposition or "inline") != "inline":
        return False
    if leaf.content_type == "text/plain" and parsed.body_type == "":
        parsed.text, parsed.body_type = _text_of(leaf, parsed.problems), leaf.content_type
        return True
    if leaf.content_type == "text/html" and parsed.body_type != "text/html":
        parsed.html, parsed.body_type = _text_of(leaf, parsed.problems), leaf.content_type
        return True
    return False


def _attachment(leaf: _Leaf, filename: str) -> Part:
    if leaf.size is not None:
        size = leaf.size
    elif leaf.content_type == "message/rfc822":
        payload = leaf.part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        size = len(inner.as_bytes()) if isinstance(inner, Message) else 0
    else:
        size = len(_payload_bytes(leaf.part))
    return Part(
        index=leaf.index,
        filename=filename,
        content_type=leaf.content_type,
        size=size,
        content_id=_raw_value(leaf.part, "content-id").strip().strip("<>"),
        inline=leaf.disposition != "attachment",
    )


def _raw_value(msg: Message, name: str) -> str:
    """A header's raw text, without the header registry (ids and references need no decoding)."""
    return next((str(value) for key, value in msg.raw_items() if key.lower() == name), "")


# --- the entry point ----------------------------------------------------------------------------------


_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_CACHED_HEADER_LENGTH = 1000


@functools.lru_cache(maxsize=4096)
def _cached_header(name: str, value: str) -> BaseHeader:
    return policy.default.header_factory(name, value)  # type: ignore[no-any-return]


class _CachingPolicy(EmailPolicy):
    """`policy.default`, but a header value is parsed once, not on every read.

    The parser itself reads each part's Content-Type several times, and every read runs the
    header registry's full parser again; that was most of the parse time. Header objects are
    immutable, so equal (name, value) pairs can share one, across messages too (mail repeats
    its Content-Type, To and From lines). Long values are not kept.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        value = "".join(_LINE_BREAKS.split(value))
        if len(value) > _CACHED_HEADER_LENGTH:
            return self.header_factory(name, value)
        return _cached_header(name, value)


_POLICY = _CachingPolicy()


def parse(raw: bytes) -> Parsed:
    """Everything Postane derives from a message's bytes. Never raises."""
    parsed = Parsed()
    try:
        if len(raw) > LARGE_MESSAGE:
            msg, leaves = _large_message(raw, parsed.problems)
        else:
            msg = cast(
                EmailMessage, BytesParser(policy=_POLICY).parsebytes(raw)
            )  # the policy's message_factory
            leaves = _walk(msg)
    except Exception as exc:
        parsed.failed = True
        parsed.problems.append(f"unparseable: {exc.__class__.__name__}")
        return parsed
    try:
        _fill(msg, leaves, parsed)
    except Exception as exc:  # a message is never lost for being strange; it is stored raw and flagged
        parsed.failed = True
        parsed.problems.append(f"unparseable: {exc.__class__.__name__}: {exc}")
    parsed.problems.extend(f"defect: {defect.__class__.__name__}" for defect in msg.defects[:10])
    return parsed


def _fill(msg: EmailMessage, leaves: list[_Leaf], parsed: Parsed) -> None:
    hint = _leaf(0, msg).charset
    problems = parsed.problems
    parsed.subject = _header(msg, "subject", problems, hint)
    parsed.from_ = _addresses(msg, "from", problems, hint)
    parsed.to = _addresses(msg, "to", problems, hint)
    parsed.cc = _addresses(msg, "cc", problems, hint)
    parsed.reply_to = _addresses(msg, "reply-to", problems, hint)
    parsed.date = _date(msg, problems)
    parsed.message_id = next(iter(_message_ids(_raw_value(msg, "message-id"))), "")[:998]
    parsed.in_reply_to = next(iter(_message_ids(_raw_value(msg, "in-reply-to"))), "")[:998]
    parsed.references = _message_ids(_raw_value(msg, "references"))[-50:]
    _collect_parts(leaves, parsed, hint)


# --- large messages ---------------------------------------------------------------------------------
# The stdlib parser holds a message several times over (lines, a surrogate-escaped string, the
# decoded payloads). Above LARGE_MESSAGE the parts are found by their boundaries in the bytes
# instead; each part's headers and the first TEXT_LIMIT bytes of a text body go through the
# stdlib parser, and attachment sizes are counted piece by piece. The raw message stays whole.

LARGE_MESSAGE = 4 * 1024 * 1024
TEXT_LIMIT = 1024 * 1024
_PIECE = 1024 * 1024
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_MAX_DEPTH = 20


def _body_start(raw: bytes, start: int, end: int) -> int:
    if raw.startswith((b"\r\n", b"\n"), start):  # no headers at all
        return raw.index(b"\n", start) + 1
    match = _BLANK_LINE.search(raw, start, min(end, start + 256 * 1024))
    return match.end() if match else end


def _delimiters(raw: bytes, body: int, end: int, boundary: bytes) -> list[tuple[int, int, bool]]:
    """(where a delimiter line starts, where the next line starts, whether it closes) in order."""
    delimiter, found, position = b"--" + boundary, [], body
    while (at := raw.find(delimiter, position, end)) >= 0:
        position = at + 1
        if at != body and raw[at - 1 : at] != b"\n":
            continue
        line_end = raw.find(b"\n", at, end)
        after = end if line_end < 0 else line_end + 1
        closing = raw.startswith(b"--", at + len(delimiter))
        found.append((at, after, closing))
        if closing:
            break
        position = after
    return found


def _child_spans(raw: bytes, body: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    delimiters = _delimiters(raw, body, end, boundary)
    spans: list[tuple[int, int]] = []
    for (_at, after, closing), following in zip(delimiters, [*delimiters[1:], None], strict=False):
        if closing:
            break
        stop = following[0] if following else end
        stop -= 2 if raw[stop - 2 : stop] == b"\r\n" else 1 if raw[stop - 1 : stop] == b"\n" else 0
        spans.append((after, max(stop, after)))
    return spans


def _decoded_size(raw: bytes, body: int, end: int, encoding: str) -> int:
    """A part's decoded size, counted over line-aligned pieces (no full copy of the body)."""
    if encoding in {"x-uuencode", "uuencode", "x-uue"}:
        return (end - body) * 3 // 4  # near enough for a size shown beside a name
    if encoding not in {"base64", "quoted-printable"}:
        return end - body
    size, position = 0, body
    while position < end:
        stop = raw.find(b"\n", min(position + _PIECE, end), end)
        stop = end if stop < 0 else stop + 1
        piece = raw[position:stop]
        if encoding == "base64":
            letters = len(piece) - sum(piece.count(c) for c in (b"\r", b"\n", b" ", b"\t", b"="))
            size += letters * 3 // 4
        else:
            size += len(binascii.a2b_qp(piece))
        position = stop
    return size


def _headers_of(raw: bytes, start: int, body: int) -> EmailMessage:
    return cast(EmailMessage, BytesHeaderParser(policy=_POLICY).parsebytes(raw[start:body]))


def _large_leaf(raw: bytes, span: tuple[int, int, int], index: int, problems: list[str]) -> _Leaf:
    start, body, end = span
    headers = _headers_of(raw, start, body)
    leaf = _leaf(index, headers)
    if leaf.content_type.startswith("text/") and leaf.disposition != "attachment":
        stop = end
        if end - body > TEXT_LIMIT:
            stop = raw.rfind(b"\n", body, body + TEXT_LIMIT) + 1 or body + TEXT_LIMIT
            problems.append(
                f"{leaf.content_type} body: large message, read up to {TEXT_LIMIT // 1024} KB here"
            )
        part = BytesParser(policy=_POLICY).parsebytes(raw[start:body] + raw[body:stop])
        return _leaf(index, part, _decoded_size(raw, body, end, _encoding(headers)), (body, end))
    return _leaf(index, headers, _decoded_size(raw, body, end, _encoding(headers)), (body, end))


def _encoding(headers: Message) -> str:
    return str(headers.get("content-transfer-encoding", "")).strip().lower()


def _large_message(raw: bytes, problems: list[str]) -> tuple[EmailMessage, list[_Leaf]]:
    """The leaves of a large message, numbered as `_walk` numbers them (containers count too)."""
    top_body = _body_start(raw, 0, len(raw))
    msg = _headers_of(raw, 0, top_body)
    leaves: list[_Leaf] = []
    stack = [(0, top_body, len(raw), 0)]
    index = 0
    while stack and index < MAX_PARTS:
        start, body, end, depth = stack.pop()
        headers = msg if start == 0 else _headers_of(raw, start, body)
        boundary = headers.get_boundary() if headers.get_content_maintype() == "multipart" else None
        children = _child_spans(raw, body, end, boundary.encode("ascii", "replace")) if boundary else []
        if children and depth < _MAX_DEPTH:
            stack.extend((s, _body_start(raw, s, e), e, depth + 1) for s, e in reversed(children))
        else:
            leaves.append(_large_leaf(raw, (start, body, end), index, problems))
        index += 1
    return msg, leaves


# --- one part's bytes, for downloads ------------------------------------------------------------------


def part_content(raw: bytes, index: int) -> bytes | None:
    """The decoded bytes of the part numbered `index` (as in `Part.index`); None when there is none."""
    leaf = next((leaf for leaf in _leaves_of(raw) if leaf.index == index), None)
    return None if leaf is None else _leaf_content(raw, leaf)


def parts_content(raw: bytes, indexes: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """The decoded bytes of each wanted part, in message order, from one walk of the message.

    "Download all" asks for every part at once: one parse, not one per part (a message of
    3,000 tiny parts took a minute part by part).
    """
    wanted = set(indexes)
    for leaf in _leaves_of(raw):
        if leaf.index in wanted:
            yield leaf.index, _leaf_content(raw, leaf)


def _leaves_of(raw: bytes) -> list[_Leaf]:
    if len(raw) > LARGE_MESSAGE:
        return _large_message(raw, [])[1]
    return _walk(cast(EmailMessage, BytesParser(policy=_POLICY).parsebytes(raw)))


def _leaf_content(raw: bytes, leaf: _Leaf) -> bytes:
    if leaf.body is not None:
        return _decode_span(raw, *leaf.body, _encoding(leaf.part))
    if leaf.content_type == "message/rfc822":
        payload = leaf.part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        return inner.as_bytes() if isinstance(inner, Message) else _payload_bytes(leaf.part)
    return _payload_bytes(leaf.part)


def _decode_span(raw: bytes, body: int, end: int, encoding: str) -> bytes:
    if encoding == "base64":
        return binascii.a2b_base64(raw[body:end])
    if encoding == "quoted-printable":
        return binascii.a2b_qp(raw[body:end])
    return raw[body:end]


# --- HTML to text, for snippets and search ------------------------------------------------------------


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in {"br", "p", "div", "li", "tr"}:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    if not html:
        return ""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:
        return ""
    return "".join(extractor.chunks)
