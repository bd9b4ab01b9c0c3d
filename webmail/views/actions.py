"""Changes to mail from the browser, POST only: the list's and the message page's actions, their
Undo, emptying the Trash, conversations or a plain list.

Every lookup goes through the requesting user (fetcher.selectors): someone else's message or
folder answers 404, and nothing is changed. Every action ends with a notice saying what it did,
with an Undo where it can be undone (the last action's, kept in the session).
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.services import user_preferences_save
from fetcher import folders, services
from fetcher.models import Folder, FolderRole, Message
from fetcher.selectors import conversations_chosen, list_scope, messages_chosen, move_target
from fetcher.services import Change, MoveRefusedError
from webmail.views.request import AuthedRequest, safe_back

ACTIONS = ("read", "unread", "star", "unstar", "archive", "delete", "move")
MAX_BULK = 500
# An undo keeps each message it may reverse in the session: a larger action says so and has no Undo.
MAX_UNDO = 1000
UNDO = "undo"  # the session key, and the notice's tag


def _apply(action: str, chosen: list[Message], target: Folder | str) -> Change:
    if action in {"read", "unread"}:
        return services.messages_set_flags(messages=chosen, seen=action == "read")
    if action in {"star", "unstar"}:
        return services.messages_set_flags(messages=chosen, flagged=action == "star")
    if action == "archive":
        return services.messages_archive(messages=chosen)
    if action == "delete":
        return services.messages_delete(messages=chosen)
    if isinstance(target, Folder):
        return services.messages_move(messages=chosen, folder=target)
    return services.messages_file(messages=chosen, role=target)


def _chosen(request: AuthedRequest) -> tuple[list[Message], int]:
    """The messages an action acts on, and how many rows were chosen. A row of a list of
    conversations stands for its conversation's messages in that list (its view, folder or search)."""
    ids = request.POST.getlist("message")[:MAX_BULK]
    rows = len(set(ids))
    if request.POST.get("rows") != "conversations":
        return messages_chosen(request.user, ids), rows
    scope = list_scope(request.user, request.POST.get("scope", ""), request.POST.get("q", ""))
    return conversations_chosen(request.user, ids, scope), rows


@login_required
@require_POST
def messages_action(request: AuthedRequest) -> HttpResponse:
    """One action on the chosen messages (the list's checkboxes, or one message's buttons)."""
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        raise Http404("No such action")
    target = move_target(request.user, request.POST.get("folder", "")) if action == "move" else ""
    chosen, rows = _chosen(request)  # 404: one is not theirs
    if not chosen or (action == "move" and not target):
        hint = _("Choose a folder to move them to.") if chosen else _("Choose messages first.")
        _say(request, messages.INFO, hint)
        return _back(request)
    try:
        change = _apply(action, chosen, target)
    except MoveRefusedError as refused:
        _say(request, messages.WARNING, _refusal(refused))
        return _back(request)
    _done(request, _notice(action, _what(rows, request.POST.get("rows")), change, target), change)
    return _back(request)


def _back(request: AuthedRequest) -> HttpResponse:
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    return redirect(safe_back(request, request.POST.get("back", "")))


def _asked(request: AuthedRequest) -> bool:
    # Marking read on open is a request of the page itself: the person did not ask for a notice,
    # and the Undo of what they did before stays.
    return request.POST.get("notice") != "0"


def _say(request: AuthedRequest, level: int, text: str, tags: str = "") -> None:
    if _asked(request):
        messages.add_message(request, level, text, extra_tags=tags)


def _done(request: AuthedRequest, text: str, change: Change) -> None:
    """The notice of a change, with its Undo when it can be undone (the session keeps what to reverse:
    the last action's only, as a token that only its own notice's Undo carries)."""
    if not _asked(request):
        return
    request.session.pop(UNDO, None)
    if not change.undoable:
        _say(request, messages.SUCCESS, text)
    elif len(change.flagged) + len(change.moved_from) > MAX_UNDO:
        _say(request, messages.SUCCESS, text + " " + _("This action was too large to undo."))
    else:
        request.session[UNDO] = {"token": secrets.token_urlsafe(16), "change": change.as_json()}
        _say(request, messages.SUCCESS, text, UNDO)


def _what(rows: int, kind: str | None) -> str:
    if kind == "conversations":
        return ngettext("%(count)d conversation", "%(count)d conversations", rows) % {"count": rows}
    return ngettext("%(count)d message", "%(count)d messages", rows) % {"count": rows}


def _notice(action: str, what: str, change: Change, target: Folder | str) -> str:
    if action == "delete" and change.deleted:
        if change.moved_from:
            return _("%(moved)s moved to Trash, %(deleted)s deleted for good.") % {
                "moved": _what(len(change.moved_from), None),
                "deleted": _what(change.deleted, None),
            }
        return _("%(what)s deleted for good.") % {"what": what}
    sentences = {
        "read": _("%(what)s marked as read."),
        "unread": _("%(what)s marked as unread."),
        "star": _("%(what)s starred."),
        "unstar": _("%(what)s unstarred."),
        "archive": _("%(what)s archived."),
        "delete": _("%(what)s moved to Trash."),
    }
    if action in sentences:
        return sentences[action] % {"what": what}
    return _("%(what)s moved to %(folder)s.") % {"what": what, "folder": _folder_label(target)}


def _folder_label(target: Folder | str) -> str:
    if not isinstance(target, Folder):
        return str(FolderRole(target).label)
    if target.role != FolderRole.OTHER:
        return str(target.get_role_display())
    return folders.relative_name(target.name, target.delimiter).replace(target.delimiter or "\0", " › ")


def _refusal(refused: MoveRefusedError) -> str:
    return _(
        "Nothing was moved: “%(folder)s” is a folder of %(mailbox)s, and %(others)s of the chosen"
        " messages are in another mailbox. Choose a folder of their own mailbox, or one under"
        " “Each message's own mailbox”."
    ) % {
        "folder": _folder_label(refused.folder),
        "mailbox": refused.folder.mailbox.name,
        "others": refused.others,
    }


@login_required
@require_POST
def messages_undo(request: AuthedRequest) -> HttpResponse:
    """The notice's Undo: reverse the last action, if this is its notice's (the token says so)."""
    kept = request.session.get(UNDO) or {}
    if not constant_time_compare(str(kept.get("token", "")), request.POST.get("token", "-")):
        messages.info(request, _("That can no longer be undone."))
        return redirect(safe_back(request, request.POST.get("back", "")))
    del request.session[UNDO]
    services.messages_undo(owner=request.user, change=Change.from_json(kept.get("change") or {}))
    messages.success(request, _("Undone."))
    return redirect(safe_back(request, request.POST.get("back", "")))


@login_required
@require_POST
def trash_empty(request: AuthedRequest) -> HttpResponse:
    deleted = services.trash_empty(owner=request.user)
    messages.success(request, _("%(what)s deleted for good.") % {"what": _what(deleted, None)})
    return redirect("mail_view", view="trash")


@login_required
@require_POST
def conversations_setting(request: AuthedRequest) -> HttpResponse:
    user_preferences_save(
        user=request.user, values={"conversations": request.POST.get("conversations") == "1"}
    )
    return redirect(safe_back(request, request.POST.get("back", "")))


@login_required
@require_POST
def reading_pane_setting(request: AuthedRequest) -> HttpResponse:
    """The list's own switch between the reading pane and one column (Preferences has it too)."""
    user_preferences_save(user=request.user, values={"reading_pane": request.POST.get("reading_pane") == "1"})
    return redirect(safe_back(request, request.POST.get("back", "")))
