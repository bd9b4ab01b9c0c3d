"""Reading a raw message: headers, bodies and attachment metadata. Plain Python, no Django.

The stdlib `email` package with `policy.default` does the work. Where it fails (an unknown
charset, raw 8-bit headers, NUL bytes, a header that will not parse) we fall back step by step
and record what could not be decoded in `Parsed.problems`, so a message is never lost for being
strange: at worst it is stored raw with state "failed".
"""

from __future__ import annotations

import binascii
import codecs
import dataclasses
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

import charset_normalizer

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
# The legacy charset a language's mail used before UTF-8: raw 8-bit bytes that no charset of
# the message explains are read in the reader's language before a detector guesses.
LANGUAGE_CHARSETS = {"tr": "windows-1254"}
_WHITESPACE = re.compile(r"\s+")
_SURROGATES = re.compile(r"[\udc80-\udcff]")
# What the detector may answer: the charsets mail was written in (left to itself it finds
# HP Roman-8 or cp437 in a short Latin-1 subject).
_DETECTABLE = (
    *(f"cp{n}" for n in range(1250, 1259)),
    *("koi8_r", "koi8_u", "iso8859_2", "iso8859_5", "iso8859_7", "iso8859_15"),
    *("big5", "gb18030", "shift_jis", "euc_jp", "euc_kr"),
)
_ENCODED_WORD_CHARSET = re.compile(r"=\?([^?*\s]+)(?:\*[^?]*)?\?[bBqQ]\?")


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


TEXT_FROM_ATTACHED = "attached"
TEXT_UNSPLIT = "unsplit"


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
    # Where the text shown came from when not from the message's own body: TEXT_FROM_ATTACHED
    # (an attached or digested message) or TEXT_UNSPLIT (a multipart whose parts cannot be told apart).
    text_source: str = ""

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


def decode_bytes(
    data: bytes,
    declared: str | None,
    problems: list[str],
    what: str,
    guesses: Iterable[tuple[str, str]] = (),
) -> str:
    """Decode with the declared charset, else UTF-8, else `guesses`, else the fallback; never raises."""
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
    for guess, how in guesses:
        try:
            text = data.decode(guess)
        except (UnicodeDecodeError, LookupError):
            continue
        problems.append(f"{what}: decoded as {guess} ({how})")
        return text
    problems.append(f"{what}: decoded as {FALLBACK_CHARSET}")
    return data.decode(FALLBACK_CHARSET, "replace")


class _Charsets:
    """What a message tells about its charsets, for bytes that declare none (read when needed)."""

    def __init__(self, msg: Message, leaves: list[_Leaf], language: str) -> None:
        self._msg, self._leaves = msg, leaves
        self.language = normalise_charset(LANGUAGE_CHARSETS.get(language.split("-", maxsplit=1)[0].lower()))

    @functools.cached_property
    def declared(self) -> list[str]:
        """The Content-Type charsets of its parts, then the charsets of its encoded words."""
        named = [leaf.charset for leaf in self._leaves]
        named += _ENCODED_WORD_CHARSET.findall(" ".join(str(v) for _k, v in self._msg.raw_items()))
        found = dict.fromkeys(normalise_charset(name) for name in named)
        return [name for name in found if name and name not in {"utf-8", "ascii"}]

    @functools.cached_property
    def detected(self) -> str | None:
        """One guess from all the raw 8-bit header bytes together: one header alone is too short."""
        data = b"\n".join(
            v.encode("utf-8", "surrogateescape") for _k, v in self._msg.raw_items() if _SURROGATES.search(v)
        )
        best = charset_normalizer.from_bytes(data, cp_isolation=list(_DETECTABLE)).best()
        return best.encoding if best is not None else None

    def guesses(self) -> Iterator[tuple[str, str]]:
        """For a body in no charset: the message's other charsets, then the reader's language.

        A generator, so that a body which decodes as declared never reads the headers for them."""
        yield from ((name, "declared") for name in self.declared)
        if self.language:
            yield self.language, "language"

    def header_text(self, data: bytes, problems: list[str], what: str) -> str:
        """Raw 8-bit header bytes: valid UTF-8 stays UTF-8; then declared, language, detected."""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        for charset, how in [*((c, "declared") for c in self.declared), (self.language, "language")]:
            try:
                text = data.decode(charset) if charset else None
            except UnicodeDecodeError:
                continue
            if text is not None:
                problems.append(f"{what}: 8-bit bytes read as {charset} ({how})")
                return text
        try:
            text = data.decode(self.detected) if self.detected else None
        except UnicodeDecodeError:
            text = None
        if text is not None:
            problems.append(f"{what}: 8-bit bytes read as {self.detected} (detected)")
            return text
        problems.append(f"{what}: 8-bit bytes read as {FALLBACK_CHARSET} (fallback)")
        return data.decode(FALLBACK_CHARSET, "replace")


