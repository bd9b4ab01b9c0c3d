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
from django.utils import formats, timezone
from django.utils.csp import CSP
from django.utils.translation import gettext as _
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Mailbox, User
from accounts.selectors import mailboxes_of
from fetcher import outbox, selectors
from fetcher.mail import compose
from fetcher.mail.names import visible_name
from fetcher.models import Message, OutgoingAttachment, OutgoingMessage, OutgoingState
from fetcher.selectors import message_of, outgoing_of
from webmail.forms import ComposeForm
from webmail.views.request import AuthedRequest


def _people(rows: list[dict[str, str]]) -> list[compose.Recipient]:
    return [compose.Recipient(row.get("name", ""), row.get("address", "")) for row in rows]


def _prefill(user: User, original: Message, mode: str) -> dict[str, Any]:
    """What a reply ("reply", "all") or a forward ("forward" inline, "attach" as a file) starts with."""
    who = original.from_name or original.from_address
    when = formats.date_format(timezone.localtime(original.date or original.sort_date), "DATETIME_FORMAT")
    if mode == "attach":
        return {"subject": compose.forward_subject(original.subject), "text": ""}
    if mode == "forward":
        heading = _(
            "---------- Forwarded message ----------\nFrom: %(who)s\nDate: %(when)s\nSubject: %(subject)s"
        ) % {
            "who": f"{who} <{original.from_address}>",
            "when": when,
            "subject": original.subject,
        }
        return {
            "subject": compose.forward_subject(original.subject),
            "text": compose.quoted(original.text_body, heading),
        }
    author = _people(original.reply_to) or [compose.Recipient(original.from_name, original.from_address)]
    initial: dict[str, Any] = {
        "subject": compose.reply_subject(original.subject),
        "text": compose.quoted(
            original.text_body, _("On %(when)s, %(who)s wrote:") % {"when": when, "who": who}
        ),
        "to": compose.as_field(author),
    }
    if mode == "all":
        own = {mailbox.email_address for mailbox in mailboxes_of(user)}
        everyone = compose.reply_all([*author, *_people(original.to), *_people(original.cc)], own)
        initial["to"] = compose.as_field(everyone[: len(author)] or author)
        initial["cc"] = compose.as_field(everyone[len(author) :])
    return initial


def _initial(
    user: User, request: AuthedRequest, outgoing: OutgoingMessage | None
) -> tuple[dict[str, Any], Message | None, str]:
    if outgoing is not None:
        initial = {
            "mailbox": outgoing.mailbox,
            "to": compose.as_field(_people(outgoing.to)),
            "cc": compose.as_field(_people(outgoing.cc)),
            "bcc": compose.as_field(_people(outgoing.bcc)),
            "subject": outgoing.subject,
            "text": outgoing.text_body,
            "rich": bool(outgoing.html_body),
            "html": outgoing.html_body,
        }
        return initial, outgoing.replying_to, "reply" if outgoing.replying_to_id else ""
    for mode in ("reply", "all", "forward", "attach"):
        if request.GET.get(mode):
            original = message_of(user, request.GET[mode])
            initial = _prefill(user, original, mode)
            initial["mailbox"] = original.mailbox  # message_of() found it among the user's own
            return initial, original, mode
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
    initial, original, mode = _initial(user, request, outgoing)
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
    context = {"form": form, "outgoing": outgoing, "original": original, "mode": mode}
    return render(request, "webmail/compose.html", context)


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
    replying = original if mode in {"reply", "all"} else None
    try:
        outgoing = outbox.outgoing_save(
            owner=user, mailbox=data["mailbox"], values=values, outgoing=outgoing, replying_to=replying
        )
        _attach(
            outgoing,
            data["attachments"],
            original if mode == "attach" and not outgoing.attachments.exists() else None,
        )
        if request.POST.get("action") != "send":
            messages.success(request, _("Draft saved."))
            return redirect("compose_edit", outgoing_id=outgoing.public_id)
        outbox.outgoing_queue(outgoing=outgoing, send_at=data.get("send_at"))
    except compose.ComposeError as error:
        form.add_error(error.field if error.field in form.fields else None, str(error))
        return None
    return redirect("outbox")


def _attach(outgoing: OutgoingMessage, uploads: list[Any], forwarded: Message | None) -> None:
    rows = [
        OutgoingAttachment(
            outgoing=outgoing,
            filename=compose.checked(upload.name, "attachments")[:255],
            content_type=upload.content_type or "application/octet-stream",
            size=upload.size,
            content=upload.read(),
        )
        for upload in uploads
    ]
    if forwarded is not None:
        raw = selectors.raw_of(forwarded)
        name = visible_name(forwarded.subject or "message")[:200].replace("/", "_") + ".eml"
        rows.append(
            OutgoingAttachment(
                outgoing=outgoing, filename=name, content_type="message/rfc822", size=len(raw), content=raw
            )
        )
    OutgoingAttachment.objects.bulk_create(rows)


def _chosen_mailbox(user: User, value: str) -> Mailbox | None:
    try:
        return mailboxes_of(user).filter(pk=uuid.UUID(value)).first()
    except ValueError:
        return None


@login_required
@require_POST
def compose_autosave(request: AuthedRequest, outgoing_id: uuid.UUID | None = None) -> HttpResponse:
    """The page's own saving while someone types: what can be kept is kept, nothing is refused.

    A half-typed address cannot be stored as an address yet: that field keeps its last good value.
    """
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
    # No NUL (PostgreSQL text cannot hold one): the form refuses it, the autosave drops it.
    typed = {
        name: request.POST.get(name, "").replace("\0", "")
        for name in ("to", "cc", "bcc", "subject", "text", "html")
    }
    values = {name: typed[name] for name in ("to", "cc", "bcc", "subject", "text")}
    values["html"] = typed["html"] if request.POST.get("rich") else ""
    values["subject"] = " ".join(values["subject"].split())  # no line breaks in a subject, typed or pasted
    for name in ("to", "cc", "bcc"):
        try:
            compose.recipients(values[name], name)
        except compose.ComposeError:
            values[name] = compose.as_field(_people(getattr(outgoing, name))) if outgoing else ""
    replying = original if request.POST.get("mode") in {"reply", "all"} else None
    saved = outbox.outgoing_save(
        owner=user, mailbox=mailbox, values=values, outgoing=outgoing, replying_to=replying
    )
    return JsonResponse(
        {
            "id": str(saved.public_id),
            "edit_url": reverse("compose_edit", args=[saved.public_id]),
            "autosave_url": reverse("compose_autosave_edit", args=[saved.public_id]),
        }
    )


@login_required
@require_GET
def address_suggestions(request: AuthedRequest) -> HttpResponse:
    """Addresses for the To, Cc and Bcc fields, most used first (JSON, read by static/js/compose.js)."""
    found = selectors.address_suggestions(request.user, request.GET.get("q", "")[:100])
    shown = [compose.as_field([compose.Recipient(name, address)]) for name, address in found]
    return JsonResponse({"suggestions": shown})
