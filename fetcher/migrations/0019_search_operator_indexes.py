"""Indexes for searching by state, walked by date: unread, read and with attachments per mailbox (starred
has one), and the unread messages of a folder in date order (in:inbox is:unread).

Built and dropped concurrently (outside a transaction): a large message table keeps taking new
mail meanwhile.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0009_mailbox_folders_digest"),
        ("fetcher", "0018_lookups_without_statistics"),
    ]

    operations = [
        RemoveIndexConcurrently(
            model_name="message",
            name="message_unread",
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("seen", False)), fields=["folder", "-sort_date", "-id"], name="message_unread"
            ),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("seen", False)),
                fields=["mailbox", "-sort_date", "-id"],
                name="message_unread_newest",
            ),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("seen", True)), fields=["mailbox", "-sort_date", "-id"], name="message_read_newest"
            ),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("has_attachments", True)),
                fields=["mailbox", "-sort_date", "-id"],
                name="message_attachments",
            ),
        ),
    ]
