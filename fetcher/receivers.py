"""The engine's record of a mailbox follows the mailbox: accounts announces, fetcher answers.

accounts may not import fetcher, so its services send signals (accounts.signals) and the
engine connects to them here (imported by FetcherConfig.ready). Each runs in the transaction
of the change.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Mailbox
from accounts.signals import mailbox_enabled_changed, mailbox_settings_saved
from fetcher import services


@receiver(post_save, sender=Mailbox, dispatch_uid="fetcher.mailbox_sync_create")
def _mailbox_created(sender: type[Mailbox], instance: Mailbox, created: bool, **kwargs: Any) -> None:
    if created:  # however it was made: a form, the admin, the command line, a test
        services.mailbox_sync_create(mailbox=instance)


@receiver(mailbox_settings_saved, sender=Mailbox, dispatch_uid="fetcher.mailbox_sync_restart")
def _settings_saved(sender: type[Mailbox], mailbox: Mailbox, **kwargs: Any) -> None:
    services.mailbox_sync_restart(mailbox=mailbox)


@receiver(mailbox_enabled_changed, sender=Mailbox, dispatch_uid="fetcher.mailbox_sync_follow_enabled")
def _enabled_changed(sender: type[Mailbox], mailbox: Mailbox, **kwargs: Any) -> None:
    services.mailbox_sync_follow_enabled(mailbox=mailbox)
