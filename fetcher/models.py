"""The mail engine's tables: folders, stored messages, and the ledgers that prevent duplicates."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Mailbox, User


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the beat-scheduled heartbeat task.

    One row per worker host name; /healthz reads the newest one to tell whether
    beat and at least one worker are alive.
    """

    hostname = models.CharField(max_length=255, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.beat_at.isoformat()}"


class MailboxState(models.TextChoices):
    IDLE = "idle", _("Idle")
    SYNCING = "syncing", _("Syncing")
    ERROR = "error", _("Error")
    DISABLED = "disabled", _("Disabled")


class MailboxSync(models.Model):
    """What the engine keeps about one mailbox: health, the next run, the claim, progress.

    Only the engine writes it (a person's save or "Sync now" reach it through fetcher's own
    services and receivers, fetcher.services). Every mailbox has one from its creation.
    """

    mailbox = models.OneToOneField(Mailbox, on_delete=models.CASCADE, primary_key=True, related_name="sync")
    state = models.CharField(
        _("state"), max_length=8, choices=MailboxState.choices, default=MailboxState.IDLE
    )
    last_success_at = models.DateTimeField(_("last successful sync"), null=True, blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    last_error_kind = models.CharField(_("last error kind"), max_length=20, blank=True)
    last_error_message = models.TextField(_("last error"), blank=True)
    # Scheduling and the one-sync-at-a-time claim (a lease that runs out if its worker dies).
    next_sync_at = models.DateTimeField(_("next sync"), null=True, blank=True, db_index=True)
    sync_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    sync_lease_token = models.CharField(max_length=64, blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    paused = models.BooleanField(
        _("paused"),
        default=False,
        help_text=_("Stopped after repeated login failures, until the settings change."),
    )
    sync_done = models.PositiveIntegerField(default=0, editable=False)
    sync_total = models.PositiveIntegerField(default=0, editable=False)
    # IMAP: when the server's folder list was last read; between two listings a poll asks only
    # the known folders' status. None (new settings) lists at the next poll.
    folders_listed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A digest of the folder names that listing saw: a poll's pipelined LIST is compared with it.
    folders_digest = models.CharField(max_length=64, blank=True, db_default="", editable=False)

    class Meta:
        default_permissions = ()  # nobody is given rights on it: the mailbox's admin shows and sets it

    def __str__(self) -> str:
        return f"sync of {self.mailbox_id} ({self.state})"


class FolderRole(models.TextChoices):
    INBOX = "inbox", _("Inbox")
    SENT = "sent", _("Sent")
    DRAFTS = "drafts", _("Drafts")
    TRASH = "trash", _("Trash")
    JUNK = "junk", _("Junk")
    ARCHIVE = "archive", _("Archive")
    OTHER = "", _("Folder")


class Folder(models.Model):
    """A folder of a mailbox: INBOX for POP3, every synced folder for IMAP."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=1000)
    role = models.CharField(max_length=8, choices=FolderRole.choices, blank=True, default=FolderRole.OTHER)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    highest_uid = models.BigIntegerField(default=0)
    highest_modseq = models.BigIntegerField(null=True, blank=True)
    # IMAP: chosen for syncing at the last folder listing (a folder no longer chosen keeps its mail here).
    synced = models.BooleanField(default=True, db_default=True)
    # Postane's own folder in an IMAP mailbox (a Sent copy when the server has none): not on the server.
    local = models.BooleanField(default=False, db_default=False)
    # IMAP: the hierarchy delimiter the server gave ("." on Courier), to show "INBOX.Work.2024" as a tree.
    delimiter = models.CharField(max_length=1, blank=True, default="", db_default="")
    # IMAP: a role folder asked for here (Trash on a delete) that the next sync creates on the server.
    pending_create = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["mailbox", "name"], name="unique_folder_name")
        ]

    def __str__(self) -> str:
        return self.name


class FolderCount(models.Model):
    """How many messages a folder holds and how many are unread, so the sidebar reads instead of counting.

    Written only by triggers on the message table, in the transaction that changes the messages
    (migration 0017), and by `manage.py recount`; never saved by Django code (a row of its own,
    so saving a Folder cannot write back a stale count). A folder without a row holds nothing.
    """

    folder = models.OneToOneField(Folder, on_delete=models.CASCADE, primary_key=True, related_name="count")
    messages = models.BigIntegerField(default=0)
    unread = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.folder_id}: {self.unread}/{self.messages}"


class ParseState(models.TextChoices):
    PENDING = "pending", _("Waiting to be read")
    PARSED = "parsed", _("Read")
    PARTIAL = "partial", _("Read in part")
    FAILED = "failed", _("Could not be read")


PENDING_PUSH = ~models.Q(pending_flags={}) | models.Q(pending_move=True)


class Message(models.Model):
    """One downloaded message. `raw` is the truth; every other field is derived from it (`reindex`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of their own: the (mailbox | folder, sort_date, id) indexes serve every lookup by
    # them, and a planner without statistics would otherwise read a whole folder through them.
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages", db_index=False)
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="messages", db_index=False)
    raw = models.BinaryField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    fetched_at = models.DateTimeField(auto_now_add=True)

    parse_state = models.CharField(max_length=8, choices=ParseState.choices, default=ParseState.PENDING)
    parse_problems = models.JSONField(default=list, blank=True)
    # Parse tasks that took this message; a message that never finishes is marked failed, not retried forever.
    parse_attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Renewed while a parse task holds the message; a task that died is noticed when it lapses.
    parse_lease_until = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    subject = models.TextField(blank=True)
    from_name = models.TextField(blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    date = models.DateTimeField(null=True, blank=True)
    sort_date = models.DateTimeField(db_index=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.JSONField(default=list, blank=True)
    # The conversation: the Message-ID its messages name as their root, then "#2", "#3"...
    # (fetcher.mail.threads).
    # The planner takes these as nearly all distinct whatever ANALYZE saw (migration 0023): between
    # the two stages of ingest every key is "", and lookups by key would read the whole table.
    thread_key = models.CharField(max_length=998, blank=True, db_default="")
    base_subject = models.CharField(max_length=255, blank=True, db_default="")  # no Re:, Fwd:, YNT:, İLT: ...
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    # Where the body shown came from when not the message's own: mime.TEXT_FROM_ATTACHED, TEXT_UNSPLIT.
    body_source = models.CharField(max_length=16, blank=True, db_default="")
    snippet = models.CharField(max_length=300, blank=True)
    has_attachments = models.BooleanField(default=False)
    search_vector = SearchVectorField(null=True, blank=True)

    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)
    # Flags changed here and not yet on the IMAP server, with their new values ({"flagged": true}):
    # the next sync pushes them, and until then the server's older state does not overwrite them.
    pending_flags = models.JSONField(default=dict, blank=True)
    # Moved here to another folder and not yet on the IMAP server (its ImapMessage row says where it is).
    pending_move = models.BooleanField(default=False, db_default=False)
    show_images = models.BooleanField(default=False, db_default=False)  # the reader allowed remote images
    # IMAP: a sent copy kept here because the server's Sent could not take it; the next sync appends it.
    pending_append = models.BooleanField(default=False, db_default=False)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["mailbox", "-sort_date", "-id"], name="message_mailbox_newest"),
            models.Index(
                fields=["parse_state"],
                name="message_parse_pending",
                condition=models.Q(parse_state="pending"),
            ),
            GinIndex(fields=["search_vector"], name="message_search"),
            # The few messages with changes to push: an unchanged sync finds none without a scan.
            models.Index(fields=["mailbox"], name="message_pending_push", condition=PENDING_PUSH),
            # A conversation's messages in given folders, in date order: the conversation list's
            # "no newer message of it here" and the conversation counts look up nothing else.
            models.Index(fields=["thread_key", "folder", "sort_date", "id"], name="message_thread_folder"),
            models.Index(fields=["base_subject"], name="message_base_subject"),
            models.Index(fields=["folder", "-sort_date", "-id"], name="message_folder_newest"),
            # Unread counts per folder, and in:<folder> is:unread walking it by date.
            models.Index(
                fields=["folder", "-sort_date", "-id"], name="message_unread", condition=models.Q(seen=False)
            ),
            # Lists and searches by state (is:starred, is:unread, is:read, has:attachment): each walks
            # its own index by date, so a page reads a page of rows however rare the state is.
            models.Index(
                fields=["mailbox", "-sort_date", "-id"],
                name="message_starred",
                condition=models.Q(flagged=True),
            ),
            models.Index(
                fields=["mailbox", "-sort_date", "-id"],
                name="message_unread_newest",
                condition=models.Q(seen=False),
            ),
            models.Index(
                fields=["mailbox", "-sort_date", "-id"],
                name="message_read_newest",
                condition=models.Q(seen=True),
            ),
            models.Index(
                fields=["mailbox", "-sort_date", "-id"],
                name="message_attachments",
                condition=models.Q(has_attachments=True),
            ),
            # What stage two could not read: counted per mailbox on every page (the sidebar says so)
            # and listed by is:unreadable; nearly always empty, so both cost next to nothing.
            models.Index(
                fields=["mailbox", "-sort_date", "-id"],
                name="message_unreadable",
                condition=models.Q(parse_state="failed"),
            ),
        ]

    def __str__(self) -> str:
        return self.subject or f"message {self.public_id}"

    def __repr__(self) -> str:
        return f"<Message {self.pk} {self.public_id}>"


# Types a browser may show inline; a part of any other type is served as application/octet-stream.
PREVIEWABLE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
# Types an HTML body may show by `cid:`: raster images only (SVG can carry script, PDF is a document).
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


class Attachment(models.Model):
    """What a part of a message is; its bytes stay in the raw message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    part = models.PositiveIntegerField(help_text="Position of the part in a depth-first walk of the message.")
    filename = models.TextField(blank=True)
    content_type = models.CharField(max_length=255)
    size = models.PositiveIntegerField()
    content_id = models.CharField(max_length=998, blank=True)
    inline = models.BooleanField(default=False)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["message", "part"], name="unique_attachment_part")
        ]

    def __str__(self) -> str:
        return self.filename or self.content_type

    @property
    def previewable(self) -> bool:
        return self.content_type in PREVIEWABLE


class Pop3Ledger(models.Model):
    """Every message a POP3 server has given this mailbox, by UIDL (or a fingerprint without UIDL).

    The unique (mailbox, uid) constraint is what makes a re-run, a crash or a second worker
    harmless. A row outlives the stored message: mail deleted in Postane is not fetched again.
    """

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="pop3_ledger")
    uid = models.CharField(max_length=255)
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    deleted_on_server_at = models.DateTimeField(null=True, blank=True)
    # Deleted in Postane, and the mailbox says to delete it on the server too: the next sync does.
    delete_requested = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints: ClassVar = [models.UniqueConstraint(fields=["mailbox", "uid"], name="unique_pop3_uid")]

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.uid}"


class ImapMessage(models.Model):
    """Where a stored message lives on an IMAP server: folder, UIDVALIDITY and UID.

    Unique (folder, uidvalidity, uid) makes re-runs harmless; a changed UIDVALIDITY is
    resolved by matching Message-ID and size (then the content hash) against what is stored.
    """

    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="imap_messages")
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="imap")

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["folder", "uidvalidity", "uid"], name="unique_imap_uid"),
        ]

    def __str__(self) -> str:
        return f"{self.folder_id}:{self.uidvalidity}:{self.uid}"


class ImapDeletion(models.Model):
    """A message deleted for good in Postane, still to be deleted on its IMAP server by the next sync.

    The stored message is gone at once; this row keeps where its server copy lives.
    """

    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="imap_deletions")
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    # What the message was, so the sync deletes that UID only while it still names this message.
    message_id = models.CharField(max_length=998, blank=True, default="", db_default="")
    size = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["folder", "uidvalidity", "uid"], name="unique_imap_deletion"),
        ]

    def __str__(self) -> str:
        return f"{self.folder_id}:{self.uidvalidity}:{self.uid}"


class ImageSender(models.Model):
    """A sender whose remote images a person always wants to see."""

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="image_senders")
    address = models.CharField(max_length=320)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["owner", "address"], name="unique_image_sender")
        ]

    def __str__(self) -> str:
        return self.address


class OutgoingState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    QUEUED = "queued", _("Waiting to be sent")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Not sent")


class OutgoingMessage(models.Model):
    """A message written here: a draft, then an outbox row (queued -> sending -> sent / failed).

    Its Message-ID is fixed when the row is created and its bytes when it is queued, so a retry
    after a temporary failure sends the very same message, never a second, different one.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="outgoing")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="outgoing")
    state = models.CharField(max_length=8, choices=OutgoingState.choices, default=OutgoingState.DRAFT)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    subject = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)  # rich text, already sanitised; sent beside text_body
    # A forward's original, below what was written (fetcher.drafts.outgoing_forward): its heading and
    # quoted text, and its sanitised HTML ("" when it had none). Set once, when the draft is made.
    forwarded_text = models.TextField(blank=True)
    forwarded_html = models.TextField(blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.JSONField(default=list, blank=True)
    replying_to = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message_id = models.CharField(max_length=998)
    send_after = models.DateTimeField(null=True, blank=True, db_index=True)  # undo window or scheduled time
    scheduled = models.BooleanField(default=False)
    raw = models.BinaryField(null=True, blank=True)  # fixed when queued
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # IMAP: where the latest copy of this draft sits in the server's Drafts folder.
    server_draft_folder = models.ForeignKey(
        Folder, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    server_draft_uid = models.BigIntegerField(null=True, blank=True)
    server_draft_saved_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.subject or f"outgoing {self.public_id}"


class OutgoingAttachment(models.Model):
    outgoing = models.ForeignKey(OutgoingMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveIntegerField()
    content = models.BinaryField()
    # The part of a forwarded original this is a copy of: the forward's page names it so before the
    # draft exists (fetcher.drafts.outgoing_detach). None for an upload or an original sent as an .eml.
    forwarded_part = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.filename
