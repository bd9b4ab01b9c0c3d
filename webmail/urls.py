from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webmail import account_views, compose_views, mail_views, mailbox_views, views

urlpatterns = [
    path("", mail_views.mail_view, name="home"),
    path("mail/", mail_views.mail_view, name="mail"),
    path("mail/v/<slug:view>/", mail_views.mail_view, name="mail_view"),
    path("mail/folder/<uuid:folder_id>/", mail_views.folder_view, name="folder"),
    path("mail/search/", mail_views.search_view, name="search"),
    path("mail/m/<uuid:message_id>/", mail_views.message_view, name="message"),
    path("mail/m/<uuid:message_id>/body/", mail_views.message_body, name="message_body"),
    path("mail/m/<uuid:message_id>/source/", mail_views.message_source, name="message_source"),
    path("mail/m/<uuid:message_id>/part/<int:part>/", mail_views.message_part, name="message_part"),
    path("mail/m/<uuid:message_id>/parts.zip", mail_views.message_parts_zip, name="message_parts_zip"),
    path("mail/m/<uuid:message_id>/images/", mail_views.message_images, name="message_images"),
    path("mail/actions/", mail_views.messages_action, name="messages_action"),
    path("mail/trash/empty/", mail_views.trash_empty, name="trash_empty"),
    path("mail/settings/conversations/", mail_views.conversations_setting, name="conversations_setting"),
    path("mail/unread/", mail_views.unread_count, name="unread_count"),
    path("mail/compose/", compose_views.compose_view, name="compose"),
    path("mail/compose/<uuid:outgoing_id>/", compose_views.compose_view, name="compose_edit"),
    path("mail/compose/autosave/", compose_views.compose_autosave, name="compose_autosave"),
    path(
        "mail/compose/<uuid:outgoing_id>/autosave/",
        compose_views.compose_autosave,
        name="compose_autosave_edit",
    ),
    path("mail/addresses/", compose_views.address_suggestions, name="address_suggestions"),
    path("mail/outbox/", compose_views.outbox_view, name="outbox"),
    path("mail/outbox/<uuid:outgoing_id>/undo/", compose_views.outgoing_undo, name="outgoing_undo"),
    path("mail/outbox/<uuid:outgoing_id>/reopen/", compose_views.outgoing_reopen, name="outgoing_reopen"),
    path("healthz", views.healthz, name="healthz"),
    path("mailboxes/", mailbox_views.mailbox_list, name="mailbox_list"),
    path("mailboxes/new/", mailbox_views.mailbox_add, name="mailbox_add"),
    path("mailboxes/<uuid:mailbox_id>/", mailbox_views.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<uuid:mailbox_id>/remove/", mailbox_views.mailbox_remove, name="mailbox_remove"),
    path("mailboxes/<uuid:mailbox_id>/sync/", mailbox_views.mailbox_sync, name="mailbox_sync"),
    path(
        "mailboxes/tests/<uuid:test_id>/", mailbox_views.connection_test_status, name="connection_test_status"
    ),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", account_views.signup, name="signup"),
    path("signup/confirm/<uidb64>/<token>/", account_views.signup_confirm, name="signup_confirm"),
    path("account/password/", account_views.PasswordChange.as_view(), name="password_change"),
    path("account/preferences/", account_views.preferences, name="preferences"),
    path("account/reset/", account_views.PasswordReset.as_view(), name="password_reset"),
    path("account/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "account/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "account/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
