from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FetcherConfig(AppConfig):
    name = "fetcher"
    verbose_name = _("Mail engine")

    def ready(self) -> None:
        from fetcher import receivers  # noqa: F401, PLC0415 -- connects the receivers of accounts' signals
