from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webmail import account_views, mailbox_views, views

urlpatterns = [
    path("", views.home, name="home"),
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
    path("account/password/", account_views.PasswordChange.as_view(), name="password_change"),
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