def _clean(text: str, problems: list[str], what: str) -> str:
    if "\x00" in text:
        problems.append(f"{what}: NUL characters removed")
        text = text.replace("\x00", "")
    return text


def _unescape_8bit(value: str, charsets: _Charsets, problems: list[str], what: str) -> str:
    """Raw 8-bit bytes in a header arrive as surrogate escapes; decode them properly."""
    if not _SURROGATES.search(value):
        return value
    return charsets.header_text(value.encode("utf-8", "surrogateescape"), problems, what)


# --- headers ----------------------------------------------------------------------------------------


def _get(msg: Message, name: str, problems: list[str], charsets: _Charsets) -> Any:
    """A header, its raw 8-bit bytes decoded first: the registry would read them as UTF-8 with U+FFFD."""
    value = msg.get(name)
    raw = _raw_value(msg, name) if isinstance(value, str) and "\ufffd" in value else ""
    if not _SURROGATES.search(raw):
        return value
    text = charsets.header_text(raw.encode("utf-8", "surrogateescape"), problems, name)
    return _POLICY.header_fetch_parse(name, text)


def _header(msg: Message, name: str, problems: list[str], charsets: _Charsets) -> str:
    try:
        value = _get(msg, name, problems, charsets)
    except Exception as exc:  # the header parser itself failed: decode the raw value by hand
        problems.append(f"{name}: {exc.__class__.__name__} while parsing")
        value = _raw_header(msg, name, charsets, problems)
    if value is None:
        return ""
    text = _unescape_8bit(str(value), charsets, problems, name)
    if "\ufffd" in text and "=?" in _raw_value(
        msg, name
    ):  # an encoded word in a charset the registry does not know
        text = _better_encoded_words(msg, name, text, charsets, problems)
    if "\n" in text or "\r" in text:
        problems.append(f"{name}: decodes to a line break; shown on one line")
        text = _WHITESPACE.sub(" ", text)
    return _clean(text, problems, name).strip()


def _better_encoded_words(
    msg: Message, name: str, text: str, charsets: _Charsets, problems: list[str]
) -> str:
    """Encoded words decoded with our charset aliases (iso-8859-8-i, gb2312 as gb18030), if that is better."""
    mine = _raw_header(msg, name, charsets, problems := [*problems]) or ""
    if mine.count("\ufffd") >= text.count("\ufffd"):
        return text
    return _WHITESPACE.sub(" ", mine) if "\n" in mine else mine


def _raw_header(msg: Message, name: str, charsets: _Charsets, problems: list[str]) -> str | None:
    for key, raw in msg.raw_items():
        if key.lower() == name.lower():
            pieces = []
            for chunk, charset in email.header.decode_header(str(raw)):
                if isinstance(chunk, bytes) and charset is None:
                    pieces.append(charsets.header_text(chunk, problems, name))
                elif isinstance(chunk, bytes):
                    pieces.append(decode_bytes(chunk, charset, problems, name))
                else:
                    pieces.append(chunk)
            return "".join(pieces)
    return None


