"""Adding a mailbox from its address and password: the discovery runs in a worker
(fetcher.discovery), this page shows each step as it is tried, then what was found, from where,
and its connection test; the full form stays one click away, filled in with what was found."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import MailboxAddressForm
from accounts.models import ConnectionTestStatus, DiscoveryStatus, MailboxDiscovery
from fetcher.discovery import discovery_retest, discovery_save, discovery_start
from fetcher.services import mailbox_sync_now
from webmail.views.mailboxes import connection_tests_allowed
from webmail.views.request import AuthedRequest

PROTOCOLS = ("imap", "pop3")


@login_required
@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def mailbox_new(request: AuthedRequest) -> HttpResponse:
    form = MailboxAddressForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if connection_tests_allowed(request.user):
            found = discovery_start(
                owner=request.user,
                address=form.cleaned_data["address"],
                password=form.cleaned_data["password"],
            )
            return redirect("discovery", found.id)
        form.add_error(
            None, _("Too many connection tests in a short time. Wait a few minutes and try again.")
        )
    return render(request, "webmail/mailbox_new.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def discovery_view(request: AuthedRequest, discovery_id: uuid.UUID) -> HttpResponse:
    found = get_object_or_404(
        MailboxDiscovery.objects.select_related("test"), id=discovery_id, owner=request.user
    )
    if request.method == "POST":
        protocol = request.POST.get("protocol", "")
        if protocol in _protocols(found) and connection_tests_allowed(request.user):
            discovery_retest(discovery=found, protocol=protocol)
        return redirect("discovery", found.id)
    test = found.test
    running = found.status != DiscoveryStatus.DONE or (
        test is not None and test.status != ConnectionTestStatus.DONE
    )
    context = {
        "discovery": found,
        "result": found.result,
        "test": test,
        "running": running,
        "other_protocols": [
            p for p in _protocols(found) if test is None or p != test.settings.get("protocol")
        ],
    }
    template = "webmail/discovery.html#status" if request.htmx else "webmail/discovery.html"
    return render(request, template, context)


@login_required
@require_POST
def discovery_save_view(request: AuthedRequest, discovery_id: uuid.UUID) -> HttpResponse:
    found = get_object_or_404(
        MailboxDiscovery.objects.select_related("test"), id=discovery_id, owner=request.user
    )
    try:
        saved = discovery_save(discovery=found)
    except ValueError:
        messages.error(request, _("This mailbox has not passed its connection test yet."))
        return redirect("discovery", found.id)
    messages.success(request, _("Mailbox “%(name)s” saved.") % {"name": saved.name})
    mailbox_sync_now(mailbox=saved)  # the first mail should not wait for the next poll
    return redirect("mailbox_list")


def _protocols(found: MailboxDiscovery) -> list[str]:
    offered = {server["protocol"] for server in found.result.get("servers") or []}
    return [protocol for protocol in PROTOCOLS if protocol in offered]
