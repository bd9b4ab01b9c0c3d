"""Writing mail in the browser: compose, reply, reply all, forward, drafts, their autosave and the
address suggestions.

The outbox (fetcher.outbox) does the sending; these views only fill its rows, always through the
requesting user (someone else's draft or message is a 404).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.csp import CSP
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Mailbox, User
from accounts.selectors import mailboxes_of
from fetcher import drafts, outbox, selectors, services
from fetcher.mail import compose
from fetcher.models import Message, OutgoingMessage, OutgoingState
from fetcher.selectors import message_of, messages_chosen, outgoing_chosen, outgoing_of
from webmail.forms import ComposeForm
from webmail.views.request import AuthedRequest, safe_back

# The Drafts view's boxes name a draft written here by this prefix (and a server's draft by its id).
DRAFT_PREFIX = "draft:"
MAX_DISCARD = 500


def _initial(
    request: AuthedRequest, outgoing: OutgoingMessage | None
) -> tuple[dict[str, Any], Message | None, str]:
    """The form's first values, the message replied to or forwarded, and how ("reply", "all"...)."""
    if outgoing is not None:
        mode = "reply" if outgoing.replying_to_id else "forward" if outgoing.forwarded_text else ""
        return drafts.draft_initial(outgoing=outgoing), outgoing.replying_to, mode
    for mode in drafts.MODES:
        if request.GET.get(mode):
            original = message_of(request.user, request.GET[mode])
            return drafts.draft_prefill(owner=request.user, original=original, mode=mode), original, mode
    return {}, None, ""


# Trix puts its default styles in a <style> element: the compose page allows that one by its nonce.
COMPOSE_CSP: dict[str, Any] = {**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.NONCE]}


@login_required
@require_http_methods(["GET", "POST"])
@csp_override(COMPOSE_CSP)
def compose_view(request: AuthedRequest, outgoing_id: uuid.UUID | None = None) -> HttpResponse:
    user = request.user
    outgoing = outgoing_of(user, outgoing_id) if outgoing_id else None
    if outgoing is not None and outgoing.state == OutgoingState.FAILED:  # only a POST makes it a draft again
        messages.info(request, _("This message was not sent. Press “Edit and send again” to change it."))
        return redirect("outbox")
    if outgoing is not None and outgoing.state != OutgoingState.DRAFT:
        messages.info(request, _("This message is no longer a draft."))
        return redirect("outbox")
    initial, original, mode = _initial(request, outgoing)
    if request.method == "POST":
        original = message_of(user, request.POST["original"]) if request.POST.get("original") else original
        mode = request.POST.get("mode", mode)
        form = ComposeForm(request.POST, request.FILES, owner=user)
        if form.is_valid():
            saved = _save(request, form, user, outgoing, original, mode)
            if saved is not None:
                return saved
    else:
        form = ComposeForm(initial=initial, owner=user)
    signatures = form.signatures()
    context = {
        "form": form,
        "signatures": signatures,
        "signature": form.chosen_signature(signatures),
        "outgoing": outgoing,
        "original": original,
        "mode": mode,
        "attached": drafts.compose_attachments(outgoing=outgoing, original=original, mode=mode),
        "removed": {*request.POST.getlist("remove_attachment"), *request.POST.getlist("remove_part")},
        "forwarded": _forwarded_shown(outgoing, original, mode),
    }
    return render(request, "webmail/compose.html", context)


def _forwarded_shown(outgoing: OutgoingMessage | None, original: Message | None, mode: str) -> str:
    """The forwarded original's text, shown under the note (what goes along is its HTML, if it has one)."""
    if outgoing is not None:
        return outgoing.forwarded_text
    return drafts.forwarded_text(original) if original is not None and mode == "forward" else ""


