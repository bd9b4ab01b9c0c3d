"""Reading mail in the browser: lists, conversations, the message, its parts, search and actions.

Every lookup goes through the requesting user (fetcher.selectors): someone else's message,
folder or attachment answers 404. Every change is a POST.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from fetcher import services
from fetcher.mail import mime, search
from fetcher.mail.names import visible_name
from fetcher.mail.safehtml import sanitise
from fetcher.models import Attachment, ImageSender, Message, OutgoingMessage, OutgoingState
from fetcher.selectors import (
    VIEWS,
    Cursor,
    Page,
    conversation_of,
    folder_of,
    message_of,
    page_of_folders,
    page_of_search,
    page_of_starred,
    raw_of,
    thread_sizes,
    unread_in_view,
)
from webmail.context_processors import holdings

VIEW_TITLES = {
    "inbox": gettext_lazy("All inboxes"),
    "starred": gettext_lazy("Starred"),
    "sent": gettext_lazy("Sent"),
    "drafts": gettext_lazy("Drafts"),
    "archive": gettext_lazy("Archive"),
    "junk": gettext_lazy("Junk"),
    "trash": gettext_lazy("Trash"),
}
# Types a browser may show inline; everything else is a download of application/octet-stream.
PREVIEWABLE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
MAX_BULK = 500


def _user(request: HttpRequest) -> User:
    if not isinstance(request.user, User):  # login_required ran first; this narrows the type
        raise PermissionDenied
    return request.user


@dataclass(frozen=True)
class Row:
    message: Message
    mailbox: Any
    count: int  # messages in its conversation (1 in the plain list)


def _rows(request: HttpRequest, user: User, page: Page) -> list[Row]:
    mailboxes = {mailbox.id: mailbox for mailbox in holdings(request).mailboxes}
    messages = page.messages
    counts: dict[str, int] = {}
    if user.conversations:
        seen: set[str] = set()
        kept = []
        for message in messages:  # newest first: the first of a conversation on the page stands for it
            if message.thread_key and message.thread_key in seen:
                continue
            seen.add(message.thread_key)
            kept.append(message)
        messages, counts = kept, thread_sizes(user, [m.thread_key for m in kept])
    return [Row(m, mailboxes.get(m.mailbox_id), counts.get(m.thread_key, 1)) for m in messages]


def _list(
    request: HttpRequest, page: Page, *, title: str, here: str, query: str = "", drafts: Any = None
) -> HttpResponse:
    user = _user(request)
    context = {
        "rows": _rows(request, user, page),
        "next": page.next.encode() if page.next else "",
        "title": title,
        "here": here,
        "drafts": drafts,
        "query": query,
        "terms": search.query_words(search.parse_query(query).text) if query else [],
        # Built once, not per row: a row's link is message_url + its id + back_query.
        "message_url": reverse("message", args=[uuid.UUID(int=0)]).removesuffix(f"{uuid.UUID(int=0)}/"),
        "back_query": "?" + urlencode({"back": request.get_full_path()}),
    }
    template = (
        "webmail/mail_list.html#rows"
        if request.htmx and request.GET.get("after")  # type: ignore[attr-defined]
        else "webmail/mail_list.html"
    )
    return render(request, template, context)


def _unread_inbox(user: User) -> int:
    return unread_in_view(user, "inbox")


@login_required
@require_GET
def mail_view(request: HttpRequest, view: str = "inbox") -> HttpResponse:
    user = _user(request)
    if view not in VIEWS:
        raise Http404("No such view")
    after = Cursor.decode(request.GET.get("after"))
    held = holdings(request)
    if view == "starred":
        page = page_of_starred(user, after, mailboxes=held.mailbox_ids())
    else:
        page = page_of_folders(held.view_folder_ids(view), after, conversations=user.conversations)
    drafts = None
    if view == "drafts" and after is None:  # drafts written here, above the server's Drafts folders
        own = OutgoingMessage.objects.filter(owner=user, state=OutgoingState.DRAFT)
        drafts = own.order_by("-updated_at")[:50]
        # An IMAP server keeps a copy of those drafts in its Drafts folder: list each once.
        own_ids = set(own.values_list("message_id", flat=True))
        page = Page([m for m in page.messages if m.message_id not in own_ids], page.next)
    return _list(request, page, title=str(VIEW_TITLES[view]), here=view, drafts=drafts)


@login_required
@require_GET
def folder_view(request: HttpRequest, folder_id: uuid.UUID) -> HttpResponse:
    user = _user(request)
    folder = folder_of(user, folder_id)
    after = Cursor.decode(request.GET.get("after"))
    page = page_of_folders([folder.pk], after, conversations=user.conversations)
    return _list(request, page, title=f"{folder.mailbox.name} · {folder.name}", here=str(folder.public_id))


@login_required
@require_GET
def search_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    text = request.GET.get("q", "").strip()[:500]
    if not text:
        return redirect("mail")
    after = Cursor.decode(request.GET.get("after"))
    page = page_of_search(user, search.parse_query(text), after, mailboxes=holdings(request).mailbox_ids())
    return _list(request, page, title=_("Search: %(query)s") % {"query": text}, here="search", query=text)


# --- one message ----------------------------------------------------------------------------------


def _images_allowed(message: Message) -> bool:
    if message.show_images:
        return True
    owner = message.mailbox.owner_id
    return ImageSender.objects.filter(owner_id=owner, address=message.from_address.lower()).exists()


@login_required
@require_GET
def message_view(request: HttpRequest, message_id: uuid.UUID) -> HttpResponse:
    user = _user(request)
    message = message_of(user, message_id)
    conversation = conversation_of(message) if user.conversations else [message]
    parts: dict[int, list[Attachment]] = {}
    for attachment in Attachment.objects.filter(message__in=conversation).order_by("part"):
        attachment.previewable = attachment.content_type in PREVIEWABLE  # type: ignore[attr-defined]
        parts.setdefault(attachment.message_id, []).append(attachment)
    entries = [
        {
            "message": item,
            "attachments": parts.get(item.pk, []),
            "text": item.text_body if not item.html_body else "",
            "focus": item.pk == message.pk,
        }
        for item in conversation
    ]
    context = {
        "message": message,
        "entries": entries,
        "back": _safe_back(request),
        "images_blocked": bool(message.html_body) and not _images_allowed(message),
    }
    return render(request, "webmail/message.html", context)


def _safe_back(request: HttpRequest) -> str:
    back = request.GET.get("back", "")
    allowed = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
    return back if back and allowed else reverse("mail")


def _frame_policy(request: HttpRequest, images: bool) -> str:
    """The mail document's own policy: nothing runs, nothing loads but our parts (and images if allowed)."""
    own = request.build_absolute_uri("/").rstrip("/")
    remote = " https: http:" if images else ""
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' {own}{remote}; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
    )


