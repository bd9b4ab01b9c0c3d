"""What goes into a draft: the first values of a reply or a forward, a saved draft's values for its
form again, its attachments, and the autosave's lenient values.

fetcher.outbox keeps a row's life (saved, queued, undone, reopened, delivered); this module builds
what the person's action puts in it, so the compose views only read the request and render.
"""

from __future__ import annotations

import html
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import Mailbox, User
from accounts.selectors import mailboxes_of
from fetcher import outbox, selectors
from fetcher.mail import compose, mime, safehtml
from fetcher.mail.names import visible_name
from fetcher.models import Attachment, Message, OutgoingAttachment, OutgoingMessage

# How a draft can start from a stored message: a reply, a reply to all, a forward inline or as a file.
MODES = ("reply", "all", "forward", "attach")
REPLIES = frozenset({"reply", "all"})  # the modes whose draft records what it answers
# The fields the compose page's autosave sends.
TYPED = ("to", "cc", "bcc", "subject", "text", "html")


def _people(rows: list[dict[str, str]]) -> list[compose.Recipient]:
    return [compose.Recipient(row.get("name", ""), row.get("address", "")) for row in rows]


def draft_initial(*, outgoing: OutgoingMessage) -> dict[str, Any]:
    """A saved draft's values as its compose form shows them again."""
    return {
        "mailbox": outgoing.mailbox,
        "to": compose.as_field(_people(outgoing.to)),
        "cc": compose.as_field(_people(outgoing.cc)),
        "bcc": compose.as_field(_people(outgoing.bcc)),
        "subject": outgoing.subject,
        "text": outgoing.text_body,
        "rich": bool(outgoing.html_body),
        "html": outgoing.html_body,
    }


def draft_prefill(*, owner: User, original: Message, mode: str) -> dict[str, Any]:
    """What a reply ("reply", "all") or a forward ("forward" inline, "attach" as a file) starts with,
    from the mailbox the original came to (`original` is one of the owner's, selectors.message_of)."""
    if mode in {"attach", "forward"}:  # the original goes below the note (outgoing_forward) or as a file
        initial = {"subject": compose.forward_subject(original.subject), "text": ""}
    else:
        initial = _reply(owner, original, everyone=mode == "all")
    return {**initial, "mailbox": original.mailbox}


def _who_and_when(original: Message) -> tuple[str, str]:
    when = formats.date_format(timezone.localtime(original.date or original.sort_date), "DATETIME_FORMAT")
    return original.from_name or original.from_address, when


def forwarded_text(original: Message) -> str:
    """The original's text as a forward carries it below the note: under a heading, each line quoted."""
    return compose.quoted(original.text_body, _forward_heading(original)).lstrip("\n")


def _forward_heading(original: Message) -> str:
    who, when = _who_and_when(original)
    return _(
        "---------- Forwarded message ----------\nFrom: %(who)s\nDate: %(when)s\nSubject: %(subject)s"
    ) % {"who": f"{who} <{original.from_address}>", "when": when, "subject": original.subject}


def _forwarded_html(original: Message) -> str:
    """The original's HTML, sanitised as received mail is, under the same heading; "" without HTML."""
    body = safehtml.for_sending(original.html_body)
    if not body:
        return ""
    heading = "<br>".join(html.escape(line) for line in _forward_heading(original).split("\n"))
    return f"<div><p>{heading}</p>{body}</div>"


def _reply(owner: User, original: Message, *, everyone: bool) -> dict[str, Any]:
    """To the author (Reply-To, else From); to all: the others in Cc, never the owner's own addresses."""
    who, when = _who_and_when(original)
    author = _people(original.reply_to) or [compose.Recipient(original.from_name, original.from_address)]
    initial: dict[str, Any] = {
        "subject": compose.reply_subject(original.subject),
        "text": compose.quoted(
            original.text_body, _("On %(when)s, %(who)s wrote:") % {"when": when, "who": who}
        ),
        "to": compose.as_field(author),
    }
    if everyone:
        own = {mailbox.email_address for mailbox in mailboxes_of(owner)}
        found = compose.reply_all([*author, *_people(original.to), *_people(original.cc)], own)
        initial["to"] = compose.as_field(found[: len(author)] or author)
        initial["cc"] = compose.as_field(found[len(author) :])
    return initial


def outgoing_attach(
    *, outgoing: OutgoingMessage, uploads: Sequence[UploadedFile[bytes]], forwarded: Message | None = None
) -> None:
    """Attach the uploaded files and, for a forward as a file, the original message as an .eml.

    The original is attached with the draft's first save only: saved again, the draft already
    carries it (or the person removed it).
    """
    rows = [_uploaded(outgoing, upload) for upload in uploads]
    if forwarded is not None and not outgoing.attachments.exists():
        raw = selectors.raw_of(forwarded)
        name = visible_name(forwarded.subject or "message")[:200].replace("/", "_") + ".eml"
        rows.append(
            OutgoingAttachment(
                outgoing=outgoing, filename=name, content_type="message/rfc822", size=len(raw), content=raw
            )
        )
    OutgoingAttachment.objects.bulk_create(rows)


