"""Writes about people and their mailboxes (Django-Styleguide services)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import crypto, enqueue
from accounts.models import (
    CONNECTION_FIELDS,
    CONNECTION_TEST_VALID_FOR,
    INCOMING_CONNECTION_FIELDS,
    SMTP_CONNECTION_FIELDS,
    ConnectionTest,
    Mailbox,
    MailboxDiscovery,
    User,
)
from accounts.signals import mailbox_enabled_changed, mailbox_settings_saved

EDITABLE_FIELDS = (
    "name",
    "email_address",
    "display_name",
    "colour",
    "signature",
    "enabled",
    "poll_interval_minutes",
    *CONNECTION_FIELDS,
    "pop3_retention",
    "pop3_retention_days",
    "pop3_delete_with_local",
    "smtp_saves_sent",
    "imap_folders",
)


@dataclass(frozen=True)
class Passwords:
    """Passwords typed into a form; "" means none was typed (keep the stored or tested one)."""

    incoming: str = ""
    smtp: str = ""

    def __repr__(self) -> str:
        return "Passwords(********)"


class MissingPasswordError(Exception):
    pass


def connection_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The part of a mailbox's settings that a connection test covers, in a comparable form."""
    return {name: values[name] for name in CONNECTION_FIELDS}


def password_destination_changes(*, mailbox: Mailbox | None, values: dict[str, Any], smtp: bool) -> list[str]:
    """The fields in `values` that would send the saved incoming (or SMTP) password somewhere new.

    Change any of them and the password must be typed again, so that whoever holds a session
    cannot point a mailbox at their own server and collect the password.

    Compared with the saved row, not the instance: a bound ModelForm has already written the
    new values into its instance. The incoming password also goes to the SMTP server when the
    logins are shared.
    """
    saved = Mailbox.objects.filter(pk=mailbox.pk).values(*CONNECTION_FIELDS).first() if mailbox else None
    if saved is None:
        return []
    if smtp:
        fields: tuple[str, ...] = SMTP_CONNECTION_FIELDS
    elif values.get("smtp_same_login", saved["smtp_same_login"]):  # SMTP's own login does not matter then
        fields = INCOMING_CONNECTION_FIELDS + tuple(f for f in SMTP_CONNECTION_FIELDS if f != "smtp_login")
    else:
        fields = INCOMING_CONNECTION_FIELDS
    return [name for name in fields if name in values and values[name] != saved[name]]


def tested_secret(test: ConnectionTest | None, values: dict[str, Any], *, smtp: bool) -> str:
    """The password typed for a connection test of exactly these settings ("" if none was typed)."""
    if test is None or any(test.settings.get(name) != values.get(name) for name in CONNECTION_FIELDS):
        return ""
    digest = test.smtp_password_digest if smtp else test.incoming_password_digest
    if not digest:  # the test reused the stored password: it proves nothing was typed
        return ""
    return test.smtp_password_encrypted if smtp else test.incoming_password_encrypted


def stored_secret(*, mailbox: Mailbox | None, values: dict[str, Any], smtp: bool) -> str:
    """The saved password, if the settings still send it where it was saved for; else ""."""
    if mailbox is None or password_destination_changes(mailbox=mailbox, values=values, smtp=smtp):
        return ""
    saved = Mailbox.objects.filter(pk=mailbox.pk).values_list(
        "smtp_password_encrypted" if smtp else "incoming_password_encrypted", flat=True
    )
    return saved.first() or ""


def _secret(typed: str, tested: str, stored: str, what: str) -> str:
    if typed:
        return crypto.encrypt(typed)
    if tested:
        return tested
    if stored:
        return stored
    raise MissingPasswordError(f"the {what} password is missing")


@transaction.atomic
def mailbox_save(
    *,
    owner: User,
    mailbox: Mailbox | None,
    values: dict[str, Any],
    passwords: Passwords,
    test: ConnectionTest | None = None,
) -> Mailbox:
    """Create or update a mailbox. The caller has checked that an enabled mailbox passed `test`."""
    target = mailbox or Mailbox(owner=owner)
    for name in EDITABLE_FIELDS:
        if name in values:
            setattr(target, name, values[name])
    now = {name: getattr(target, name) for name in CONNECTION_FIELDS}
    target.incoming_password_encrypted = _secret(
        passwords.incoming,
        tested_secret(test, now, smtp=False),
        stored_secret(mailbox=mailbox, values=now, smtp=False),
        "incoming",
    )
    if target.smtp_same_login:
        target.smtp_password_encrypted = ""
    else:
        target.smtp_password_encrypted = _secret(
            passwords.smtp,
            tested_secret(test, now, smtp=True),
            stored_secret(mailbox=mailbox, values=now, smtp=True),
            "SMTP",
        )
    target.full_clean(exclude=["owner", "incoming_password_encrypted", "smtp_password_encrypted"])
    target.save()
    mailbox_settings_saved.send(sender=Mailbox, mailbox=target)
    if test is not None:
        test.delete()
    return target


