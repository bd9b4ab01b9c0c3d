"""Indexes a planner cannot misuse without statistics.

The single-column indexes of a message's folder and mailbox go: the (folder | mailbox, sort_date,
id) indexes serve every lookup by them, and a planner that guessed a folder small read the
whole folder through them to sort it. Conversations are looked up by (thread_key, folder,
sort_date, id). Built and dropped concurrently (outside a transaction): a large message table
keeps taking new mail meanwhile.
"""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0009_mailbox_folders_digest"),
        ("fetcher", "0017_folder_counts"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(fields=["thread_key", "folder", "sort_date", "id"], name="message_thread_folder"),
        ),
        RemoveIndexConcurrently(model_name="message", name="message_thread"),
        migrations.AlterField(
            model_name="message",
            name="folder",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="messages",
                to="fetcher.folder",
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="mailbox",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="messages",
                to="accounts.mailbox",
            ),
        ),
    ]
