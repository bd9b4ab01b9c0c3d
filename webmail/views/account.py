"""People's own pages: sign-up (when the administrator allows it)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import crypto
from accounts.auth import client_ip
from accounts.forms import QueuedPasswordResetForm, SignupForm
from accounts.selectors import signup_pending
from accounts.services import SiteLink, signup_request, user_preferences_save
from accounts.services import signup_confirm as signup_confirm_service
from webmail.forms import PreferencesForm
from webmail.views.request import AuthedRequest, HtmxHttpRequest


def _signup_open() -> None:
    # The address is confirmed by mail, so sign-up needs the site's own mail server.
    if not (settings.ALLOW_SIGNUP and settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL):
        raise Http404("Sign-up is off")


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def signup(request: HtmxHttpRequest) -> HttpResponse:
    _signup_open()
    form = SignupForm(request.POST or None)
    if (
        request.method == "POST"
        and form.is_valid()
        and not _signup_allowed(request, form.cleaned_data["email"])
    ):
        form.add_error(None, _("Too many sign-ups in a short time. Wait an hour and try again."))
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        site = SiteLink(request.get_host(), request.is_secure(), translation.get_language())
        signup_request(username=data["username"], email=data["email"], password=data["password1"], site=site)
        return render(request, "registration/signup_sent.html", {"email": data["email"]})
    return render(request, "registration/signup.html", {"form": form})


# Each sign-up sends a mail: a few per client address and per address written to, each hour.
SIGNUPS_PER_HOUR = 5


def _signup_allowed(request: HttpRequest, email: str) -> bool:
    keys = [f"signups:ip:{client_ip(request)}", f"signups:to:{crypto.secret_digest(email.lower())}"]
    counts = []
    for key in keys:
        cache.add(key, 0, timeout=3600)
        counts.append(int(cache.incr(key)))
    return max(counts) <= SIGNUPS_PER_HOUR


@require_http_methods(["GET", "POST"])
def signup_confirm(request: HtmxHttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link from the mail: a GET shows a button (mail scanners open links), the POST confirms."""
    _signup_open()
    user = signup_pending(uidb64, token)
    if user is None:
        return render(request, "registration/signup_confirm.html", {"valid": False}, status=400)
    if request.method == "POST":
        if signup_confirm_service(user=user):
            messages.success(request, _("Your address is confirmed. Sign in to start."))
        else:
            messages.error(request, _("This address is used by another account now. Sign up again."))
        return redirect("login")
    return render(request, "registration/signup_confirm.html", {"valid": True, "pending": user})


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: AuthedRequest) -> HttpResponse:
    """The person's own settings: the undo window for sending, conversations or a plain list."""
    user = request.user
    if user.undo_seconds is None:
        user.undo_seconds = settings.WEBMAIL_UNDO_SECONDS
    form = PreferencesForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        user_preferences_save(user=user, values=form.cleaned_data)
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
