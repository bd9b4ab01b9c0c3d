"""Forms of the browser UI."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import crypto
from accounts.models import (
    CONNECTION_FIELDS,
    CONNECTION_TEST_VALID_FOR,
    ConnectionTest,
    Mailbox,
    Retention,
    User,
)
from accounts.services import (
    Passwords,
    connection_settings,
    password_destination_changes,
    stored_secret,
    tested_secret,
)
from fetcher.mail import compose
from fetcher.mail.net import normalise_fingerprint

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

_CONTROL_CHARACTERS = ("\r", "\n", "\0")
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
_IP_LITERAL = re.compile(r"\[?[0-9a-f:.]+\]?")
# The settings that decide where a stored password goes, as a form error names them.
_DESTINATION_LABELS = {
    "protocol": _("the protocol"),
    "incoming_host": _("the incoming server"),
    "incoming_port": _("the incoming port"),
    "incoming_security": _("the incoming security"),
    "incoming_login": _("the login"),
    "incoming_fingerprint": _("the incoming certificate"),
    "smtp_host": _("the SMTP server"),
    "smtp_port": _("the SMTP port"),
    "smtp_security": _("the SMTP security"),
    "smtp_same_login": _("the shared login"),
    "smtp_login": _("the SMTP login"),
    "smtp_fingerprint": _("the SMTP certificate"),
}


def _no_control_characters(value: str) -> str:
    if any(ch in value for ch in _CONTROL_CHARACTERS):
        raise forms.ValidationError(_("Line breaks and NUL characters are not allowed here."))
    return value


def _refuse_control_characters(value: str) -> None:
    _no_control_characters(value)


class FolderListField(forms.CharField):
    """IMAP folder names, one per line, stored as a JSON list."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        names = [line.strip() for line in text.splitlines() if line.strip()]
        for name in names:
            _no_control_characters(name)
        return names


