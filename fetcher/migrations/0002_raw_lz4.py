"""Compress raw messages with lz4 instead of pglz where the server has it: several times cheaper per row.

Stage one of ingest is bounded by how fast PostgreSQL stores raw bytes, and pglz was most of
that. A server built without lz4 (the embedded one of `./postane run`, for one) keeps pglz.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, migrations, transaction


def use_lz4(apps: Any, schema_editor: Any) -> None:
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("ALTER TABLE fetcher_message ALTER COLUMN raw SET COMPRESSION lz4")
    except DatabaseError:
        pass  # no lz4 in this server: pglz stays, which is only slower


def use_pglz(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute("ALTER TABLE fetcher_message ALTER COLUMN raw SET COMPRESSION pglz")


class Migration(migrations.Migration):
    dependencies = [("fetcher", "0001_initial")]

    operations = [migrations.RunPython(use_lz4, use_pglz)]
