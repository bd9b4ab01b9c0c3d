"""What goes into a draft: the first values of a reply or a forward, a saved draft's values for its
form again, its attachments, and the autosave's lenient values.

fetcher.outbox keeps a row's life (saved, queued, undone, reopened, delivered); this module builds
what the person's action puts in it, so the compose views only read the request and render.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import Mailbox, User
from accounts.selectors import mailboxes_of
from fetcher import outbox, selectors
from fetcher.mail import compose
from fetcher.mail.names import visible_name
from fetcher.models import Message, OutgoingAttachment, OutgoingMessage

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
    if mode == "attach":
        initial = {"subject": compose.forward_subject(original.subject), "text": ""}
    elif mode == "forward":
        initial = {"subject": compose.forward_subject(original.subject), "text": _forwarded(original)}
    else:
        initial = _reply(owner, original, everyone=mode == "all")
    return {**initial, "mailbox": original.mailbox}


def _who_and_when(original: Message) -> tuple[str, str]:
    when = formats.date_format(timezone.localtime(original.date or original.sort_date), "DATETIME_FORMAT")
    return original.from_name or original.from_address, when


def _forwarded(original: Message) -> str:
    who, when = _who_and_when(original)
    heading = _(
        "---------- Forwarded message ----------\nFrom: %(who)s\nDate: %(when)s\nSubject: %(subject)s"
    ) % {"who": f"{who} <{original.from_address}>", "when": when, "subject": original.subject}
    return compose.quoted(original.text_body, heading)


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
    return outbox.outgoing_save(
        owner=owner, mailbox=mailbox, values=values, outgoing=outgoing, replying_to=replying_to
    )