_FRAME_STYLE = (
    "body{margin:0;padding:8px;font:15px/1.5 system-ui,sans-serif;color:#1d2430;background:#fff;"
    "overflow-wrap:anywhere}img{max-width:100%;height:auto}table{max-width:100%}"
)


@login_required
@require_GET
@xframe_options_sameorigin
def message_body(request: HttpRequest, message_id: uuid.UUID) -> HttpResponseBase:
    """The HTML body as its own document, for the sandboxed iframe of the message page."""
    message = message_of(_user(request), message_id)
    images = _images_allowed(message)
    own_prefix = reverse("message_part", args=[message.public_id, 0])[: -len("0/")]
    cids = dict(
        Attachment.objects.filter(message=message).exclude(content_id="").values_list("content_id", "part")
    )
    clean = sanitise(
        message.html_body,
        cid_url=lambda cid: f"{own_prefix}{cids[cid]}/?inline=1" if cid in cids else None,
        own_prefix=own_prefix,
        remote_images=images,
    )
    document = (
        f'<!doctype html><html><head><meta charset="utf-8"><style>{_FRAME_STYLE}</style></head>'
        f"<body>{clean.html}</body></html>"
    )
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Referrer-Policy"] = "no-referrer"
    response["Content-Security-Policy"] = _frame_policy(request, images)  # the middleware keeps a view's own
    return response


@login_required
@require_GET
def message_source(request: HttpRequest, message_id: uuid.UUID) -> HttpResponse:
    """ "Show original": the raw message as text, or as an .eml download."""
    message = message_of(_user(request), message_id)
    raw = raw_of(message)
    if request.GET.get("download"):
        response = HttpResponse(raw, content_type="message/rfc822")
        response["Content-Disposition"] = (
            content_disposition_header(True, f"{message.public_id}.eml") or "attachment"
        )
        return response
    text = raw[: 2 * 1024 * 1024].decode("utf-8", "replace")
    return render(
        request, "webmail/message_source.html", {"message": message, "source": text, "size": len(raw)}
    )


def safe_filename(name: str, fallback: str) -> str:
    """A file name that cannot be a path: no directories, no control characters, not empty."""
    name = PureWindowsPath(PurePosixPath(visible_name(name)).name).name
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"/\\|?*').strip(" .")
    return name[:200] or fallback


def _attachment_response(message: Message, attachment: Attachment, *, inline: bool) -> HttpResponse:
    raw = raw_of(message)
    content = mime.part_content(raw, attachment.part)
    if content is None:
        raise Http404("No such part")
    previewable = attachment.content_type in PREVIEWABLE
    content_type = attachment.content_type if previewable else "application/octet-stream"
    response = HttpResponse(content, content_type=content_type)
    name = safe_filename(attachment.filename, f"part-{attachment.part}")
    response["Content-Disposition"] = (
        content_disposition_header(not (inline and previewable), name) or "attachment"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
    )
    return response


