"""Outgoing mail built from what a person wrote. Plain Python, no Django.

Header injection cannot happen: every header value, display name and address is refused if it
holds a CR, LF or NUL; addresses are parsed into `Address` objects, never pasted into headers
as strings; the SMTP envelope is taken from those objects; Bcc never becomes a header. Headers
are encoded by `email.policy` (RFC 2047 words, RFC 2231 file names), bodies are UTF-8, and
SMTPUTF8 (RFC 6531) is asked for only when an address needs it.
"""

from __future__ import annotations

import email.utils
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from html import escape

_FORBIDDEN = re.compile(r"[\r\n\x00]")
_ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[^\s@<>()\[\],;:\"]+$")


class ComposeError(ValueError):
    """A value that cannot go into a message; `field` names the form field it came from."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class Recipient:
    name: str
    address: str

    def as_address(self) -> Address:
        local, _at, domain = self.address.rpartition("@")
        return Address(display_name=self.name, username=local, domain=domain)

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


def checked(value: str, field_name: str) -> str:
    if _FORBIDDEN.search(value):
        raise ComposeError(field_name, "Line breaks and NUL characters are not allowed here.")
    return value


def recipients(text: str, field_name: str) -> list[Recipient]:
    """Addresses typed into To, Cc or Bcc ("Ayşe <ayse@example.com>, bob@example.net")."""
    checked(text, field_name)
    found = []
    for name, address in email.utils.getaddresses([text]):
        if not name and not address:
            continue
        if not _ADDRESS.match(address):
            raise ComposeError(field_name, f"{(address or name)!r} is not an e-mail address.")
        found.append(Recipient(name.strip(), address))
    return found


@dataclass
class Draft:
    sender: Recipient
    message_id: str
    date: datetime
    to: list[Recipient] = field(default_factory=list)
    cc: list[Recipient] = field(default_factory=list)
    bcc: list[Recipient] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # name, type, content

    def envelope(self) -> tuple[str, list[str]]:
        """MAIL FROM and RCPT TO, from the parsed addresses (Bcc included, each once)."""
        rcpts = list(dict.fromkeys(r.address for r in (*self.to, *self.cc, *self.bcc)))
        return self.sender.address, rcpts

    def needs_smtputf8(self) -> bool:
        return not all(r.address.isascii() for r in (self.sender, *self.to, *self.cc, *self.bcc))


def build(draft: Draft) -> bytes:
    """The message's bytes, exactly as they will be sent (and kept in Sent)."""
    for name, value in (("subject", draft.subject), ("message_id", draft.message_id)):
        checked(value, name)
    for person in (draft.sender, *draft.to, *draft.cc, *draft.bcc):
        checked(person.name, "recipients")
        checked(person.address, "recipients")
    mail_policy = policy.SMTPUTF8 if draft.needs_smtputf8() else policy.SMTP
    message = EmailMessage(policy=mail_policy)
    message["From"] = draft.sender.as_address()
    if draft.to:
        message["To"] = [r.as_address() for r in draft.to]
    if draft.cc:
        message["Cc"] = [r.as_address() for r in draft.cc]
    message["Subject"] = draft.subject
    message["Date"] = email.utils.format_datetime(draft.date)
    message["Message-ID"] = draft.message_id
    if draft.in_reply_to:
        message["In-Reply-To"] = checked(draft.in_reply_to, "in_reply_to")
    if draft.references:
        message["References"] = checked(" ".join(draft.references), "references")
    message["MIME-Version"] = "1.0"
    # Quoted-printable: readable, and safe through servers without 8BITMIME.
    message.set_content(draft.text or "", charset="utf-8", cte="quoted-printable")
    if draft.html:
        message.add_alternative(draft.html, subtype="html", charset="utf-8", cte="quoted-printable")
    forwarded: dict[bytes, bytes] = {}
    for filename, content_type, content in draft.attachments:
        if content_type.lower() == "message/rfc822":
            forwarded[_attach_message(message, content, checked(filename, "attachments"))] = content
            continue
        maintype, _slash, subtype = (content_type or "application/octet-stream").partition("/")
        message.add_attachment(
            content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=checked(filename, "attachments"),
        )
    built = message.as_bytes(policy=mail_policy)
    for placeholder, raw in forwarded.items():
        built = built.replace(placeholder, _LINE_END.sub(b"\r\n", raw), 1)
    return built


_LINE_END = re.compile(rb"\r?\n")


