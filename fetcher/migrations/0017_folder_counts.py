"""Message and unread counts per folder, kept by triggers in the transaction that changes the messages.

Inserts and deletes are counted once per statement (transition tables: one count written for a
batch of a thousand stored messages); an update is counted per row, and only when it changes
`seen` or the folder (the trigger's WHEN is checked without calling the function, so parsing,
which rewrites every other column, costs nothing extra). A delete only lowers counts that exist:
when a folder goes, its count row may go first. The counts of existing folders are computed once
here; `manage.py recount` computes them again at any time.
"""

import django.db.models.deletion
from django.db import migrations, models

TRIGGERS = """
CREATE FUNCTION fetcher_folder_counts_add(folder bigint, added bigint, added_unread bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO fetcher_foldercount AS count (folder_id, messages, unread) VALUES (folder, added, added_unread)
    ON CONFLICT (folder_id) DO UPDATE
    SET messages = count.messages + EXCLUDED.messages, unread = count.unread + EXCLUDED.unread
$$;

CREATE FUNCTION fetcher_folder_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fetcher_folder_counts_add(folder_id, count(*), count(*) FILTER (WHERE NOT seen))
    FROM new_messages GROUP BY folder_id ORDER BY folder_id;
    RETURN NULL;
END $$;

CREATE FUNCTION fetcher_folder_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fetcher_foldercount count
    SET messages = count.messages - gone.total, unread = count.unread - gone.unread
    FROM (SELECT folder_id, count(*) AS total, count(*) FILTER (WHERE NOT seen) AS unread
          FROM old_messages GROUP BY folder_id) gone
    WHERE count.folder_id = gone.folder_id;
    RETURN NULL;
END $$;

CREATE FUNCTION fetcher_folder_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.folder_id = NEW.folder_id THEN
        UPDATE fetcher_foldercount SET unread = unread + CASE WHEN NEW.seen THEN -1 ELSE 1 END
        WHERE folder_id = NEW.folder_id;
    ELSE
        UPDATE fetcher_foldercount
        SET messages = messages - 1, unread = unread - (NOT OLD.seen)::int
        WHERE folder_id = OLD.folder_id;
        PERFORM fetcher_folder_counts_add(NEW.folder_id, 1, (NOT NEW.seen)::int);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER fetcher_message_counts_insert AFTER INSERT ON fetcher_message
    REFERENCING NEW TABLE AS new_messages FOR EACH STATEMENT EXECUTE FUNCTION fetcher_folder_counts_insert();
CREATE TRIGGER fetcher_message_counts_delete AFTER DELETE ON fetcher_message
    REFERENCING OLD TABLE AS old_messages FOR EACH STATEMENT EXECUTE FUNCTION fetcher_folder_counts_delete();
CREATE TRIGGER fetcher_message_counts_update AFTER UPDATE OF seen, folder_id ON fetcher_message
    FOR EACH ROW WHEN (OLD.seen IS DISTINCT FROM NEW.seen OR OLD.folder_id IS DISTINCT FROM NEW.folder_id)
    EXECUTE FUNCTION fetcher_folder_counts_update();

INSERT INTO fetcher_foldercount (folder_id, messages, unread)
SELECT folder_id, count(*), count(*) FILTER (WHERE NOT seen) FROM fetcher_message GROUP BY folder_id;
"""

DROP_TRIGGERS = """
DROP TRIGGER fetcher_message_counts_insert ON fetcher_message;
DROP TRIGGER fetcher_message_counts_delete ON fetcher_message;
DROP TRIGGER fetcher_message_counts_update ON fetcher_message;
DROP FUNCTION fetcher_folder_counts_insert();
DROP FUNCTION fetcher_folder_counts_delete();
DROP FUNCTION fetcher_folder_counts_update();
DROP FUNCTION fetcher_folder_counts_add(bigint, bigint, bigint);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("fetcher", "0016_folder_roles_by_name_and_pending_sent_copies"),
    ]

    operations = [
        migrations.CreateModel(
            name="FolderCount",
            fields=[
                (
                    "folder",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="count",
                        serialize=False,
                        to="fetcher.folder",
                    ),
                ),
                ("messages", models.BigIntegerField(default=0)),
                ("unread", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunSQL(TRIGGERS, DROP_TRIGGERS),
    ]