def _addresses(msg: Message, name: str, problems: list[str], charsets: _Charsets) -> list[Address]:
    try:
        header: Any = _get(msg, name, problems, charsets)
        if header is None:
            return []
        found = [
            Address(
                _unescape_8bit(addr.display_name, charsets, problems, name),
                _unescape_8bit(addr.addr_spec, charsets, problems, name),
            )
            for addr in header.addresses
        ]
    except Exception as exc:
        problems.append(f"{name}: {exc.__class__.__name__}; read with the lenient parser")
        text = _header(msg, name, problems, charsets)
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
    old_name: str = ""  # a name= the Content-Type parser could not read (`type/sub name=x`, no ";")
    unsplit: bool = False  # a multipart whose parts could not be found, read as plain text


# Old mailers wrote "Content-Type: application/octet-stream\n\tname=x.pdf" without the ";"; the
# header registry then reads the whole value as invalid (text/plain) and the name is lost.
_OLD_CONTENT_TYPE = re.compile(r'\s*([\w!#$&^.+-]+/[\w!#$&^.+-]+)\s+name\s*=\s*"?([^";]+)', re.IGNORECASE)


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
    leaf = _Leaf(index, part, content_type, charset, disposition.lower(), "name" in raw, size, body)
    if leaf.named and (old := _OLD_CONTENT_TYPE.match(_raw_value(part, "content-type"))):
        leaf = dataclasses.replace(leaf, content_type=old[1].lower(), old_name=old[2].strip())
    return leaf


def _text_of(leaf: _Leaf, problems: list[str], charsets: _Charsets) -> str:
    what = f"{leaf.content_type} body"
    data = _payload_bytes(leaf.part)
    return _clean(decode_bytes(data, leaf.charset, problems, what, charsets.guesses()), problems, what)


def _filename(leaf: _Leaf, problems: list[str], charsets: _Charsets) -> str:
    if not leaf.named:
        return ""
    try:
        name = leaf.part.get_filename() or leaf.old_name
    except Exception as exc:
        problems.append(f"attachment name: {exc.__class__.__name__}")
        name = leaf.old_name
    return _clean(_unescape_8bit(name, charsets, problems, "attachment name"), problems, "attachment name")


def _walk(msg: Message) -> list[_Leaf]:
    """Depth-first leaves, not descending into attached messages (they are attachments)."""
    leaves: list[_Leaf] = []
    stack = [msg]
    index = resplits = 0
    while stack and index < MAX_PARTS:
        part = stack.pop()
        leaf = _leaf(index, part)
        index += 1
        if leaf.content_type.startswith("multipart/") and not part.is_multipart():
            # Each split parses the part again: a few per message, so nesting cannot multiply the work.
            resplits += 1
            split = _split_again(part, leaf.content_type) if resplits <= _MAX_RESPLITS else None
            if split is None:  # no part to be found: its content is the text
                if _payload_bytes(part).strip():
                    leaves.append(dataclasses.replace(leaf, content_type="text/plain", unsplit=True))
                continue
            part = split
        if part.is_multipart() and leaf.content_type != "message/rfc822":
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(child for child in reversed(children) if isinstance(child, Message))
        else:
            leaves.append(leaf)
    return leaves


_MAX_RESPLITS = 10
_FIRST_DELIMITER = re.compile(rb'^--([^\s"]{1,200})[ \t]*\r?$', re.MULTILINE)


def _split_again(part: Message, content_type: str) -> Message | None:
    """A multipart Python could not split (no boundary, or not the one its lines use), split by
    the first delimiter line it has, as other readers do; None when it has none."""
    body = _payload_bytes(part)
    found = _FIRST_DELIMITER.search(body)
    if found is None:
        return None
    head = f'Content-Type: {content_type}; boundary="'.encode() + found[1].removesuffix(b"--") + b'"\n\n'
    again = BytesParser(policy=_POLICY).parsebytes(head + body)
    return again if again.is_multipart() and again.get_payload() else None


