"""The outbox: drafts, queued mail, and delivery through each mailbox's own SMTP server.

A message is built once, when it is queued (its Message-ID was fixed when the draft was
created), and waits `send_after` (the undo window, or the time the person chose). A worker
claims it with a compare-and-set, talks to the SMTP server outside any transaction, and
records the outcome: sent (a copy kept in Sent), queued again after a temporary failure (4xx,
time-out, dropped connection: the same bytes later, with backoff), or failed with the server's
words after a permanent one (5xx).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Mailbox, Protocol, User
from fetcher import config, enqueue, folders, leases
from fetcher.ingest import storing
from fetcher.mail import compose, mime, safehtml
from fetcher.mail.imap import ImapSession
from fetcher.mail.net import MailError
from fetcher.mail.smtp import SmtpSession
from fetcher.models import FolderRole, Message, OutgoingMessage, OutgoingState

logger = logging.getLogger(__name__)

BACKOFF_MINUTES = (1, 2, 5, 15, 30, 60, 120, 240)
DRAFT_FIELDS = [
    *("mailbox", "to", "cc", "bcc", "subject", "text_body", "html_body"),
    *("in_reply_to", "references", "replying_to", "updated_at"),
]


def _recipients(values: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {
        name: [r.as_json() for r in compose.recipients(values.get(name, ""), name)]
        for name in ("to", "cc", "bcc")
    }


def outgoing_save(
    *,
    owner: User,
    mailbox: Mailbox,
    values: dict[str, str],
    outgoing: OutgoingMessage | None = None,
    replying_to: Message | None = None,
) -> OutgoingMessage:
    """Create or update a draft. Raises compose.ComposeError naming the field at fault."""
    if mailbox.owner_id != owner.pk or (outgoing is not None and outgoing.owner_id != owner.pk):
        raise PermissionError("not the owner's")
    draft = outgoing or OutgoingMessage(
        owner=owner,
        mailbox=mailbox,
        message_id=compose.new_message_id(mailbox.email_address.rpartition("@")[2] or "postane.invalid"),
        replying_to=replying_to,
    )
    if draft.state != OutgoingState.DRAFT:
        raise ValueError("only a draft can change")
    for name, found in _recipients(values).items():
        setattr(draft, name, found)
    draft.mailbox = mailbox
    draft.subject = compose.checked(values.get("subject", ""), "subject")
    draft.html_body = safehtml.for_sending(values.get("html", ""))  # rich text: never script, like mail
    text = values.get("text", "").replace("\r\n", "\n")
    # The plain part of rich text: editors write &nbsp; for spaces a plain reader should see as spaces.
    plain = mime.html_to_text(draft.html_body).replace("\xa0", " ").strip() + "\n"
    draft.text_body = plain if draft.html_body else text
    if replying_to is not None:
        draft.in_reply_to = replying_to.message_id
        draft.references = [*replying_to.references, replying_to.message_id][-20:]
    # Only what was written: the server-draft fields belong to draft_to_server, which may be running.
    draft.save(update_fields=DRAFT_FIELDS if draft.pk else None)
    queue_draft_to_server(draft)
    return draft


def _draft_of(outgoing: OutgoingMessage) -> compose.Draft:
    mailbox = outgoing.mailbox

    def people(rows: list[dict[str, str]]) -> list[compose.Recipient]:
        return [compose.Recipient(row["name"], row["address"]) for row in rows]

    text, html = compose.signed(outgoing.text_body, outgoing.html_body, mailbox.signature)
    text, html = compose.forwarding(text, html, outgoing.forwarded_text, outgoing.forwarded_html)
    return compose.Draft(
        sender=compose.Recipient(mailbox.display_name or mailbox.name, mailbox.email_address),
        message_id=outgoing.message_id,
        date=timezone.now(),
        to=people(outgoing.to),
        cc=people(outgoing.cc),
        bcc=people(outgoing.bcc),
        subject=outgoing.subject,
        text=text,
        html=html,
        in_reply_to=outgoing.in_reply_to,
        references=list(outgoing.references),
        attachments=[(a.filename, a.content_type, bytes(a.content)) for a in outgoing.attachments.all()],
    )


def outgoing_queue(*, outgoing: OutgoingMessage, send_at: Any = None) -> OutgoingMessage:
    """Fix the message's bytes and let it leave after the undo window (or at `send_at`)."""
    if not (outgoing.to or outgoing.cc or outgoing.bcc):
        raise compose.ComposeError("to", "Say who the message is for.")
    now = timezone.now()
    outgoing.raw = compose.build(_draft_of(outgoing))
    outgoing.state = OutgoingState.QUEUED
    outgoing.scheduled = send_at is not None
    undo = outgoing.owner.undo_seconds
    wait = settings.WEBMAIL_UNDO_SECONDS if undo is None else undo
    outgoing.send_after = send_at or now + timedelta(seconds=wait)
    outgoing.save(update_fields=["raw", "state", "scheduled", "send_after", "updated_at"])
    delay = max((outgoing.send_after - now).total_seconds(), 0)
    transaction.on_commit(lambda: _enqueue(outgoing, delay))
    return outgoing