def outgoing_forward(*, outgoing: OutgoingMessage, original: Message) -> None:
    """Put the original below a forward's draft when the draft is made (by the form or the autosave):
    its quoted text, its sanitised HTML, and a copy of each of its attachments, byte for byte, which
    the person may remove before sending (outgoing_detach). Once: saved again, the draft keeps what
    it has, and of two saves at once (a compare-and-set on the empty text) only one copies."""
    if outgoing.forwarded_text:
        return
    text, rich = forwarded_text(original), _forwarded_html(original)
    with transaction.atomic():
        claimed = OutgoingMessage.objects.filter(pk=outgoing.pk, forwarded_text="").update(
            forwarded_text=text, forwarded_html=rich, updated_at=timezone.now()
        )
        if claimed:
            OutgoingAttachment.objects.bulk_create(_copies(outgoing, original))
    outgoing.refresh_from_db(fields=["forwarded_text", "forwarded_html"])


def _copies(outgoing: OutgoingMessage, original: Message) -> list[OutgoingAttachment]:
    parts = {a.part: a for a in selectors.attachments_of([original]).get(original.pk, [])}
    return [
        OutgoingAttachment(
            outgoing=outgoing,
            filename=_copy_name(parts[part]),
            content_type=parts[part].content_type or "application/octet-stream",
            size=len(content),
            content=content,
            forwarded_part=part,
        )
        for part, content in mime.parts_content(selectors.raw_of(original), parts)
    ]


def _copy_name(attachment: Attachment) -> str:
    """The part's own name (no path, nothing invisible), else one from its number and type."""
    name = visible_name(attachment.filename).replace("/", "_").replace("\\", "_").strip()[:200]
    return name or f"part-{attachment.part}{mimetypes.guess_extension(attachment.content_type) or ''}"


def outgoing_detach(*, outgoing: OutgoingMessage, attachments: Sequence[str], parts: Sequence[str]) -> None:
    """Remove the attachments the person ticked: the draft's own (by id), or on a forward's first page,
    before the draft existed, the copies of those parts of the original. Values not numbers are ignored."""
    ids, numbers = _numbers(attachments), _numbers(parts)
    if ids or numbers:
        outgoing.attachments.filter(Q(pk__in=ids) | Q(forwarded_part__in=numbers)).delete()


def _numbers(values: Sequence[str]) -> list[int]:
    return [int(value) for value in values if value.isascii() and value.isdigit() and len(value) < 12]


@dataclass(frozen=True)
class Listed:
    """An attachment as compose lists it, with the box that removes it (`field`, `value`)."""

    name: str
    content_type: str
    size: int
    field: str
    value: str


def compose_attachments(
    *, outgoing: OutgoingMessage | None, original: Message | None, mode: str
) -> list[Listed]:
    """What the draft sends besides its text: its attachments; on a forward's first page, before the
    draft exists, the original's, which it will copy."""
    if outgoing is not None:
        rows = outgoing.attachments.only("pk", "filename", "content_type", "size").order_by("pk")
        return [Listed(a.filename, a.content_type, a.size, "remove_attachment", str(a.pk)) for a in rows]
    if original is None or mode != "forward":
        return []
    parts = selectors.attachments_of([original]).get(original.pk, [])
    return [Listed(_copy_name(a), a.content_type, a.size, "remove_part", str(a.part)) for a in parts]


def _uploaded(outgoing: OutgoingMessage, upload: UploadedFile[bytes]) -> OutgoingAttachment:
    content = upload.read()
    return OutgoingAttachment(
        outgoing=outgoing,
        filename=compose.checked(upload.name or "", "attachments")[:255],
        content_type=upload.content_type or "application/octet-stream",
        size=len(content),
        content=content,
    )


def outgoing_autosave(
    *,
    owner: User,
    mailbox: Mailbox,
    typed: Mapping[str, str],
    rich: bool,
    outgoing: OutgoingMessage | None = None,
    replying_to: Message | None = None,
    forwarding: Message | None = None,
) -> OutgoingMessage:
    """The page's own saving while someone types: what can be kept is kept, nothing is refused.

    `typed` holds the fields as the page sent them (TYPED); the html only counts for rich text.
    A half-typed address cannot be stored as an address yet: that field keeps its last good
    value. No NUL (PostgreSQL text cannot hold one): the form refuses it, the autosave drops it.
    """
    values = {name: typed.get(name, "").replace("\0", "") for name in TYPED}
    values["html"] = values["html"] if rich else ""
    values["subject"] = " ".join(values["subject"].split())  # no line breaks in a subject, typed or pasted
    for name in ("to", "cc", "bcc"):
        try:
            compose.recipients(values[name], name)
        except compose.ComposeError:
            values[name] = compose.as_field(_people(getattr(outgoing, name))) if outgoing else ""
    saved = outbox.outgoing_save(
        owner=owner, mailbox=mailbox, values=values, outgoing=outgoing, replying_to=replying_to
    )
    if forwarding is not None:  # a forward's first save may be this one: the original goes in now
        outgoing_forward(outgoing=saved, original=forwarding)
    return saved