class MailboxForm(forms.ModelForm):  # type: ignore[type-arg]
    incoming_password = forms.CharField(
        label=_("Password"), required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )
    smtp_password = forms.CharField(
        label=_("SMTP password"), required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )
    imap_folders = FolderListField(
        label=_("Folders to sync"),
        required=False,
        help_text=_(
            "One per line. Empty: every subscribed folder, and always INBOX, Sent, Drafts, Trash and Junk."
        ),
    )
    connection_test = forms.UUIDField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Mailbox
        fields: ClassVar = [
            "name",
            "email_address",
            "display_name",
            "colour",
            "protocol",
            "incoming_host",
            "incoming_security",
            "incoming_port",
            "incoming_login",
            "incoming_fingerprint",
            "pop3_retention",
            "pop3_retention_days",
            "pop3_delete_with_local",
            "smtp_saves_sent",
            "imap_folders",
            "smtp_host",
            "smtp_security",
            "smtp_port",
            "smtp_same_login",
            "smtp_login",
            "smtp_fingerprint",
            "poll_interval_minutes",
            "signature",
            "enabled",
        ]
        widgets: ClassVar = {
            "colour": forms.TextInput(attrs={"type": "color"}),
            "signature": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.test: ConnectionTest | None = None
        self.fields["poll_interval_minutes"].min_value = settings.WEBMAIL_MIN_POLL_MINUTES  # type: ignore[attr-defined]
        for name in ("incoming_fingerprint", "smtp_fingerprint"):
            self.fields[name].help_text = _("Only for a server whose certificate you checked yourself.")
        self.fields["pop3_retention_days"].help_text = _("Used only with “%(choice)s”.") % {
            "choice": Retention.DELETE_AFTER_DAYS.label
        }
        self._say_stored_passwords()
        for name in ("incoming_login", "smtp_login", "incoming_host", "smtp_host"):
            self.fields[name].widget.attrs.update({"autocapitalize": "none", "spellcheck": "false"})

    def _say_stored_passwords(self) -> None:
        """An empty password field on an edit keeps the stored password: say so, since the password
        itself never goes to the browser (a new mailbox has none to keep, a shared login no SMTP one)."""
        if self.instance._state.adding:
            return
        stored = {
            "incoming_password": self.instance.incoming_password_encrypted,
            "smtp_password": self.instance.smtp_password_encrypted,
        }
        for name in (name for name, secret in stored.items() if secret):
            self.fields[name].help_text = _(
                "A password is stored. Leave this empty to keep it (unless you change the server"
                " or the login)."
            )

    def clean_email_address(self) -> str:
        """One mailbox per address and person (the database holds it to that too): a clear error
        that keeps what was typed, where saving a second one failed with a server error."""
        address = str(self.cleaned_data["email_address"])
        same = Mailbox.objects.filter(owner=self.owner, email_address__iexact=address).exclude(
            pk=self.instance.pk
        )
        if (existing := same.first()) is not None:
            raise forms.ValidationError(
                _(
                    "You already have a mailbox for this address: “%(name)s”. Change its settings (from POP3"
                    " to IMAP, for example) instead of adding it a second time."
                ),
                params={"name": existing.name or existing.email_address},
            )
        return address

    def clean_incoming_login(self) -> str:
        return _no_control_characters(self.cleaned_data["incoming_login"])

    def clean_smtp_login(self) -> str:
        return _no_control_characters(self.cleaned_data["smtp_login"])

    def clean_incoming_password(self) -> str:
        return _no_control_characters(self.cleaned_data["incoming_password"])

    def clean_smtp_password(self) -> str:
        return _no_control_characters(self.cleaned_data["smtp_password"])

    def clean_incoming_host(self) -> str:
        return self._host(self.cleaned_data["incoming_host"])

    def clean_smtp_host(self) -> str:
        return self._host(self.cleaned_data["smtp_host"])

    def clean_incoming_fingerprint(self) -> str:
        return self._fingerprint(self.cleaned_data["incoming_fingerprint"])

    def clean_smtp_fingerprint(self) -> str:
        return self._fingerprint(self.cleaned_data["smtp_fingerprint"])

    def clean_poll_interval_minutes(self) -> int:
        minutes: int = self.cleaned_data["poll_interval_minutes"]
        if minutes < settings.WEBMAIL_MIN_POLL_MINUTES:
            raise forms.ValidationError(
                _("The administrator allows no less than %(minutes)d minutes."),
                params={"minutes": settings.WEBMAIL_MIN_POLL_MINUTES},
            )
        return minutes

    @staticmethod
    def _host(value: str) -> str:
        host = _no_control_characters(value.strip().lower().rstrip("."))
        try:
            ascii_host = host.encode("idna").decode("ascii")  # Turkish and other IDN names too
        except UnicodeError:
            ascii_host = ""
        if not (_HOST_NAME.fullmatch(ascii_host) or _IP_LITERAL.fullmatch(host)):
            raise forms.ValidationError(_("Enter a server name such as mail.example.com."))
        return host

    @staticmethod
    def _fingerprint(value: str) -> str:
        if not value.strip():
            return ""
        try:
            return normalise_fingerprint(value)
        except ValueError:
            raise forms.ValidationError(_("A SHA-256 fingerprint has 64 hexadecimal digits.")) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if data.get("pop3_retention") == Retention.DELETE_AFTER_DAYS and not data.get("pop3_retention_days"):
            self.add_error("pop3_retention_days", _("Say after how many days."))
        if not data.get("smtp_same_login") and not data.get("smtp_login"):
            self.add_error("smtp_login", _("Enter the SMTP login, or use the incoming one."))
        self.test = self._find_test(data.get("connection_test"))
        self._check_passwords(data)
        if data.get("enabled") and not self.errors:
            self._check_tested(data)
        return data

    def _find_test(self, test_id: uuid.UUID | None) -> ConnectionTest | None:
        if test_id is None:
            return None
        fresh = timezone.now() - CONNECTION_TEST_VALID_FOR
        return ConnectionTest.objects.filter(id=test_id, owner=self.owner, created_at__gt=fresh).first()

    def _check_passwords(self, data: dict[str, Any]) -> None:
        self._check_password(data, "incoming_password", smtp=False, missing=_("Enter the password."))
        if not data.get("smtp_same_login"):
            self._check_password(data, "smtp_password", smtp=True, missing=_("Enter the SMTP password."))

    def _check_password(self, data: dict[str, Any], field: str, *, smtp: bool, missing: StrOrPromise) -> None:
        """Typed now, typed for a test of these very settings, or stored for settings left as they were."""
        mailbox = self.instance if self.instance.pk else None
        if data.get(field) or tested_secret(self.test, data, smtp=smtp):
            return
        if stored_secret(mailbox=mailbox, values=data, smtp=smtp):
            return
        changed = password_destination_changes(mailbox=mailbox, values=data, smtp=smtp)
        if not changed:
            self.add_error(field, missing)
            return
        names = ", ".join(str(_DESTINATION_LABELS[name]) for name in changed)
        self.add_error(
            field,
            _("You changed %(fields)s: type the password again, so it goes only where you mean.")
            % {"fields": names},
        )

    def _check_tested(self, data: dict[str, Any]) -> None:
        if self._connection_unchanged(data):
            return  # a name, colour, signature, poll interval...: nothing a test would check
        test = self.test
        fresh = test is not None and timezone.now() - test.created_at < CONNECTION_TEST_VALID_FOR
        same = (
            test is not None
            and test.settings == connection_settings(data)
            and self._same_passwords(data, test)
        )
        if not (test is not None and fresh and same and test.passed):
            raise forms.ValidationError(
                _("Test the connection with these settings first, or save the mailbox disabled."),
                code="untested",
            )

    def _connection_unchanged(self, data: dict[str, Any]) -> bool:
        """An enabled mailbox (its settings passed a test when it was enabled) whose connection settings
        stay as saved and whose password is not typed again: it connects as it did. Enabling a
        disabled one, a new password or any other connection setting (CONNECTION_FIELDS) needs a test."""
        if self.instance._state.adding or data.get("incoming_password"):
            return False
        if not data.get("smtp_same_login") and data.get("smtp_password"):
            return False
        saved = Mailbox.objects.filter(pk=self.instance.pk).values("enabled", *CONNECTION_FIELDS).first()
        return saved is not None and bool(saved.pop("enabled")) and saved == connection_settings(data)

    @staticmethod
    def _same_passwords(data: dict[str, Any], test: ConnectionTest) -> bool:
        pairs = [(data.get("incoming_password", ""), test.incoming_password_digest)]
        if not data.get("smtp_same_login"):
            pairs.append((data.get("smtp_password", ""), test.smtp_password_digest))
        return all(not typed or crypto.secret_digest(typed) == digest for typed, digest in pairs)

    def passwords(self) -> Passwords:
        return Passwords(
            self.cleaned_data.get("incoming_password", ""), self.cleaned_data.get("smtp_password", "")
        )

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields if name in self.cleaned_data}


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Several files at once, within the administrator's total size limit."""

    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = [super(AttachmentsField, self).clean(item, initial) for item in (data or [])] if data else []
        total = sum(upload.size for upload in files if upload)
        if total > settings.WEBMAIL_MAX_ATTACHMENTS_MB * 1024 * 1024:
            limit = settings.WEBMAIL_MAX_ATTACHMENTS_MB
            raise forms.ValidationError(_("Attachments may add up to %(limit)s MB.") % {"limit": limit})
        return [upload for upload in files if upload]