def connection_tests_purge() -> int:
    """Delete the connection tests no save may use any more, and the encrypted passwords they hold."""
    expired = timezone.now() - CONNECTION_TEST_VALID_FOR
    MailboxDiscovery.objects.filter(created_at__lte=expired).delete()  # and the passwords they hold
    deleted, _by_model = ConnectionTest.objects.filter(created_at__lte=expired).delete()
    return deleted


@transaction.atomic
def mailbox_set_enabled(*, mailbox: Mailbox, enabled: bool) -> Mailbox:
    mailbox.enabled = enabled
    mailbox.save(update_fields=["enabled", "updated_at"])
    mailbox_enabled_changed.send(sender=Mailbox, mailbox=mailbox)
    return mailbox


def mailbox_delete(*, mailbox: Mailbox) -> None:
    mailbox.delete()


def password_reset_send(*, user_id: int, domain: str, use_https: bool, language: str = "en") -> None:
    """Build and send the reset link in the worker, in the language the person asked in."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return
    context = {
        "email": user.email,
        "domain": domain,
        "product_name": settings.WEBMAIL_SITE_NAME,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "username": user.get_username(),
        "token": default_token_generator.make_token(user),
        "protocol": "https" if use_https else "http",
    }
    with translation.override(language):
        subject = "".join(render_to_string("registration/password_reset_subject.txt", context).splitlines())
        body = render_to_string("registration/password_reset_email.txt", context)
    EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]).send()


# --- sign-up ---------------------------------------------------------------------------------


class SignupTokenGenerator(PasswordResetTokenGenerator):
    """A link that confirms an address once: it stops working when the account is active or logs in."""

    key_salt = "postane.accounts.signup"

    def _make_hash_value(self, user: AbstractBaseUser, timestamp: int) -> str:
        email = getattr(user, "email", "")
        return f"{user.pk}{email}{user.is_active}{user.last_login}{user.password}{timestamp}"


signup_tokens = SignupTokenGenerator()


def _address_taken(email: str) -> User | None:
    return User.objects.filter(email__iexact=email, is_active=True).first()


def signup_request(*, username: str, email: str, password: str, site: SiteLink) -> None:
    """Sign-up answers the same whatever exists: nothing here tells the caller what happened.

    A new name and address: an inactive account and a link to confirm the address. An address
    that an account already uses: no account, and that account's owner is told by mail. A name
    that is taken: no account, no mail.
    """
    hashed = make_password(password)  # on every path, so the time taken tells nothing either
    owner = _address_taken(email)
    if owner is not None:
        _queue_signup_mail(owner.pk, "address-used", site)
        return
    try:
        with transaction.atomic():
            if User.objects.filter(username__iexact=username).exists():
                return
            user = User(username=username, email=User.objects.normalize_email(email), password=hashed)
            user.is_active = False
            user.save()
    except IntegrityError:  # the same name, signed up for at the same moment
        return
    _queue_signup_mail(user.pk, "confirm", site)


def signup_confirm(*, user: User) -> bool:
    """The address is confirmed: the account may sign in, unless another account took the address since."""
    with transaction.atomic():
        if _address_taken(user.email) is not None:
            return False
        user.is_active = True
        user.save(update_fields=["is_active"])
    return True


@dataclass(frozen=True)
class SiteLink:
    """How the person reached the site, for links in mail the worker sends."""

    domain: str
    use_https: bool
    language: str = "en"


def _queue_signup_mail(user_id: int, kind: str, site: SiteLink) -> None:
    transaction.on_commit(
        lambda: enqueue.send_signup_mail(user_id, kind, site.domain, site.use_https, site.language)
    )


_SIGNUP_MAIL = {
    "confirm": ("registration/signup_confirm_subject.txt", "registration/signup_confirm_email.txt"),
    "address-used": (
        "registration/signup_address_used_subject.txt",
        "registration/signup_address_used_email.txt",
    ),
}


def signup_mail_send(*, user_id: int, kind: str, site: SiteLink) -> None:
    """The confirmation link (or the note that the address has an account), sent by the worker."""
    user = User.objects.filter(pk=user_id).first()
    if user is None or not user.email or kind not in _SIGNUP_MAIL:
        return
    context = {
        "domain": site.domain,
        "protocol": "https" if site.use_https else "http",
        "product_name": settings.WEBMAIL_SITE_NAME,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": signup_tokens.make_token(user),
        "username": user.get_username(),
    }
    subject_template, body_template = _SIGNUP_MAIL[kind]
    with translation.override(site.language):
        subject = "".join(render_to_string(subject_template, context).splitlines())
        body = render_to_string(body_template, context)
    EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]).send()


# --- a person's own settings ------------------------------------------------------------------------

PREFERENCES = ("undo_seconds", "conversations", "reading_pane")


def user_preferences_save(*, user: User, values: Mapping[str, Any]) -> User:
    """The person's own settings (PREFERENCES) among `values`. Only those columns are written: a
    request of theirs running meanwhile (the language they read in, a login) keeps its own."""
    fields = [name for name in PREFERENCES if name in values]
    for name in fields:
        setattr(user, name, values[name])
    user.save(update_fields=fields)
    return user