@login_required
@require_GET
@xframe_options_sameorigin
def message_part(request: HttpRequest, message_id: uuid.UUID, part: int) -> HttpResponse:
    message = message_of(_user(request), message_id)
    attachment = Attachment.objects.filter(message=message, part=part).first()
    if attachment is None:
        raise Http404("No such part")
    return _attachment_response(message, attachment, inline=bool(request.GET.get("inline")))


# What one "Download all" may pack; the rest stays downloadable one by one (a note says so).
ZIP_MAX_PARTS = 250
ZIP_MAX_BYTES = 50 * 1024 * 1024


@login_required
@require_GET
def message_parts_zip(request: HttpRequest, message_id: uuid.UUID) -> HttpResponse:
    """Every attachment of the message in one zip (up to the caps); names made safe and unique."""
    message = message_of(_user(request), message_id)
    attachments = {a.part: a for a in Attachment.objects.filter(message=message).order_by("part")}
    buffer, names = io.BytesIO(), _UniqueNames()
    packed = size = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, content in mime.parts_content(raw_of(message), attachments):
            if packed == ZIP_MAX_PARTS or size + len(content) > ZIP_MAX_BYTES:
                break
            archive.writestr(names.add(safe_filename(attachments[part].filename, f"part-{part}")), content)
            packed, size = packed + 1, size + len(content)
        if packed < len(attachments):
            archive.writestr(names.add(_("NOT-INCLUDED.txt")), _zip_note(packed, len(attachments)))
    response = HttpResponse(buffer.getvalue(), content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(
        True, safe_filename(message.subject, "mail") + ".zip"
    )
    return response


class _UniqueNames:
    """Names for a zip that differ even where file systems ignore case: "a.pdf", "a (2).pdf"."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def add(self, name: str) -> str:
        stem, dot, suffix = name.rpartition(".")
        number = 1
        while name.lower() in self.used:
            number += 1
            name = f"{stem} ({number}).{suffix}" if dot else f"{suffix} ({number})"
        self.used.add(name.lower())
        return name


def _zip_note(packed: int, total: int) -> str:
    return _(
        "This archive holds the first %(packed)d of the %(total)d attachments: one download packs at most "
        "%(parts)d files or %(megabytes)d MB. Download the others one by one from the message.\n"
    ) % {
        "packed": packed,
        "total": total,
        "parts": ZIP_MAX_PARTS,
        "megabytes": ZIP_MAX_BYTES // (1024 * 1024),
    }


# --- changes: POST only ---------------------------------------------------------------------------

ACTIONS = ("read", "unread", "star", "unstar", "archive", "delete", "move")


def _apply(action: str, message: Message, target: Any) -> None:
    if action in {"read", "unread"}:
        services.message_set_flags(message=message, seen=action == "read")
    elif action in {"star", "unstar"}:
        services.message_set_flags(message=message, flagged=action == "star")
    elif action == "archive":
        services.message_archive(message=message)
    elif action == "delete":
        services.message_delete(message=message)
    elif action == "move" and target is not None and target.mailbox_id == message.mailbox_id:
        services.message_move(message=message, folder=target)


@login_required
@require_POST
def messages_action(request: HttpRequest) -> HttpResponse:
    """One action on the chosen messages (the list's checkboxes, or one message's buttons)."""
    user = _user(request)
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        raise Http404("No such action")
    ids = request.POST.getlist("message")[:MAX_BULK]
    target = (
        folder_of(user, request.POST["folder"]) if action == "move" and request.POST.get("folder") else None
    )
    chosen = [message_of(user, public_id) for public_id in ids]  # 404 for any that is not the user's
    for message in chosen:
        _apply(action, message, target)
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    return redirect(_back_from_post(request))


def _back_from_post(request: HttpRequest) -> str:
    back = request.POST.get("back", "")
    return (
        back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) else reverse("mail")
    )


@login_required
@require_POST
def message_images(request: HttpRequest, message_id: uuid.UUID) -> HttpResponse:
    message = message_of(_user(request), message_id)
    services.message_show_images(message=message, always_from_sender=request.POST.get("always") == "1")
    return redirect("message", message_id=message.public_id)


@login_required
@require_POST
def trash_empty(request: HttpRequest) -> HttpResponse:
    services.trash_empty(owner=_user(request))
    return redirect("mail_view", view="trash")


@login_required
@require_POST
def conversations_setting(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    user.conversations = request.POST.get("conversations") == "1"
    user.save(update_fields=["conversations"])
    return redirect(_back_from_post(request))


@login_required
@require_GET
def unread_count(request: HttpRequest) -> HttpResponse:
    """The unread count of all inboxes, polled by the list to show new mail and the tab title."""
    return HttpResponse(str(_unread_inbox(_user(request))), content_type="text/plain")