def _save(  # noqa: PLR0917 -- one call site, which names every value
    request: AuthedRequest,
    form: ComposeForm,
    user: User,
    outgoing: OutgoingMessage | None,
    original: Message | None,
    mode: str,
) -> HttpResponse | None:
    data = form.cleaned_data
    values = {name: data.get(name) or "" for name in ("to", "cc", "bcc", "subject", "text")}
    values["html"] = (data.get("html") or "") if data.get("rich") else ""
    replying = original if mode in drafts.REPLIES else None
    try:
        outgoing = outbox.outgoing_save(
            owner=user, mailbox=data["mailbox"], values=values, outgoing=outgoing, replying_to=replying
        )
        forwarded = original if mode == "attach" else None
        drafts.outgoing_attach(outgoing=outgoing, uploads=data["attachments"], forwarded=forwarded)
        if mode == "forward" and original is not None:
            drafts.outgoing_forward(outgoing=outgoing, original=original)
        drafts.outgoing_detach(
            outgoing=outgoing,
            attachments=request.POST.getlist("remove_attachment"),
            parts=request.POST.getlist("remove_part"),
        )
        if request.POST.get("action") != "send":
            messages.success(request, _("Draft saved."))
            return redirect("compose_edit", outgoing_id=outgoing.public_id)
        outbox.outgoing_queue(outgoing=outgoing, send_at=data.get("send_at"))
    except compose.ComposeError as error:
        form.add_error(error.field if error.field in form.fields else None, str(error))
        return None
    return redirect("outbox")


def _chosen_mailbox(user: User, value: str) -> Mailbox | None:
    try:
        return mailboxes_of(user).filter(pk=uuid.UUID(value)).first()
    except ValueError:
        return None


@login_required
@require_POST
def compose_autosave(request: AuthedRequest, outgoing_id: uuid.UUID | None = None) -> HttpResponse:
    """The page's own saving while someone types (fetcher.drafts.outgoing_autosave: nothing is refused)."""
    user = request.user
    outgoing = outgoing_of(user, outgoing_id) if outgoing_id else None
    if outgoing is not None and outgoing.state != OutgoingState.DRAFT:
        return JsonResponse({"error": "not a draft"}, status=409)
    mailbox = _chosen_mailbox(user, request.POST.get("mailbox", "")) or (
        outgoing.mailbox if outgoing else None
    )
    if mailbox is None:
        raise Http404("No such mailbox")
    original = message_of(user, request.POST["original"]) if request.POST.get("original") else None
    saved = drafts.outgoing_autosave(
        owner=user,
        mailbox=mailbox,
        typed={name: request.POST.get(name, "") for name in drafts.TYPED},
        rich=bool(request.POST.get("rich")),
        outgoing=outgoing,
        replying_to=original if request.POST.get("mode") in drafts.REPLIES else None,
        forwarding=original if request.POST.get("mode") == "forward" else None,
    )
    return JsonResponse(
        {
            "id": str(saved.public_id),
            "edit_url": reverse("compose_edit", args=[saved.public_id]),
            "autosave_url": reverse("compose_autosave_edit", args=[saved.public_id]),
            "discard_url": reverse("compose_discard_edit", args=[saved.public_id]),
        }
    )


@login_required
@require_POST
def compose_discard(request: AuthedRequest, outgoing_id: uuid.UUID | None = None) -> HttpResponse:
    """Discard in compose: the draft goes, with its copy on the IMAP server (none yet: nothing to do)."""
    outgoing = outgoing_of(request.user, outgoing_id) if outgoing_id else None
    if outgoing is not None and not services.drafts_discard(drafts=[outgoing]):
        messages.info(request, _("This message is no longer a draft."))
        return redirect("outbox")
    messages.success(request, _("Draft discarded."))
    return redirect("mail_view", view="drafts")


@login_required
@require_POST
def drafts_discard(request: AuthedRequest) -> HttpResponse:
    """Discard in the Drafts view: the chosen drafts, written here or in a server's Drafts folder."""
    chosen = request.POST.getlist("message")[:MAX_DISCARD]
    ours = [value.removeprefix(DRAFT_PREFIX) for value in chosen if value.startswith(DRAFT_PREFIX)]
    theirs = [value for value in chosen if not value.startswith(DRAFT_PREFIX)]
    count = services.drafts_discard(  # 404 before anything changes when one is not the person's
        drafts=outgoing_chosen(request.user, ours), messages=messages_chosen(request.user, theirs)
    )
    if count:
        messages.success(
            request,
            ngettext("%(count)d draft discarded.", "%(count)d drafts discarded.", count) % {"count": count},
        )
    return redirect(safe_back(request, request.POST.get("back", "")))


@login_required
@require_GET
def address_suggestions(request: AuthedRequest) -> HttpResponse:
    """Addresses for the To, Cc and Bcc fields, most used first (JSON, read by static/js/compose.js)."""
    found = selectors.address_suggestions(request.user, request.GET.get("q", "")[:100])
    shown = [compose.as_field([compose.Recipient(name, address)]) for name, address in found]
    return JsonResponse({"suggestions": shown})
