"""Re-encrypt every stored mailbox password under the newest key of WEBMAIL_ENCRYPTION_KEYS.

Rotation: put the new key first in WEBMAIL_ENCRYPTION_KEYS (keep the old one after it),
restart, run this command, then remove the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import crypto
from accounts.models import ConnectionTest, Mailbox

_FIELDS = {
    Mailbox: ("incoming_password_encrypted", "smtp_password_encrypted"),
    ConnectionTest: ("incoming_password_encrypted", "smtp_password_encrypted"),
}


class Command(BaseCommand):
    help = "Re-encrypt all stored mailbox passwords under the first key of WEBMAIL_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        try:
            with transaction.atomic():
                for model, fields in _FIELDS.items():
                    for row in model.objects.select_for_update().only("pk", *fields):  # type: ignore[attr-defined]
                        for field in fields:
                            if token := getattr(row, field):
                                setattr(row, field, crypto.reencrypt(token))
                                count += 1
                        row.save(update_fields=list(fields))
        except crypto.EncryptionKeyError as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        self.stdout.write(f"re-encrypted {count} secrets under the newest key")
