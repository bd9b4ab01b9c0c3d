"""The administrators' screens: every user and every mailbox, never a password."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import User


@admin.register(User)
class PostaneUserAdmin(UserAdmin):  # type: ignore[type-arg]
    """fetcher.admin puts a subclass in its place, which lists each user's mailboxes with their health."""

    list_display = ("username", "email", "is_active", "is_staff", "last_login", "mailbox_count")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("mailboxes")

    @admin.display(description=_("mailboxes"))
    def mailbox_count(self, user: User) -> int:
        return len(user.mailboxes.all())
