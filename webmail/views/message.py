"""One message in the browser: the page (with its conversation), the HTML body's sandboxed
document, the original source, the attachments one by one or zipped, remote images.

Every lookup goes through the requesting user (fetcher.selectors.message_of): someone else's
message or part answers 404. The one exception is an inline image of the body's frame, which is
found through the owner its signed link names (webmail.part_links).
"""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import PurePosixPath, PureWindowsPath

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control, patch_vary_headers
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from fetcher import services
from fetcher.mail import mime
from fetcher.mail.names import visible_name
from fetcher.mail.safehtml import sanitise
from fetcher.models import Attachment, Message
from fetcher.selectors import (
    attachment_of,
    attachments_of,
    content_ids_of,
    conversation_of,
    images_allowed,
    inline_image_of,
    message_of,
    message_shown,
    raw_of,
)
from webmail import part_links
from webmail.views.request import AuthedRequest, safe_back


@login_required
@require_GET
def message_view(request: AuthedRequest, message_id: uuid.UUID) -> HttpResponse:
    user = request.user
    message = message_shown(user, message_id)
    conversation = conversation_of(message) if user.conversations else [message]
    parts = attachments_of(conversation)
    opened, focus = _opened(conversation, message)
    entries = [
        {
            "message": item,
            "attachments": parts.get(item.pk, []),
            "text": item.text_body if not item.html_body else "",
            "open": item.pk in opened,
            "focus": item.pk == focus,
        }
        for item in conversation
    ]
    context = {
        "message": message,
        "entries": entries,
        "back": safe_back(request, request.GET.get("back", "")),
        "images_blocked": bool(message.html_body) and not images_allowed(message),
    }
    # The reading pane asks for the message alone; a reload or a shared link gets the whole page.
    in_pane = bool(request.htmx) and request.htmx.target == "pane"
    response = render(request, "webmail/message_pane.html" if in_pane else "webmail/message.html", context)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])  # one URL, two answers: never cached as one
    return response


def _opened(conversation: list[Message], message: Message) -> tuple[set[int], int]:
    """Which messages of a conversation show whole, and which one the page starts at, as Gmail and
    Thunderbird do: the unread ones and the one the link named are open, the read ones are a line
    each until clicked; the page starts at the newest unread one, else at the one the link named."""
    unread = [item.pk for item in conversation if not item.seen]
    return {*unread, message.pk}, unread[-1] if unread else message.pk


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
def message_body(request: AuthedRequest, message_id: uuid.UUID) -> HttpResponseBase:
    """The HTML body as its own document, for the sandboxed iframe of the message page."""
    message = message_of(request.user, message_id)
    images = images_allowed(message)
    # cid: images point at signed links (webmail.part_links): the frame's requests carry no cookie.
    own_prefix = reverse("message_inline_part", args=[message.public_id, 0, "t"])[: -len("0/t/")]
    cids = content_ids_of(message)
    clean = sanitise(
        message.html_body,
        cid_url=lambda cid: part_links.inline_url(message, cids[cid]) if cid in cids else None,
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
def message_source(request: AuthedRequest, message_id: uuid.UUID) -> HttpResponse:
    """ "Show original": the raw message as text, or as an .eml download."""
    message = message_of(request.user, message_id)
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
    previewable = attachment.previewable
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
def message_part(request: AuthedRequest, message_id: uuid.UUID, part: int) -> HttpResponse:
    message = message_of(request.user, message_id)
    attachment = attachment_of(message, part)
    return _attachment_response(message, attachment, inline=bool(request.GET.get("inline")))


@require_GET
def message_inline_part(request: HttpRequest, message_id: uuid.UUID, part: int, token: str) -> HttpResponse:
    """An inline image of the body's frame, by its signed link instead of the session cookie, which
    the sandboxed frame's requests do not carry. Raster images only, as themselves, never cached;
    404 for a bad, expired or altered link, another person's part, or a part that is no image."""
    owner = part_links.owner_of(message_id, part, token)
    attachment = inline_image_of(owner, message_id, part)
    content = mime.part_content(raw_of(attachment.message), part)
    if content is None:
        raise Http404("No such part")
    response = HttpResponse(content, content_type=attachment.content_type)
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Referrer-Policy"] = "no-referrer"
    add_never_cache_headers(response)  # no session, so NoStoreMiddleware does not see it as mail
    patch_cache_control(response, private=True)
    return response


# What one "Download all" may pack; the rest stays downloadable one by one (a note says so).
ZIP_MAX_PARTS = 250
ZIP_MAX_BYTES = 50 * 1024 * 1024


@login_required
@require_GET
def message_parts_zip(request: AuthedRequest, message_id: uuid.UUID) -> HttpResponse:
    """Every attachment of the message in one zip (up to the caps); names made safe and unique."""
    message = message_of(request.user, message_id)
    attachments = {a.part: a for a in attachments_of([message]).get(message.pk, [])}
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


@login_required
@require_POST
def message_images(request: AuthedRequest, message_id: uuid.UUID) -> HttpResponse:
    message = message_of(request.user, message_id)
    services.message_show_images(message=message, always_from_sender=request.POST.get("always") == "1")
    return redirect("message", message_id=message.public_id)