def _attach_message(message: EmailMessage, raw: bytes, filename: str) -> bytes:
    """Attach a message forwarded as an attachment; returns the placeholder its bytes replace.

    RFC 2046 allows message/rfc822 no encoding but 7bit or 8bit (receivers cannot open a base64
    one), and parsing and writing the message again would change its bytes (and break its
    signatures), so the part holds a placeholder that `build` replaces with the bytes as they
    are, lines ending in CRLF as SMTP needs.
    """
    placeholder = f"postane-forwarded-{uuid.uuid4().hex}".encode()
    part = EmailMessage(policy=message.policy)
    part["Content-Type"] = "message/rfc822"
    part.add_header("Content-Disposition", "attachment", filename=filename)
    part["Content-Transfer-Encoding"] = "7bit" if raw.isascii() else "8bit"
    part.set_payload(placeholder.decode())
    if message.get_content_maintype() != "multipart" or message.get_content_subtype() != "mixed":
        message.make_mixed()
    message.attach(part)
    return placeholder


_DATE_FIELD = re.compile(rb"^Date:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*", re.MULTILINE | re.IGNORECASE)


def redated(raw: bytes, when: datetime) -> bytes:
    """The message with its Date field set to `when` and nothing else changed: a message written
    now and sent later (scheduled, or after the undo window) is dated when it leaves."""
    head, blank, body = raw.partition(b"\r\n\r\n")
    field = f"Date: {email.utils.format_datetime(when)}\r\n".encode()
    return _DATE_FIELD.sub(lambda _found: field, head + b"\r\n", count=1)[:-2] + blank + body


_SEPARATOR = re.compile(r"--[ \t]*\n")


def signature_block(signature: str) -> str:
    """The signature as it goes below a message: after the "-- " line that mail readers know (RFC
    3676 4.3), once (a signature written with its own separator gets no second one); empty when
    there is none. Compose shows exactly this under the body."""
    lines = signature.replace("\r\n", "\n").strip("\n")
    if not lines.strip():
        return ""
    return "-- \n" + (_SEPARATOR.sub("", lines, count=1) if _SEPARATOR.match(lines + "\n") else lines)


def signed(text: str, html: str, signature: str) -> tuple[str, str]:
    """The body with the signature block below it. An HTML body gets it too (it was only in the
    plain-text part)."""
    lines = signature_block(signature)
    if not lines:
        return text, html
    if html:
        shown = "<br>".join(escape(line) for line in lines.split("\n"))
        html = f'{html}<div class="signature"><br>{shown}</div>'
    return f"{text.rstrip()}\n\n{lines}\n", html


def forwarding(text: str, html: str, forwarded_text: str, forwarded_html: str) -> tuple[str, str]:
    """What was written (signed) with a forward's original below it, in both parts. There is an HTML
    part when either had one: a plain note goes into it as preformatted text, and so does the
    original's text when it had no HTML."""
    if not forwarded_text:
        return text, html
    both = f"{text.rstrip()}\n\n{forwarded_text}" if text.strip() else forwarded_text
    if not (html or forwarded_html):
        return both, ""
    note = html or (_preformatted(text) if text.strip() else "")
    return both, note + (forwarded_html or _preformatted(forwarded_text))


def _preformatted(text: str) -> str:
    shown = escape(text.strip("\n"))
    return f'<div style="white-space:pre-wrap">{shown}</div>'


def new_message_id(domain: str) -> str:
    return email.utils.make_msgid(domain=checked(domain, "message_id"))


# --- replies and forwards: what the compose form starts with -------------------------------------------

_PREFIXED = re.compile(r"^\s*(re|ynt|aw|sv)\s*:", re.IGNORECASE)
_FORWARDED = re.compile(r"^\s*(fwd?|[iİIı]lt|wg)\s*:", re.IGNORECASE)


def reply_subject(subject: str) -> str:
    return subject if _PREFIXED.match(subject) else f"Re: {subject}"


def forward_subject(subject: str) -> str:
    return subject if _FORWARDED.match(subject) else f"Fwd: {subject}"


def quoted(text: str, heading: str) -> str:
    """The original under a heading, each line behind "> ", after two empty lines for the answer."""
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    return "\n\n" + heading + "\n" + "\n".join(f"> {line}" if line else ">" for line in lines) + "\n"


def reply_all(original: list[Recipient], own: set[str]) -> list[Recipient]:
    """Everyone the original went to, each once, without the writer's own addresses."""
    seen, kept = {address.lower() for address in own}, []
    for person in original:
        if person.address.lower() not in seen:
            seen.add(person.address.lower())
            kept.append(person)
    return kept


def as_field(people: list[Recipient]) -> str:
    """Recipients as the To field shows them again ("Ayşe <ayse@example.com>, bob@example.net")."""

    def shown(person: Recipient) -> str:
        if not person.name:
            return person.address
        name = person.name.replace("\\", "").replace('"', "")
        return (
            f'"{name}" <{person.address}>'
            if re.search(r"[,;:<>@()\[\]]", name)
            else f"{name} <{person.address}>"
        )

    return ", ".join(shown(person) for person in people)