def _is_attachment(leaf: _Leaf, filename: str) -> bool:
    if leaf.disposition == "attachment" or leaf.content_type == "message/rfc822":
        return True
    return bool(filename) or leaf.content_type.split("/")[0] not in {"text", "multipart"}


def _collect_parts(leaves: list[_Leaf], parsed: Parsed, charsets: _Charsets) -> None:
    for leaf in leaves:
        filename = _filename(leaf, parsed.problems, charsets)
        if _take_as_body(leaf, parsed, charsets):
            if filename:  # shown as the body, and downloadable under its name too
                parsed.attachments.append(_attachment(leaf, filename))
            continue
        if _is_attachment(leaf, filename):
            parsed.attachments.append(_attachment(leaf, filename))
        elif leaf.content_type.startswith("text/") and leaf.content_type != "text/html":
            # A further inline text part: mail clients show it after the first one.
            more = _text_of(leaf, parsed.problems, charsets)
            parsed.text = f"{parsed.text}\n\n{more}" if parsed.text else more


def _take_as_body(leaf: _Leaf, parsed: Parsed, charsets: _Charsets) -> bool:
    """The first inline text/plain and text/html parts are the body, even when they carry a name."""
    if (leaf.disposition or "inline") != "inline":
        return False
    if leaf.content_type == "text/plain" and parsed.body_type == "":
        parsed.text, parsed.body_type = _text_of(leaf, parsed.problems, charsets), leaf.content_type
        parsed.text_source = TEXT_UNSPLIT if leaf.unsplit else ""
        return True
    if leaf.content_type == "text/html" and parsed.body_type != "text/html":
        parsed.html, parsed.body_type = _text_of(leaf, parsed.problems, charsets), leaf.content_type
        return True
    return False


_MAX_ATTACHED_DEPTH = 3
_MAX_ATTACHED_TEXTS = 50


def _text_from_attached(leaves: list[_Leaf], parsed: Parsed, raw: bytes, language: str, depth: int) -> None:
    """No text of its own (a forward as message/rfc822, a digest): show the attached messages' text."""
    found = [
        inner
        for leaf in leaves
        if leaf.content_type == "message/rfc822" and (data := _attached_bytes(leaf, raw)) is not None
        for inner in [_parse(data, language, depth + 1)]
        if (inner.text or inner.html).strip()
    ][:_MAX_ATTACHED_TEXTS]
    if not found:
        return
    if len(found) == 1:
        parsed.text, parsed.html = found[0].text, found[0].html
    else:
        parsed.text = "\n\n".join((inner.text or html_to_text(inner.html)).strip() for inner in found)
    parsed.text_source = TEXT_FROM_ATTACHED


def _attached_bytes(leaf: _Leaf, raw: bytes) -> bytes | None:
    if leaf.body is not None:  # a large message's part: its bytes are where the scan found them
        return _decode_span(raw, *leaf.body, _encoding(leaf.part))
    payload = leaf.part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return None
    data = inner.as_bytes()
    encoding = _encoding(leaf.part)
    if encoding in {"base64", "quoted-printable"}:  # RFC 2046 forbids it; mailers do it all the same
        data = _decode_span(data, 0, len(data), encoding)
    return data


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


def parse(raw: bytes, *, language: str = "") -> Parsed:
    """Everything Postane derives from a message's bytes. Never raises.

    `language` is the reader's (e.g. "tr"): bytes in no declared charset are read in its legacy
    charset (LANGUAGE_CHARSETS) before a detector guesses.
    """
    return _parse(raw, language, 0)


