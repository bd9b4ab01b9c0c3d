"""The outbox in the browser: what waits, what failed, what was sent; undo and "edit and send again".

The outbox (fetcher.outbox) changes the rows; every lookup goes through the requesting user
(someone else's message is a 404).
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from fetcher import outbox
from fetcher.models import OutgoingState
from fetcher.selectors import outbox_of, outgoing_of
from webmail.views.request import AuthedRequest


@login_required
@require_GET
def outbox_view(request: AuthedRequest) -> HttpResponse:
    return render(request, "webmail/outbox.html", outbox_of(request.user))


@login_required
@require_POST
def outgoing_undo(request: AuthedRequest, outgoing_id: uuid.UUID) -> HttpResponse:
    """Undo (inside the window) or cancel a scheduled message: it becomes a draft again."""
    outgoing = outgoing_of(request.user, outgoing_id)
    if outbox.outgoing_undo(outgoing=outgoing):
        messages.success(request, _("Not sent. The message is a draft again."))
        return redirect("compose_edit", outgoing_id=outgoing.public_id)
    messages.error(request, _("Too late: the message has already left."))
    return redirect("outbox")


@login_required
@require_POST
def outgoing_reopen(request: AuthedRequest, outgoing_id: uuid.UUID) -> HttpResponse:
    """ "Edit and send again": a message that failed becomes a draft to change and send."""
    outgoing = outgoing_of(request.user, outgoing_id)
    if outbox.outgoing_reopen(outgoing=outgoing) or outgoing.state == OutgoingState.DRAFT:
        return redirect("compose_edit", outgoing_id=outgoing.public_id)
    messages.info(request, _("This message is no longer a draft."))
    return redirect("outbox")
