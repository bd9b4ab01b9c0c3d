from __future__ import annotations

from django.apps import AppConfig


class WebmailConfig(AppConfig):
    name = "webmail"
    verbose_name = "Postane web interface"

    def ready(self) -> None:
        from webmail import sessions  # noqa: F401, PLC0415 -- connects the login-time receiver
