"""The planner is told that conversation keys are nearly all distinct, whatever ANALYZE last saw.

A large first sync stores every message (stage one) before parsing it (stage two), and the
statistics refreshed in between (fetcher.upkeep, or autovacuum) see one key only: '' for every
row. A lookup by a key that is not a constant (a conversation's size for each key of a chunk, the
newer messages of each conversation on a page) is then estimated to match the whole table, and
PostgreSQL read all of it once per key: stage two fell from 1,214 to 42-80 messages a second,
and each message it parsed made the next one slower.

`n_distinct = -0.5` (half as many keys as messages: two messages a conversation on average)
replaces only ANALYZE's guess of the number of distinct keys; the most common values it records
still count, so '' is still known as common while it is. The next ANALYZE applies it: it runs here,
on this one column.
"""

from django.db import migrations

FORWARD = [
    "ALTER TABLE fetcher_message ALTER COLUMN thread_key SET (n_distinct = -0.5)",
    "ANALYZE fetcher_message (thread_key)",
]
BACKWARD = [
    "ALTER TABLE fetcher_message ALTER COLUMN thread_key RESET (n_distinct)",
    "ANALYZE fetcher_message (thread_key)",
]


class Migration(migrations.Migration):
    dependencies = [("fetcher", "0022_mailbox_sync_values")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD, elidable=False)]