def _parse(raw: bytes, language: str, depth: int) -> Parsed:
    parsed = Parsed()
    try:
        raw = _readable(raw)
        if len(raw) > PARSED_BY_BOUNDARIES:
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
        _fill(msg, leaves, parsed, _Charsets(msg, leaves, language))
        if not (parsed.text or parsed.html).strip() and depth < _MAX_ATTACHED_DEPTH:
            _text_from_attached(leaves, parsed, raw, language, depth)
    except Exception as exc:  # a message is never lost for being strange; it is stored raw and flagged
        parsed.failed = True
        parsed.problems.append(f"unparseable: {exc.__class__.__name__}: {exc}")
    parsed.problems.extend(f"defect: {defect.__class__.__name__}" for defect in msg.defects[:10])
    return parsed


def _fill(msg: EmailMessage, leaves: list[_Leaf], parsed: Parsed, charsets: _Charsets) -> None:
    problems = parsed.problems
    parsed.subject = _header(msg, "subject", problems, charsets)
    parsed.from_ = _addresses(msg, "from", problems, charsets)
    parsed.to = _addresses(msg, "to", problems, charsets)
    parsed.cc = _addresses(msg, "cc", problems, charsets)
    parsed.reply_to = _addresses(msg, "reply-to", problems, charsets)
    parsed.date = _date(msg, problems)
    parsed.message_id = next(iter(_message_ids(_raw_value(msg, "message-id"))), "")[:998]
    parsed.in_reply_to = next(iter(_message_ids(_raw_value(msg, "in-reply-to"))), "")[:998]
    parsed.references = _message_ids(_raw_value(msg, "references"))[-50:]
    _collect_parts(leaves, parsed, charsets)


_DECLARED_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^"\s;]{1,200}))', re.IGNORECASE)


def _readable(raw: bytes) -> bytes:
    """The bytes as their sender meant them; the stored raw message is never changed.

    - A Maildir file with CRLF line ends that a POP3 or IMAP server sends as CR CR LF: one line
      end each, not two (every header would end the header block).
    - A delimiter line with text after the boundary (`--b trailing`): the boundary alone, as
      other readers take it (Python's parser requires nothing but white space there).
    """
    first = raw.find(b"\n")
    if first > 1 and raw[first - 2 : first] == b"\r\r":
        raw = raw.replace(b"\r\r\n", b"\r\n")
    if len(raw) > PARSED_BY_BOUNDARIES or b"\n--" not in raw:  # large: its boundary scan takes such lines
        return raw
    if not _SPACED_DASH_LINE.search(raw):
        return raw
    boundaries = {quoted or bare for quoted, bare in _DECLARED_BOUNDARY.findall(raw)}
    if not boundaries or len(boundaries) > _MAX_BOUNDARIES:
        return raw
    delimiters = {b"--" + boundary + end for boundary in boundaries for end in (b"--", b"")}
    alternatives = b"|".join(re.escape(b) for b in sorted(boundaries, key=len, reverse=True))
    trailed = re.compile(rb"^(--(?:" + alternatives + rb")(?:--)?)[ \t]+\S[^\r\n]*", re.MULTILINE)
    # A line that is itself a declared boundary (one with a space in it, r073) stays as it is.
    return trailed.sub(lambda line: line[0] if line[0].rstrip() in delimiters else line[1], raw)


# A line starting with "--" that has text after white space: maybe a delimiter with trailing text.
_SPACED_DASH_LINE = re.compile(rb"^--[^\r\n]*?[ \t]\S", re.MULTILINE)
_MAX_BOUNDARIES = 50


# --- large messages ---------------------------------------------------------------------------------
# The stdlib parser holds a message several times over (lines, a surrogate-escaped string, the
# decoded payloads). Above PARSED_BY_BOUNDARIES the parts are found by their boundaries in the bytes
# instead; each part's headers and the first TEXT_LIMIT bytes of a text body go through the
# stdlib parser, and attachment sizes are counted piece by piece. The raw message stays whole.

PARSED_BY_BOUNDARIES = 4 * 1024 * 1024
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


_ANYTHING = re.compile(rb"\S")


