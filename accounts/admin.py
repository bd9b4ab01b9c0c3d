"""The administrators' screens: every user and every mailbox, never a password."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Mailbox, User
from accounts.services import mailbox_set_enabled


class MailboxInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Mailbox
    fields = ("name", "email_address", "protocol", "enabled", "state", "last_success_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class PostaneUserAdmin(UserAdmin):  # type: ignore[type-arg]
    inlines = (MailboxInline,)
    list_display = ("username", "email", "is_active", "is_staff", "last_login", "mailbox_count")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("mailboxes")

    @admin.display(description=_("mailboxes"))
    def mailbox_count(self, user: User) -> int:
        return len(user.mailboxes.all())


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
    )
    list_filter = ("protocol", "enabled", "state")
    search_fields = ("email_address", "name", "owner__username", "incoming_host")
    list_select_related = ("owner",)
    actions = ("enable", "disable")
    readonly_fields = (
        "id",
        "state",
        "last_success_at",
        "last_error_at",
        "last_error_kind",
        "last_error_message",
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
                    "last_success_at",
                    "last_error_at",
                    "last_error_kind",
                    "last_error_message",
                ]
            },
        ),
        (None, {"fields": ["signature", "created_at", "updated_at"]}),
    ]

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
