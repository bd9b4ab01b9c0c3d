"""Mailbox settings in the browser: list, add, edit, test the connection, delete."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from accounts.models import (
    DEFAULT_PORTS,
    ConnectionTest,
    ConnectionTestStatus,
    Mailbox,
    MailboxDiscovery,
    User,
)
from accounts.selectors import connection_test_of, mailbox_of, mailboxes_of
from accounts.services import MissingPasswordError, mailbox_delete, mailbox_save
from fetcher.discovery import discovery_values
from fetcher.selectors import mailbox_storage
from fetcher.services import connection_test_start, mailbox_sync_now
from webmail.forms import MailboxForm
from webmail.views.request import AuthedRequest

# A browser without JavaScript waits this long for the worker's answer before the page returns.
TEST_WAIT_WITHOUT_JS = 25.0


@login_required
@require_GET
def mailbox_list(request: AuthedRequest) -> HttpResponse:
    # Each mailbox's health comes in the same query.
    mailboxes = list(mailboxes_of(request.user).select_related("sync"))
    storage = mailbox_storage([mailbox.id for mailbox in mailboxes])
    rows = [(mailbox, *storage.get(mailbox.id, (0, 0))) for mailbox in mailboxes]
    return render(request, "webmail/mailbox_list.html", {"rows": rows})


@login_required
@sensitive_post_parameters("incoming_password", "smtp_password")
@require_http_methods(["GET", "POST"])
def mailbox_add(request: AuthedRequest) -> HttpResponse:
    return _mailbox_form(request, None)


@login_required
@sensitive_post_parameters("incoming_password", "smtp_password")
@require_http_methods(["GET", "POST"])
def mailbox_edit(request: AuthedRequest, mailbox_id: uuid.UUID) -> HttpResponse:
    return _mailbox_form(request, mailbox_of(request.user, mailbox_id))


def _mailbox_form(request: AuthedRequest, mailbox: Mailbox | None) -> HttpResponse:
    owner = request.user
    test: ConnectionTest | None = None
    if request.method != "POST":
        form = MailboxForm(
            instance=mailbox,
            owner=owner,
            initial=_initial(owner, request.GET.get("discovery", "")) if mailbox is None else None,
        )
    elif request.POST.get("action") == "test":
        return _test(request, mailbox)
    else:
        form = MailboxForm(request.POST, instance=mailbox, owner=owner)
        if form.is_valid():
            saved = mailbox_save(
                owner=owner, mailbox=mailbox, values=form.values(), passwords=form.passwords(), test=form.test
            )
            messages.success(request, _("Mailbox “%(name)s” saved.") % {"name": saved.name})
            if saved.enabled:
                mailbox_sync_now(mailbox=saved)  # the first mail should not wait for the next poll
            return redirect("mailbox_list")
        test = form.test
    return _render_form(request, form, mailbox, test)


def _initial(owner: User, discovery_id: str) -> dict[str, Any]:
    """A new mailbox's form: what a discovery of the person's found (its tested protocol first), or
    the standard ports. The password is never filled in: it is typed again here."""
    defaults = {"incoming_port": DEFAULT_PORTS["pop3", "ssl"], "smtp_port": DEFAULT_PORTS["smtp", "starttls"]}
    try:
        found = (
            MailboxDiscovery.objects.filter(owner=owner, id=uuid.UUID(discovery_id))
            .select_related("test")
            .first()
        )
    except ValueError:
        return defaults
    if found is None:
        return defaults
    protocol = found.test.settings.get("protocol", "imap") if found.test else "imap"
    values = discovery_values(found.result, found.address, protocol) or discovery_values(
        found.result, found.address, "pop3"
    )
    return values or defaults | {"email_address": found.address, "name": found.address}


def _render_form(
    request: AuthedRequest, form: MailboxForm, mailbox: Mailbox | None, test: ConnectionTest | None
) -> HttpResponse:
    context = {"form": form, "mailbox": mailbox, "test": test, "default_ports": _port_table()}
    return render(request, "webmail/mailbox_form.html", context)


def _port_table() -> dict[str, int]:
    return {f"{protocol}-{security}": port for (protocol, security), port in DEFAULT_PORTS.items()}


def _test(request: AuthedRequest, mailbox: Mailbox | None) -> HttpResponse:
    owner = request.user
    data = request.POST.copy()
    data["enabled"] = ""  # validate the settings alone: being tested is what this request is for
    form = MailboxForm(data, instance=mailbox, owner=owner)
    test = None
    if not connection_tests_allowed(owner):
        form.add_error(
            None, _("Too many connection tests in a short time. Wait a few minutes and try again.")
        )
    elif form.is_valid():
        test = _start_test(form, owner, mailbox)
        if test is not None and not request.htmx:
            test = _wait_for(test)
    if request.htmx and test is not None:
        return render(request, "webmail/mailbox_form.html#test-status", {"test": test, "oob": True})
    if request.htmx:
        # The settings have errors: show the whole form again, with them.
        response = _render_form(request, form, mailbox, None)
        return reswap(retarget(response, "#main"), "outerHTML")
    bound = MailboxForm(_with_test(request.POST, test), instance=mailbox, owner=owner)
    return _render_form(request, bound if test else form, mailbox, test)


def _start_test(form: MailboxForm, owner: User, mailbox: Mailbox | None) -> ConnectionTest | None:
    try:
        return connection_test_start(
            owner=owner, mailbox=mailbox, values=form.values(), passwords=form.passwords()
        )
    except MissingPasswordError:  # the form asks for it first; this is the second line of defence
        form.add_error("incoming_password", _("Type the password again for these settings."))
        return None


def _with_test(post: Any, test: ConnectionTest | None) -> Any:
    data = post.copy()
    data["connection_test"] = str(test.id) if test else ""
    return data


def connection_tests_allowed(owner: User) -> bool:
    """The test is a password oracle: a few per user in ten minutes, counted in Redis."""
    key = f"connection-tests:{owner.pk}"
    cache.add(key, 0, timeout=600)
    return int(cache.incr(key)) <= settings.WEBMAIL_CONNECTION_TESTS_PER_10_MINUTES


def _wait_for(test: ConnectionTest) -> ConnectionTest:
    deadline = time.monotonic() + TEST_WAIT_WITHOUT_JS
    while test.status != ConnectionTestStatus.DONE and time.monotonic() < deadline:
        time.sleep(0.5)
        test.refresh_from_db()
    return test


@login_required
@require_GET
def connection_test_status(request: AuthedRequest, test_id: uuid.UUID) -> HttpResponse:
    test = connection_test_of(request.user, test_id)
    return render(request, "webmail/mailbox_form.html#test-status", {"test": test})


@login_required
@require_http_methods(["GET", "POST"])
def mailbox_remove(request: AuthedRequest, mailbox_id: uuid.UUID) -> HttpResponse:
    mailbox = mailbox_of(request.user, mailbox_id)
    if request.method == "POST":
        name = mailbox.name
        mailbox_delete(mailbox=mailbox)
        messages.success(request, _("Mailbox “%(name)s” removed.") % {"name": name})
        return redirect("mailbox_list")
    return render(request, "webmail/mailbox_confirm_delete.html", {"mailbox": mailbox})


@login_required
@require_POST
def mailbox_sync(request: AuthedRequest, mailbox_id: uuid.UUID) -> HttpResponse:
    mailbox = mailbox_of(request.user, mailbox_id)
    if not mailbox.enabled:
        messages.error(request, _("“%(name)s” is disabled: enable it to sync.") % {"name": mailbox.name})
    else:
        mailbox_sync_now(mailbox=mailbox)
        messages.success(request, _("“%(name)s” will be synced in a moment.") % {"name": mailbox.name})
    return redirect("mailbox_list")
