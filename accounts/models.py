"""People who use Postane and the external mailboxes they register."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts import crypto


class User(AbstractUser):
    """Postane's own user model, swapped in from the first migration so it can grow."""

    conversations = models.BooleanField(_("group mail into conversations"), default=True, db_default=True)
    # The list and the open message side by side on a wide screen (one column on a phone whatever this says).
    reading_pane = models.BooleanField(_("show the message beside the list"), default=False, db_default=False)
    # Seconds a sent message waits so that "Undo" can still bring it back; None: the site's default.
    undo_seconds = models.PositiveSmallIntegerField(
        _("undo window for sending"), null=True, blank=True, validators=[MaxValueValidator(60)]
    )
    # The language the person last read Postane in: the parser's guess for mail in an undeclared charset.
    language = models.CharField(max_length=10, blank=True, db_default="", editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class Protocol(models.TextChoices):
    POP3 = "pop3", "POP3"
    IMAP = "imap", "IMAP"


class Security(models.TextChoices):
    NONE = "none", _("None (plain text)")
    STARTTLS = "starttls", "STARTTLS"
    SSL = "ssl", _("SSL/TLS")


class Retention(models.TextChoices):
    KEEP = "keep", _("Keep every message on the server")
    DELETE = "delete", _("Delete from the server after download")
    DELETE_AFTER_DAYS = "days", _("Delete from the server after some days")


# The standard ports (RFC 8314 for implicit TLS); the form proposes these when the security changes.
DEFAULT_PORTS: dict[tuple[str, str], int] = {
    ("pop3", "none"): 110,
    ("pop3", "starttls"): 110,
    ("pop3", "ssl"): 995,
    ("imap", "none"): 143,
    ("imap", "starttls"): 143,
    ("imap", "ssl"): 993,
    ("smtp", "none"): 25,
    ("smtp", "starttls"): 587,
    ("smtp", "ssl"): 465,
}

colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour such as #1f5fa8."))
port_validators = [MinValueValidator(1), MaxValueValidator(65535)]


class Mailbox(models.Model):
    """An account at some provider: where its mail comes from and how mail leaves through it.

    Passwords are stored only as Fernet tokens (`*_password_encrypted`); they are decrypted in
    the worker right before a login and never shown, logged or sent to the browser.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailboxes")
    name = models.CharField(_("name"), max_length=100)
    email_address = models.EmailField(_("email address"), max_length=254)
    display_name = models.CharField(_("sender name"), max_length=200, blank=True)
    colour = models.CharField(_("colour"), max_length=7, default="#1f5fa8", validators=[colour_validator])
    signature = models.TextField(_("signature"), blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    poll_interval_minutes = models.PositiveIntegerField(
        _("check for new mail every (minutes)"), default=5, validators=[MinValueValidator(1)]
    )

    protocol = models.CharField(
        _("incoming protocol"), max_length=4, choices=Protocol.choices, default=Protocol.POP3
    )
    incoming_host = models.CharField(_("incoming server"), max_length=253)
    incoming_port = models.PositiveIntegerField(_("port"), validators=port_validators)
    incoming_security = models.CharField(
        _("security"), max_length=8, choices=Security.choices, default=Security.SSL
    )
    incoming_login = models.CharField(_("login"), max_length=320)
    incoming_password_encrypted = models.TextField(editable=False)
    incoming_fingerprint = models.CharField(_("trusted certificate (SHA-256)"), max_length=95, blank=True)

    smtp_host = models.CharField(_("outgoing (SMTP) server"), max_length=253)
    smtp_port = models.PositiveIntegerField(_("port"), validators=port_validators, default=587)
    smtp_security = models.CharField(
        _("security"), max_length=8, choices=Security.choices, default=Security.STARTTLS
    )
    smtp_same_login = models.BooleanField(_("use the incoming login for SMTP"), default=True)
    smtp_login = models.CharField(_("SMTP login"), max_length=320, blank=True)
    smtp_password_encrypted = models.TextField(editable=False, blank=True)
    smtp_fingerprint = models.CharField(_("trusted certificate (SHA-256)"), max_length=95, blank=True)

    pop3_retention = models.CharField(
        _("on the server"), max_length=6, choices=Retention.choices, default=Retention.KEEP
    )
    pop3_retention_days = models.PositiveIntegerField(
        _("days to keep on the server"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    smtp_saves_sent = models.BooleanField(
        _("the provider keeps sent mail itself"),
        default=False,
        db_default=False,
        help_text=_("Gmail and some others put what you send in Sent themselves; Postane then does not."),
    )
    pop3_delete_with_local = models.BooleanField(
        _("also delete on the server when I delete here"),
        default=False,
        db_default=False,
        help_text=_("Postane keeps its copy in Trash until you empty it."),
    )
    imap_folders = models.JSONField(
        _("folders to sync"),
        default=list,
        blank=True,
        help_text=_("Empty: every subscribed folder, and always INBOX, Sent, Drafts, Trash and Junk."),
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")
        ordering: ClassVar = ["owner", "name", "email_address"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["owner", "email_address"], name="unique_mailbox_address_per_owner"
            ),
            models.CheckConstraint(
                condition=~models.Q(pop3_retention="days") | models.Q(pop3_retention_days__isnull=False),
                name="retention_days_set_when_deleting_after_days",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email_address}>"

    def __repr__(self) -> str:
        return f"<Mailbox {self.id} {self.email_address}>"

    def set_incoming_password(self, password: str) -> None:
        self.incoming_password_encrypted = crypto.encrypt(password)

    def set_smtp_password(self, password: str) -> None:
        self.smtp_password_encrypted = crypto.encrypt(password) if password else ""

    @property
    def effective_smtp_login(self) -> str:
        return self.incoming_login if self.smtp_same_login else self.smtp_login


# The settings a connection test covers: a saved mailbox must match the test it passed.
INCOMING_CONNECTION_FIELDS = (
    "protocol",
    "incoming_host",
    "incoming_port",
    "incoming_security",
    "incoming_login",
    "incoming_fingerprint",
)
SMTP_CONNECTION_FIELDS = (
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_same_login",
    "smtp_login",
    "smtp_fingerprint",
)
CONNECTION_FIELDS = INCOMING_CONNECTION_FIELDS + SMTP_CONNECTION_FIELDS


# A save may use a test (and the password it holds) this long; beat deletes older tests.
CONNECTION_TEST_VALID_FOR = timedelta(hours=1)


class ConnectionTestStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a worker")
    RUNNING = "running", _("Testing")
    DONE = "done", _("Done")


class ConnectionTest(models.Model):
    """One run of "Test connection" for settings typed into the mailbox form.

    It holds the typed passwords encrypted, so the worker (which runs the test) decrypts them
    right before login, and the mailbox saved afterwards takes exactly the tested secret.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="connection_tests"
    )
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, null=True, blank=True)
    settings = models.JSONField()
    incoming_password_encrypted = models.TextField(editable=False)
    smtp_password_encrypted = models.TextField(editable=False, blank=True)
    # Keyed digests of the typed passwords ("" when the stored one was reused), checked when saving.
    incoming_password_digest = models.CharField(max_length=64, blank=True, editable=False)
    smtp_password_digest = models.CharField(max_length=64, blank=True, editable=False)
    status = models.CharField(
        max_length=8, choices=ConnectionTestStatus.choices, default=ConnectionTestStatus.PENDING
    )
    incoming_report = models.JSONField(null=True, blank=True)
    outgoing_report = models.JSONField(null=True, blank=True)
    # While running: renewed by the worker testing it; a test whose worker died is run again after it.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"connection test {self.id} ({self.status})"

    def __repr__(self) -> str:
        return f"<ConnectionTest {self.id} {self.status}>"

    @property
    def passed(self) -> bool:
        reports = (self.incoming_report or {}, self.outgoing_report or {})
        return self.status == ConnectionTestStatus.DONE and all(report.get("ok") for report in reports)


class DiscoveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a worker")
    RUNNING = "running", _("Looking")
    DONE = "done", _("Done")


class MailboxDiscovery(models.Model):
    """One run of "add a mailbox from its address": what the discovery chain found (fetcher.mail.discover),
    every step it tried, and the connection test of what it found.

    It holds the typed password encrypted until a connection test takes it, as a ConnectionTest
    does; both are deleted with the connection tests' purge.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="discoveries")
    address = models.EmailField()
    password_encrypted = models.TextField(editable=False)
    status = models.CharField(max_length=8, choices=DiscoveryStatus.choices, default=DiscoveryStatus.PENDING)
    # {"source", "source_detail", "provider", "servers": [...], "tried": [...]} as the chain left it;
    # "tried" grows while it runs, so the page shows each step as it happens.
    result = models.JSONField(default=dict)
    test = models.ForeignKey(ConnectionTest, on_delete=models.SET_NULL, null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"discovery {self.id} ({self.status})"

    def __repr__(self) -> str:
        return f"<MailboxDiscovery {self.id} {self.status}>"
