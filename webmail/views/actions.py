"""Changes to mail from the browser, POST only: the list's and the message page's actions,
emptying the Trash, conversations or a plain list.

Every lookup goes through the requesting user (fetcher.selectors): someone else's message or
folder answers 404, and nothing is changed.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.services import user_preferences_save
from fetcher import services
from fetcher.models import Folder, Message
from fetcher.selectors import folder_of, messages_chosen
from webmail.views.request import AuthedRequest, safe_back

ACTIONS = ("read", "unread", "star", "unstar", "archive", "delete", "move")
MAX_BULK = 500


def _apply(action: str, chosen: list[Message], target: Folder | None) -> None:
    if action in {"read", "unread"}:
        services.messages_set_flags(messages=chosen, seen=action == "read")
    elif action in {"star", "unstar"}:
        services.messages_set_flags(messages=chosen, flagged=action == "star")
    elif action == "archive":
        services.messages_archive(messages=chosen)
    elif action == "delete":
        services.messages_delete(messages=chosen)
    elif action == "move" and target is not None:  # a folder holds only its own mailbox's messages
        services.messages_move(
            messages=[m for m in chosen if m.mailbox_id == target.mailbox_id], folder=target
        )


@login_required
@require_POST
def messages_action(request: AuthedRequest) -> HttpResponse:
    """One action on the chosen messages (the list's checkboxes, or one message's buttons)."""
    user = request.user
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        raise Http404("No such action")
    target = (
        folder_of(user, request.POST["folder"]) if action == "move" and request.POST.get("folder") else None
    )
    chosen = messages_chosen(user, request.POST.getlist("message")[:MAX_BULK])  # 404: one is not theirs
    _apply(action, chosen, target)
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    return redirect(safe_back(request, request.POST.get("back", "")))


@login_required
@require_POST
def trash_empty(request: AuthedRequest) -> HttpResponse:
    services.trash_empty(owner=request.user)
    return redirect("mail_view", view="trash")


@login_required
@require_POST
def conversations_setting(request: AuthedRequest) -> HttpResponse:
    user_preferences_save(
        user=request.user, values={"conversations": request.POST.get("conversations") == "1"}
    )
    return redirect(safe_back(request, request.POST.get("back", "")))
