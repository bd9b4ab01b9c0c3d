from __future__ import annotations

from django.apps import AppConfig


class WebmailConfig(AppConfig):
    name = "webmail"
    verbose_name = "Postane web interface"
