"""Every mailbox's engine state, copied from accounts_mailbox into its new MailboxSync row.

One INSERT ... SELECT, so a database with many mailboxes moves in a single statement; going back
copies the values the other way once accounts' 0010 has given the columns back.
"""

from django.db import migrations

COLUMNS = (
    "state",
    "last_success_at",
    "last_error_at",
    "last_error_kind",
    "last_error_message",
    "next_sync_at",
    "sync_lease_until",
    "sync_lease_token",
    "consecutive_failures",
    "paused",
    "sync_done",
    "sync_total",
    "folders_listed_at",
    "folders_digest",
)

FORWARD = (
    f"INSERT INTO fetcher_mailboxsync (mailbox_id, {', '.join(COLUMNS)})"
    f" SELECT id, {', '.join(COLUMNS)} FROM accounts_mailbox"
)

BACKWARD = (
    f"UPDATE accounts_mailbox mailbox SET {', '.join(f'{column} = sync.{column}' for column in COLUMNS)}"
    " FROM fetcher_mailboxsync sync WHERE sync.mailbox_id = mailbox.id"
)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_mailbox_folders_digest"),
        ("fetcher", "0021_mailbox_sync"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD, elidable=False)]
