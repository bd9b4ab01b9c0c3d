"""`manage.py reindex`: derive every field of every stored message again from its raw bytes.

Parsing places each message among the mail stored at that moment, much of it still carrying
its old keys; so the conversations of the owners touched are derived again afterwards, oldest
message first (`rethread`), as if their mail had arrived in order.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fetcher import conversations, enqueue, upkeep
from fetcher.ingest import parsing
from fetcher.models import Message


class Command(BaseCommand):
    help = "Rebuild subject, addresses, bodies, attachments and the search vector from the raw messages."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", help="only this mailbox (its id)")
        parser.add_argument("--queue", action="store_true", help="hand the work to the workers instead")
        parser.add_argument("--batch", type=int, default=enqueue.PARSE_BATCH)

    def handle(self, *args: Any, mailbox: str | None, queue: bool, batch: int, **options: Any) -> None:
        messages = Message.objects.order_by("id")
        if mailbox:
            messages = messages.filter(mailbox_id=mailbox)
        ids = list(messages.values_list("id", flat=True))
        if queue:
            enqueue.parse_messages(ids)
            self.stdout.write(f"queued {len(ids)} messages for the workers; run rethread when they are done")
            return
        for start in range(0, len(ids), batch):
            parsing.parse_messages(ids[start : start + batch])
        owners = conversations.owners_of(mailbox or None)
        for owner in owners:
            conversations.rethread(owner_id=owner)
        upkeep.statistics_refresh(force=True)  # every derived column changed: plan on their new values
        self.stdout.write(
            f"reindexed {len(ids)} messages; conversations of {len(owners)} owners derived again"
        )