class ComposeForm(forms.Form):
    @property
    def attachment_limit_mb(self) -> int:
        """For the page: the browser refuses a larger selection before uploading any of it."""
        return int(settings.WEBMAIL_MAX_ATTACHMENTS_MB)

    mailbox = forms.ModelChoiceField(queryset=Mailbox.objects.none(), label=_("From"), empty_label=None)
    to = forms.CharField(label=_("To"), required=False, validators=[_refuse_control_characters])
    cc = forms.CharField(label=_("Cc"), required=False, validators=[_refuse_control_characters])
    bcc = forms.CharField(label=_("Bcc"), required=False, validators=[_refuse_control_characters])
    subject = forms.CharField(label=_("Subject"), required=False, validators=[_refuse_control_characters])
    text = forms.CharField(
        label=_("Message"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 14})
    )
    rich = forms.BooleanField(label=_("Rich text"), required=False)
    html = forms.CharField(required=False, widget=forms.HiddenInput)
    attachments = AttachmentsField(label=_("Attachments"), required=False)
    send_at = forms.DateTimeField(
        label=_("Send later"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mailbox"].queryset = Mailbox.objects.filter(owner=owner).order_by("name")  # type: ignore[attr-defined]

    def signatures(self) -> dict[str, str]:
        """Each mailbox's signature as it will go below the message (the page shows the chosen one)."""
        choices = self.fields["mailbox"].queryset  # type: ignore[attr-defined]
        return {str(mailbox.pk): compose.signature_block(mailbox.signature) for mailbox in choices}

    def chosen_signature(self, signatures: dict[str, str]) -> str:
        """The signature of the mailbox chosen, or of the first one (what the browser selects)."""
        chosen = str(self["mailbox"].value() or "")
        return signatures.get(chosen, next(iter(signatures.values()), ""))

    def clean_send_at(self) -> Any:
        when = self.cleaned_data.get("send_at")
        if when is not None and when <= timezone.now():
            raise forms.ValidationError(_("Choose a time in the future."))
        return when


UNDO_CHOICES = [(0, _("No waiting")), (5, "5"), (10, "10"), (20, "20"), (30, "30"), (60, "60")]


class PreferencesForm(forms.ModelForm):  # type: ignore[type-arg]
    undo_seconds = forms.TypedChoiceField(
        label=_("Seconds to undo a sent message"), choices=UNDO_CHOICES, coerce=int
    )

    class Meta:
        model = User
        fields: ClassVar = ["undo_seconds", "conversations", "reading_pane"]