def _enqueue(outgoing: OutgoingMessage, delay: float) -> None:
    enqueue.send_outgoing(outgoing.pk, delay)


def outgoing_undo(*, outgoing: OutgoingMessage) -> bool:
    """Back to a draft, if it has not started to leave; True when it was stopped in time."""
    stopped = OutgoingMessage.objects.filter(pk=outgoing.pk, state=OutgoingState.QUEUED).update(
        state=OutgoingState.DRAFT, raw=None, send_after=None, scheduled=False
    )
    outgoing.refresh_from_db()
    return bool(stopped)


def outgoing_reopen(*, outgoing: OutgoingMessage) -> bool:
    """ "Edit and send again": a failed message becomes a draft; True when it was failed."""
    reopened = OutgoingMessage.objects.filter(pk=outgoing.pk, state=OutgoingState.FAILED).update(
        state=OutgoingState.DRAFT, raw=None
    )
    outgoing.refresh_from_db()
    return bool(reopened)


def _claim(outgoing_id: int | str) -> OutgoingMessage | None:
    now = timezone.now()
    due = Q(state=OutgoingState.QUEUED, send_after__lte=now)
    abandoned = Q(state=OutgoingState.SENDING, lease_until__lt=now)  # its worker died mid-send
    claimed = OutgoingMessage.objects.filter(due | abandoned, pk=outgoing_id).update(
        state=OutgoingState.SENDING, lease_until=leases.lease_end(), attempts=F("attempts") + 1
    )
    return OutgoingMessage.objects.select_related("mailbox").get(pk=outgoing_id) if claimed else None


def _holding(outgoing: OutgoingMessage) -> bool:
    """Renew the sending lease; the attempt number tells this holder from one that took over."""
    renewed = OutgoingMessage.objects.filter(
        pk=outgoing.pk, state=OutgoingState.SENDING, attempts=outgoing.attempts
    ).update(lease_until=leases.lease_end())
    return bool(renewed)


def outgoing_deliver(*, outgoing_id: int | str) -> str:
    """Send one due message; returns its state afterwards. A second call for the same row does nothing."""
    outgoing = _claim(outgoing_id)
    if outgoing is None:
        return "busy"
    draft = _draft_of(outgoing)
    sender, recipients = draft.envelope()
    if outgoing.attempts == 1:  # dated when it leaves; a retry sends the same bytes again
        outgoing.raw = compose.redated(bytes(outgoing.raw or b""), draft.date)
        OutgoingMessage.objects.filter(pk=outgoing.pk).update(raw=outgoing.raw)
    try:
        with (
            leases.LeaseKeeper(partial(_holding, outgoing), f"outgoing {outgoing.pk}"),
            SmtpSession(config.outgoing_config(outgoing.mailbox)) as smtp,
        ):
            refused = smtp.send(
                sender, recipients, bytes(outgoing.raw or b""), smtputf8=draft.needs_smtputf8()
            )
    except MailError as error:
        return _record_failure(outgoing, error)
    _record_sent(outgoing, refused)
    return OutgoingState.SENT


def _record_failure(outgoing: OutgoingMessage, error: MailError) -> str:
    words = f"{error.message} {error.server_text}".strip()
    if error.permanent or outgoing.attempts >= len(BACKOFF_MINUTES):
        state, send_after = OutgoingState.FAILED, None
    else:
        state = OutgoingState.QUEUED
        send_after = timezone.now() + timedelta(minutes=BACKOFF_MINUTES[outgoing.attempts - 1])
    OutgoingMessage.objects.filter(pk=outgoing.pk).update(
        state=state, send_after=send_after, last_error=words, lease_until=None
    )
    logger.warning("outgoing %s: %s (%s)", outgoing.pk, state, error.step.value)
    if send_after is not None:
        transaction.on_commit(lambda: _enqueue(outgoing, (send_after - timezone.now()).total_seconds()))
    return state


def _record_sent(outgoing: OutgoingMessage, refused: dict[str, str]) -> None:
    note = "; ".join(f"{rcpt}: {answer}" for rcpt, answer in refused.items())
    OutgoingMessage.objects.filter(pk=outgoing.pk).update(
        state=OutgoingState.SENT, sent_at=timezone.now(), last_error=note, lease_until=None
    )
    logger.info("outgoing %s: sent", outgoing.pk)
    server_draft_remove(outgoing)
    if outgoing.replying_to_id:
        from fetcher.services import message_set_flags  # noqa: PLC0415 -- services imports this module's neighbours

        replied = Message.objects.filter(pk=outgoing.replying_to_id).select_related("mailbox").first()
        if replied is not None:
            message_set_flags(message=replied, answered=True)
    keep_sent_copy(outgoing)


