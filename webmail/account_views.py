"""People's own pages: sign-up (when the administrator allows it)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.auth import client_ip
from accounts.forms import QueuedPasswordResetForm, SignupForm
from accounts.models import User
from webmail.forms import PreferencesForm


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.ALLOW_SIGNUP:
        raise Http404("Sign-up is off")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! Add your first mailbox to bring your mail here."))
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """The person's own settings: the undo window for sending, conversations or a plain list."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    if user.undo_seconds is None:
        user.undo_seconds = settings.WEBMAIL_UNDO_SECONDS
    form = PreferencesForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Preferences saved."))
        return redirect("preferences")
    return render(request, "webmail/preferences.html", {"form": form})


class PasswordChange(auth_views.PasswordChangeView):
    success_url = reverse_lazy("home")

    def form_valid(self, form: Any) -> HttpResponse:
        messages.success(self.request, _("Your password was changed."))
        return super().form_valid(form)


class PasswordReset(auth_views.PasswordResetView):
    form_class = QueuedPasswordResetForm

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL:  # no site mail server: an administrator resets them
            raise Http404("Password reset by email is not set up")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        if not _reset_mail_allowed(self.request, form.cleaned_data["email"]):
            # Counted whether or not an account has the address: the answer tells nothing about it.
            form.add_error(
                None,
                _("Too many reset requests for this address or from your network. Try again in an hour."),
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().form_valid(form)


def _reset_mail_allowed(request: HttpRequest, email: str) -> bool:
    """Reset mail is a way to flood someone's inbox: a few per address and per client in an hour."""
    address = hashlib.sha256(email.strip().casefold().encode()).hexdigest()
    return _within(f"reset-mail:address:{address}", settings.WEBMAIL_PASSWORD_RESETS_PER_ADDRESS) and _within(
        f"reset-mail:client:{client_ip(request)}", settings.WEBMAIL_PASSWORD_RESETS_PER_CLIENT
    )


def _within(key: str, limit: int, seconds: int = 3600) -> bool:
    cache.add(key, 0, timeout=seconds)
    return int(cache.incr(key)) <= limit
