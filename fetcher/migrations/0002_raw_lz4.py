"""Compress raw messages with lz4 instead of pglz: several times cheaper per row, nearly as small.

Stage one of ingest is bounded by how fast PostgreSQL stores raw bytes; pglz was most of it.
"""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("fetcher", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE fetcher_message ALTER COLUMN raw SET COMPRESSION lz4",
            reverse_sql="ALTER TABLE fetcher_message ALTER COLUMN raw SET COMPRESSION pglz",
        ),
    ]
