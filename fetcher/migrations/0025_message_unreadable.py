"""An index of the messages stage two could not read (parse_state "failed"), per mailbox by date: the
pages count them for the sidebar's notice, and is:unreadable lists them.

Built and dropped concurrently (outside a transaction): a large message table keeps taking new
mail meanwhile.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("fetcher", "0024_forwarded_original")]

    operations = [
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("parse_state", "failed")),
                fields=["mailbox", "-sort_date", "-id"],
                name="message_unreadable",
            ),
        ),
    ]
