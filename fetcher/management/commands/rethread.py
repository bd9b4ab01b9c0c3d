"""`manage.py rethread`: derive every conversation key again with the rules of fetcher.mail.threads."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from fetcher import conversations


class Command(BaseCommand):
    help = (
        "Group stored messages into conversations again (after a change of the rules), each owner's"
        " messages oldest first; only keys that change are written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--mailbox",
            help="only the owner of this mailbox (its id): a conversation spans all of an owner's mailboxes",
        )
        parser.add_argument("--batch", type=int, default=conversations.RETHREAD_BATCH)

    def handle(self, *args: Any, mailbox: str | None, batch: int, **options: Any) -> None:
        owners = conversations.owners_of(mailbox or None)
        changed = sum(conversations.rethread(owner_id=owner, batch=batch) for owner in owners)
        self.stdout.write(f"rethreaded {len(owners)} owners: {changed} messages changed conversation")
