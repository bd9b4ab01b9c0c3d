"""Administrators' screens for mailboxes: settings, health, storage and sync now; never a password.

It lives in the engine, which builds on accounts: it shows what the engine keeps about a mailbox
and acts through the engine's services (accounts may not import fetcher).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import CONNECTION_FIELDS, Mailbox
from accounts.services import mailbox_set_enabled
from fetcher.services import mailbox_sync_now


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "email_address",
        "name",
        "owner",
        "protocol",
        "enabled",
        "state",
        "last_success_at",
        "last_error_short",
        "message_count",
        "storage_used",
    )
    list_filter = ("protocol", "enabled", "state")
    search_fields = ("email_address", "name", "owner__username", "incoming_host")
    list_select_related = ("owner",)
    actions = ("sync_now", "enable", "disable")
    readonly_fields = (
        "id",
        "state",
        "last_success_at",
        "last_error_at",
        "last_error_kind",
        "last_error_message",
        "next_sync_at",
        "consecutive_failures",
        "created_at",
        "updated_at",
    )
    # The encrypted passwords are not editable fields, so no form ever carries them.
    fieldsets: ClassVar = [
        (None, {"fields": ["id", "owner", "name", "email_address", "display_name", "colour", "enabled"]}),
        (
            _("Incoming mail"),
            {
                "fields": [
                    "protocol",
                    "incoming_host",
                    "incoming_port",
                    "incoming_security",
                    "incoming_login",
                    "incoming_fingerprint",
                    "pop3_retention",
                    "pop3_retention_days",
                    "imap_folders",
                    "poll_interval_minutes",
                ]
            },
        ),
        (
            _("Outgoing mail (SMTP)"),
            {
                "fields": [
                    "smtp_host",
                    "smtp_port",
                    "smtp_security",
                    "smtp_same_login",
                    "smtp_login",
                    "smtp_fingerprint",
                ]
            },
        ),
        (
            _("Health"),
            {
                "fields": [
                    "state",
                    "paused",
                    "next_sync_at",
                    "consecutive_failures",
                    "last_success_at",
                    "last_error_at",
                    "last_error_kind",
                    "last_error_message",
                ]
            },
        ),
        (None, {"fields": ["signature", "created_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Mailbox | None = None) -> tuple[str, ...]:
        # The stored password goes only where it was typed for: where a mailbox connects changes
        # only in its owner's form, which asks for the password again (issue #10, point 7).
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, *CONNECTION_FIELDS) if obj is not None else fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Mailbox]:
        queryset: QuerySet[Mailbox] = super().get_queryset(request)
        return queryset.annotate(stored=Count("messages"), stored_bytes=Sum("messages__size"))

    @admin.display(description=_("messages"), ordering="stored")
    def message_count(self, mailbox: Any) -> int:
        return int(mailbox.stored)

    @admin.display(description=_("storage used"), ordering="stored_bytes")
    def storage_used(self, mailbox: Any) -> str:
        return filesizeformat(mailbox.stored_bytes or 0)

    @admin.action(description=_("Sync the selected mailboxes now"))
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> None:
        for mailbox in queryset:
            mailbox_sync_now(mailbox=mailbox)
        count = len(queryset)
        text = ngettext(
            "%(count)d mailbox queued for a sync.", "%(count)d mailboxes queued for a sync.", count
        )
        self.message_user(request, text % {"count": count}, messages.SUCCESS)

    @admin.display(description=_("last error"))
    def last_error_short(self, mailbox: Mailbox) -> str:
        text = mailbox.last_error_message
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.action(description=_("Enable the selected mailboxes"))
    def enable(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> None:
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description=_("Disable the selected mailboxes"))
    def disable(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> None:
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Mailbox], *, enabled: bool) -> None:
        for mailbox in queryset:
            mailbox_set_enabled(mailbox=mailbox, enabled=enabled)
        count = len(queryset)
        text = (
            ngettext("%(count)d mailbox enabled.", "%(count)d mailboxes enabled.", count)
            if enabled
            else ngettext("%(count)d mailbox disabled.", "%(count)d mailboxes disabled.", count)
        )
        self.message_user(request, text % {"count": count}, messages.SUCCESS)
