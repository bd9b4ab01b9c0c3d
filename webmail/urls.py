from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webmail.views import account, actions, compose, discovery, health, lists, mailboxes, message, outbox

urlpatterns = [
    path("", lists.mail_view, name="home"),
    path("mail/", lists.mail_view, name="mail"),
    path("mail/v/<slug:view>/", lists.mail_view, name="mail_view"),
    path("mail/folder/<uuid:folder_id>/", lists.folder_view, name="folder"),
    path("mail/search/", lists.search_view, name="search"),
    path("mail/m/<uuid:message_id>/", message.message_view, name="message"),
    path("mail/m/<uuid:message_id>/body/", message.message_body, name="message_body"),
    path("mail/m/<uuid:message_id>/source/", message.message_source, name="message_source"),
    path("mail/m/<uuid:message_id>/part/<int:part>/", message.message_part, name="message_part"),
    path(
        "mail/m/<uuid:message_id>/inline/<int:part>/<str:token>/",
        message.message_inline_part,
        name="message_inline_part",
    ),
    path("mail/m/<uuid:message_id>/parts.zip", message.message_parts_zip, name="message_parts_zip"),
    path("mail/m/<uuid:message_id>/images/", message.message_images, name="message_images"),
    path("mail/actions/", actions.messages_action, name="messages_action"),
    path("mail/actions/undo/", actions.messages_undo, name="messages_undo"),
    path("mail/trash/empty/", actions.trash_empty, name="trash_empty"),
    path("mail/settings/conversations/", actions.conversations_setting, name="conversations_setting"),
    path("mail/settings/reading-pane/", actions.reading_pane_setting, name="reading_pane_setting"),
    path("mail/unread/", lists.unread_count, name="unread_count"),
    path("mail/compose/", compose.compose_view, name="compose"),
    path("mail/compose/<uuid:outgoing_id>/", compose.compose_view, name="compose_edit"),
    path("mail/compose/autosave/", compose.compose_autosave, name="compose_autosave"),
    path(
        "mail/compose/<uuid:outgoing_id>/autosave/",
        compose.compose_autosave,
        name="compose_autosave_edit",
    ),
    path("mail/compose/discard/", compose.compose_discard, name="compose_discard"),
    path("mail/compose/<uuid:outgoing_id>/discard/", compose.compose_discard, name="compose_discard_edit"),
    path("mail/drafts/discard/", compose.drafts_discard, name="drafts_discard"),
    path("mail/addresses/", compose.address_suggestions, name="address_suggestions"),
    path("mail/outbox/", outbox.outbox_view, name="outbox"),
    path("mail/outbox/<uuid:outgoing_id>/undo/", outbox.outgoing_undo, name="outgoing_undo"),
    path("mail/outbox/<uuid:outgoing_id>/reopen/", outbox.outgoing_reopen, name="outgoing_reopen"),
    path("healthz", health.healthz, name="healthz"),
    path("mailboxes/", mailboxes.mailbox_list, name="mailbox_list"),
    path("mailboxes/new/", mailboxes.mailbox_add, name="mailbox_add"),
    path("mailboxes/add/", discovery.mailbox_new, name="mailbox_new"),
    path("mailboxes/add/<uuid:discovery_id>/", discovery.discovery_view, name="discovery"),
    path("mailboxes/add/<uuid:discovery_id>/save/", discovery.discovery_save_view, name="discovery_save"),
    path("mailboxes/<uuid:mailbox_id>/", mailboxes.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<uuid:mailbox_id>/remove/", mailboxes.mailbox_remove, name="mailbox_remove"),
    path("mailboxes/<uuid:mailbox_id>/sync/", mailboxes.mailbox_sync, name="mailbox_sync"),
    path("mailboxes/tests/<uuid:test_id>/", mailboxes.connection_test_status, name="connection_test_status"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", account.signup, name="signup"),
    path("signup/confirm/<uidb64>/<token>/", account.signup_confirm, name="signup_confirm"),
    path("account/password/", account.PasswordChange.as_view(), name="password_change"),
    path("account/preferences/", account.preferences, name="preferences"),
    path("account/reset/", account.PasswordReset.as_view(), name="password_reset"),
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