def keep_sent_copy(outgoing: OutgoingMessage) -> None:
    """Sent mail is kept: IMAP appends it to the server's Sent folder (its sync then brings it back
    here, once); POP3 keeps it in Postane's own Sent folder. When the IMAP server cannot take it
    now, the copy waits in Postane's own Sent, marked for the next sync to append it."""
    mailbox, raw = outgoing.mailbox, bytes(outgoing.raw or b"")
    if mailbox.protocol == Protocol.POP3:
        storing.store_local(mailbox=mailbox, folder=folders.pop3_folder(mailbox, FolderRole.SENT), raw=raw)
    elif not mailbox.smtp_saves_sent and not _append_to_sent(outgoing, raw):
        folder = folders.local_folder(mailbox, FolderRole.SENT)
        storing.store_local(mailbox=mailbox, folder=folder, raw=raw, pending_append=True)


def _append_to_sent(outgoing: OutgoingMessage, raw: bytes) -> bool:
    """Append to the server's Sent, finding it (or making it) first if no sync has listed it yet."""
    try:
        with ImapSession(config.incoming_config(outgoing.mailbox)) as imap:
            sent = folders.server_folder(imap, outgoing.mailbox, FolderRole.SENT)
            imap.append(sent.name, raw, flags=["\\Seen"])
    except MailError as error:  # the message left; the server copy follows with a later sync
        logger.warning("outgoing %s: no copy in the server's Sent yet (%s)", outgoing.pk, error.message)
        return False
    return True


def outgoing_due() -> list[int]:
    """What the dispatcher must hand to workers: due messages and sends whose worker died."""
    now = timezone.now()
    due = Q(state=OutgoingState.QUEUED, send_after__lte=now) | Q(
        state=OutgoingState.SENDING, lease_until__lt=now
    )
    return list(OutgoingMessage.objects.filter(due).values_list("pk", flat=True)[:1000])


# --- IMAP: drafts kept in the server's Drafts folder too ---------------------------------------------

DRAFT_TO_SERVER_DELAY = 20.0  # seconds: typing saves every few seconds; the server gets the settled draft


def queue_draft_to_server(outgoing: OutgoingMessage) -> None:
    if outgoing.mailbox.protocol == Protocol.IMAP:
        transaction.on_commit(lambda: enqueue.draft_to_server(outgoing.pk, DRAFT_TO_SERVER_DELAY))


def draft_to_server(*, outgoing_id: int | str) -> bool:
    """Put the draft's latest version in the IMAP server's Drafts folder, replacing the one before.

    Claimed with a compare-and-set on the time of the last server copy, so two tasks for one
    draft never leave two copies. Returns whether the server got a new copy.
    """
    outgoing = OutgoingMessage.objects.select_related("mailbox", "owner").filter(pk=outgoing_id).first()
    if (
        outgoing is None
        or outgoing.state != OutgoingState.DRAFT
        or outgoing.mailbox.protocol != Protocol.IMAP
    ):
        return False
    if timezone.now() - outgoing.updated_at < timedelta(seconds=DRAFT_TO_SERVER_DELAY):
        return False  # still being written: the task queued by the latest save takes it
    saved_at = outgoing.server_draft_saved_at
    if saved_at is not None and saved_at >= outgoing.updated_at:
        return False
    claimed = OutgoingMessage.objects.filter(pk=outgoing.pk, server_draft_saved_at=saved_at).update(
        server_draft_saved_at=timezone.now()
    )
    if not claimed:
        return False
    raw = compose.build(_draft_of(outgoing))
    with ImapSession(config.incoming_config(outgoing.mailbox)) as imap:
        drafts = folders.server_folder(imap, outgoing.mailbox, FolderRole.DRAFTS)  # made if missing
        placed = imap.append(drafts.name, raw, flags=["\\Draft", "\\Seen"])
        _drop_server_draft(imap, outgoing)
        kept = OutgoingMessage.objects.filter(pk=outgoing.pk).update(
            server_draft_folder=drafts if placed else None, server_draft_uid=placed[1] if placed else None
        )
        if not kept and placed:  # discarded while its copy was on the way: the copy goes too
            imap.select_writable(drafts.name)
            imap.delete([placed[1]], uidvalidity=placed[0])
    return True


def _drop_server_draft(imap: ImapSession, outgoing: OutgoingMessage) -> None:
    """Delete the previous server copy, only if its UID still names this draft (its fixed Message-ID):
    a server that renumbered its UIDs must never make us delete someone's other mail."""
    folder, uid = outgoing.server_draft_folder, outgoing.server_draft_uid
    if folder is None or uid is None:
        return
    imap.select_writable(folder.name)
    found = imap.fetch_ids([uid]).get(uid)
    if found is not None and found[0] == outgoing.message_id:
        imap.delete([uid])
    else:
        logger.warning(
            "outgoing %s: its old server draft is no longer at UID %s; left alone", outgoing.pk, uid
        )


def server_draft_remove(outgoing: OutgoingMessage) -> None:
    """The draft left (it was sent): its copy in the server's Drafts goes too. Failing here loses nothing."""
    if outgoing.server_draft_uid is None:
        return
    try:
        with ImapSession(config.incoming_config(outgoing.mailbox)) as imap:
            _drop_server_draft(imap, outgoing)
    except MailError as error:
        logger.warning("outgoing %s: its server draft stays (%s)", outgoing.pk, error.message)
        return
    OutgoingMessage.objects.filter(pk=outgoing.pk).update(server_draft_folder=None, server_draft_uid=None)
