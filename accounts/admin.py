"""The administrators' screens: every user and every mailbox, never a password."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import Mailbox, User


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
