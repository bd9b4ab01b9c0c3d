"""Forms about people: sign-up and a password reset that the worker sends."""

from __future__ import annotations

from functools import partial
from typing import Any

from django import forms
from django.contrib.auth.forms import BaseUserCreationForm, PasswordResetForm
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from accounts import enqueue
from accounts.models import User


class SignupForm(BaseUserCreationForm):  # type: ignore[type-arg]
    email = forms.EmailField(label=_("Email address"), required=True)

    class Meta(BaseUserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def validate_unique(self) -> None:
        """No "this user name exists": accounts.services.signup_request decides, and says nothing."""


class QueuedPasswordResetForm(PasswordResetForm):
    """Queues the reset email for a worker: the web process never talks to a mail server."""

    def save(
        self, *args: Any, domain_override: str | None = None, use_https: bool = False, **kwargs: Any
    ) -> None:
        request = kwargs.get("request")
        domain = domain_override or (request.get_host() if request is not None else "localhost")
        language = translation.get_language()
        for user in self.get_users(self.cleaned_data["email"]):
            transaction.on_commit(partial(enqueue.send_password_reset, user.pk, domain, use_https, language))


class MailboxAddressForm(forms.Form):
    """The first step of adding a mailbox: its address and password; Postane finds the rest."""

    address = forms.EmailField(label=_("Email address"), max_length=254)
    password = forms.CharField(
        label=_("Password"), strip=False, max_length=1024, widget=forms.PasswordInput(render_value=False)
    )
