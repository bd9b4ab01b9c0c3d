"""`manage.py recount`: count every folder's messages and unread messages again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fetcher import upkeep


class Command(BaseCommand):
    help = (
        "Recount the messages and unread messages of every folder (kept by triggers; this repairs"
        " counts changed behind the triggers' back, e.g. by a restore of part of the database)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", help="only this mailbox (its id)")

    def handle(self, *args: Any, mailbox: str | None, **options: Any) -> None:
        wrong = upkeep.folder_counts_repair(mailbox_id=mailbox)
        self.stdout.write(f"{wrong} folder counts were wrong and are corrected")
