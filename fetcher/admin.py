"""Administrators' screens for mailboxes: settings, health, storage and sync now; never a password.

It lives in the engine, which builds on accounts: it shows what the engine keeps about a mailbox
and acts through the engine's services (accounts may not import fetcher).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_field
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat, linebreaksbr
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import PostaneUserAdmin
from accounts.models import CONNECTION_FIELDS, Mailbox, User
from accounts.services import mailbox_set_enabled
from fetcher.models import MailboxState, MailboxSync
from fetcher.services import mailbox_sync_now, mailbox_sync_pause


def _engine_field(name: str) -> Callable[[admin.options.BaseModelAdmin[Mailbox], Mailbox], str]:
    """A read-only line of the mailbox's MailboxSync, shown as the admin shows a mailbox's own field."""
    field = next(field for field in MailboxSync._meta.concrete_fields if field.name == name)

    @admin.display(description=field.verbose_name, ordering=f"sync__{name}")
    def show(model_admin: admin.options.BaseModelAdmin[Mailbox], mailbox: Mailbox) -> str:
        engine = getattr(mailbox, "sync", None) or MailboxSync()  # a mailbox being added: the defaults
        return linebreaksbr(
            display_for_field(getattr(engine, name), field, model_admin.get_empty_value_display())
        )

    return show


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state__exact"  # the address it had while the state was the mailbox's own field

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(MailboxState.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> QuerySet[Mailbox]:
        return queryset.filter(sync__state=self.value()) if self.value() else queryset


class MailboxAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    # The engine's row holds the pause; administrators lift (or set) it on the mailbox's page.
    paused = MailboxSync._meta.get_field("paused").formfield()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        engine = getattr(self.instance, "sync", None)
        self.initial.setdefault("paused", engine.paused if engine else False)


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = MailboxAdminForm
    list_display = (
        "email_address",
        "name",
        "owner",
        "protocol",
        "enabled",
        "state",
        "last_synced",
        "last_error_short",
        "message_count",
        "storage_used",
    )
    list_filter = ("protocol", "enabled", StateFilter)
    search_fields = ("email_address", "name", "owner__username", "incoming_host")
    list_select_related = ("owner", "sync")
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

    # The health lines come from the mailbox's MailboxSync.
    state = _engine_field("state")
    last_success_at = _engine_field("last_success_at")
    last_error_at = _engine_field("last_error_at")
    last_error_kind = _engine_field("last_error_kind")
    last_error_message = _engine_field("last_error_message")
    next_sync_at = _engine_field("next_sync_at")
    consecutive_failures = _engine_field("consecutive_failures")

    @admin.display(description=_("last successful sync"), ordering="sync__last_success_at")
    def last_synced(self, mailbox: Mailbox) -> datetime | None:
        # The moment itself, not its text: the list formats it and keeps it on one line, as a date field's.
        return mailbox.sync.last_success_at

    def get_readonly_fields(self, request: HttpRequest, obj: Mailbox | None = None) -> tuple[str, ...]:
        # The stored password goes only where it was typed for: where a mailbox connects changes
        # only in its owner's form, which asks for the password again (issue #10, point 7).
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, *CONNECTION_FIELDS) if obj is not None else fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Mailbox]:
        queryset: QuerySet[Mailbox] = super().get_queryset(request)
        return queryset.annotate(stored=Count("messages"), stored_bytes=Sum("messages__size"))

    def save_model(self, request: HttpRequest, obj: Mailbox, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "paused" in form.changed_data:
            mailbox_sync_pause(mailbox=obj, paused=form.cleaned_data["paused"])

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
        text = mailbox.sync.last_error_message
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


class MailboxInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Mailbox
    fields = ("name", "email_address", "protocol", "enabled", "state", "last_success_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    state = _engine_field("state")
    last_success_at = _engine_field("last_success_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Mailbox]:
        return super().get_queryset(request).select_related("sync")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# accounts' user screen, with each mailbox's health beside it: accounts cannot read the engine's rows.
admin.site.unregister(User)


@admin.register(User)
class UserWithMailboxesAdmin(PostaneUserAdmin):
    inlines = (MailboxInline,)