def _large_leaf(
    raw: bytes, span: tuple[int, int, int], index: int, problems: list[str], headers: EmailMessage
) -> _Leaf:
    start, body, end = span
    leaf = _leaf(index, headers)
    # A multipart without parts is read as text, as `_walk` reads it (nothing at all: no leaf).
    unsplit = leaf.content_type.startswith("multipart/") and _ANYTHING.search(raw, body, end) is not None
    if (leaf.content_type.startswith("text/") or unsplit) and leaf.disposition != "attachment":
        stop = end
        if end - body > TEXT_LIMIT:
            stop = raw.rfind(b"\n", body, body + TEXT_LIMIT) + 1 or body + TEXT_LIMIT
            problems.append(
                f"{leaf.content_type} body: large message, read up to {TEXT_LIMIT // 1024} KB here"
            )
        part = BytesParser(policy=_POLICY).parsebytes(raw[start:body] + raw[body:stop])
        found = _leaf(index, part, _decoded_size(raw, body, end, _encoding(headers)), (body, end))
        return dataclasses.replace(found, content_type="text/plain", unsplit=True) if unsplit else found
    return _leaf(index, headers, _decoded_size(raw, body, end, _encoding(headers)), (body, end))


def _encoding(headers: Message) -> str:
    return str(headers.get("content-transfer-encoding", "")).strip().lower()


def _large_message(raw: bytes, problems: list[str]) -> tuple[EmailMessage, list[_Leaf]]:
    """The leaves of a large message, numbered as `_walk` numbers them (containers count too)."""
    top_body = _body_start(raw, 0, len(raw))
    msg = _headers_of(raw, 0, top_body)
    leaves: list[_Leaf] = []
    stack = [(0, top_body, len(raw), 0, False)]
    index = 0
    while stack and index < MAX_PARTS:
        start, body, end, depth, in_digest = stack.pop()
        headers = msg if start == 0 else _headers_of(raw, start, body)
        if in_digest:  # RFC 2046 5.1.5: a digest's parts are messages unless they say otherwise
            headers.set_default_type("message/rfc822")
        multipart = headers.get_content_maintype() == "multipart"
        children = _large_children(raw, headers, body, end) if multipart else []
        if children and depth < _MAX_DEPTH:
            digest = headers.get_content_type() == "multipart/digest"
            stack.extend((s, _body_start(raw, s, e), e, depth + 1, digest) for s, e in reversed(children))
        else:
            leaves.append(_large_leaf(raw, (start, body, end), index, problems, headers))
        index += 1
    return msg, leaves


def _large_children(raw: bytes, headers: EmailMessage, body: int, end: int) -> list[tuple[int, int]]:
    """A multipart's parts by its boundary, else by its first delimiter line (as `_split_again`)."""
    boundary = headers.get_boundary()
    children = _child_spans(raw, body, end, boundary.encode("ascii", "replace")) if boundary else []
    if not children and (found := _FIRST_DELIMITER.search(raw, body, end)):
        children = _child_spans(raw, body, end, found[1].removesuffix(b"--"))
    return children


# --- one part's bytes, for downloads ------------------------------------------------------------------


def part_content(raw: bytes, index: int) -> bytes | None:
    """The decoded bytes of the part numbered `index` (as in `Part.index`); None when there is none."""
    raw = _readable(raw)
    leaf = next((leaf for leaf in _leaves_of(raw) if leaf.index == index), None)
    return None if leaf is None else _leaf_content(raw, leaf)


def parts_content(raw: bytes, indexes: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """The decoded bytes of each wanted part, in message order, from one walk of the message.

    "Download all" asks for every part at once: one parse, not one per part (a message of
    3,000 tiny parts took a minute part by part).
    """
    wanted, raw = set(indexes), _readable(raw)
    for leaf in _leaves_of(raw):
        if leaf.index in wanted:
            yield leaf.index, _leaf_content(raw, leaf)


def _leaves_of(raw: bytes) -> list[_Leaf]:
    """Every leaf part of a message already made readable (`_readable`): spans index those bytes."""
    if len(raw) > PARSED_BY_BOUNDARIES:
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
