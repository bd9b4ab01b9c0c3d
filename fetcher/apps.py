from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FetcherConfig(AppConfig):
    name = "fetcher"
    verbose_name = _("Mail engine")
