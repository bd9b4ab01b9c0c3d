from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    # Exits with SystemExit(1) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_user_model_is_our_own_from_the_first_migration() -> None:
    assert get_user_model()._meta.label == "accounts.User"


# The engine's fields of a mailbox, on accounts_mailbox before fetcher 0021 and on fetcher_mailboxsync after.
ENGINE_COLUMNS = (
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
BEFORE_SYNC_TABLE = [("accounts", "0009_mailbox_folders_digest"), ("fetcher", "0020_search_field_tags")]
WITH_SYNC_TABLE = [
    ("accounts", "0010_mailbox_engine_state_moved_to_fetcher"),
    ("fetcher", "0022_mailbox_sync_values"),
]
AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)

# A mailbox in every state the engine leaves one in, each value different from its default.
ENGINE_STATES: dict[str, dict[str, Any]] = {
    "new": {},
    "synced": {
        "last_success_at": AT,
        "next_sync_at": AT + timedelta(minutes=5),
        "folders_listed_at": AT - timedelta(minutes=1),
        "folders_digest": "d" * 64,
    },
    "syncing": {
        "state": "syncing",
        "last_success_at": AT - timedelta(days=1),
        "next_sync_at": AT,
        "sync_lease_until": AT + timedelta(seconds=20),
        "sync_lease_token": "t" * 32,
        "sync_done": 200,
        "sync_total": 3000,
    },
    "paused": {
        "state": "error",
        "last_error_at": AT,
        "last_error_kind": "auth",
        "last_error_message": "Kimlik doğrulama başarısız: the server refused the login.",
        "next_sync_at": AT + timedelta(hours=6),
        "consecutive_failures": 3,
        "paused": True,
    },
    "folder note": {
        "last_success_at": AT,
        "last_error_at": AT,
        "last_error_kind": "folders",
        "last_error_message": "The folder list could not be read.",
        "folders_listed_at": AT,
    },
    "disabled": {"state": "disabled", "enabled": False},
}


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _engine_values(table: str, key: str) -> dict[str, dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, {', '.join(ENGINE_COLUMNS)} FROM {table}")  # noqa: S608 -- constants
        return {str(row[0]): dict(zip(ENGINE_COLUMNS, row[1:], strict=True)) for row in cursor.fetchall()}


def _mailboxes_in_every_state(apps: Any) -> dict[str, dict[str, Any]]:
    """Mailboxes as the code before fetcher 0021 left them, one with a stored message."""
    owner = apps.get_model("accounts", "User").objects.create(username="alice")
    mailbox_model = apps.get_model("accounts", "Mailbox")
    for name, fields in ENGINE_STATES.items():
        mailbox_model.objects.create(
            owner=owner,
            name=name,
            email_address=f"{name.replace(' ', '-')}@example.com",
            incoming_host="mail.example.com",
            incoming_port=995,
            incoming_login=name,
            incoming_password_encrypted="token",
            smtp_host="mail.example.com",
            **fields,
        )
    synced = mailbox_model.objects.get(name="synced")
    inbox = apps.get_model("fetcher", "Folder").objects.create(mailbox=synced, name="INBOX", role="inbox")
    raw = b"Subject: Merhaba\r\n\r\nGovde\r\n"
    apps.get_model("fetcher", "Message").objects.create(
        mailbox=synced,
        folder=inbox,
        raw=raw,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        sort_date=AT,
    )
    return _engine_values("accounts_mailbox", "id")


@pytest.mark.django_db(transaction=True)
def test_every_mailboxs_engine_state_moves_to_its_mailbox_sync_and_back() -> None:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        before = _mailboxes_in_every_state(_migrate(BEFORE_SYNC_TABLE))
        assert len(before) == len(ENGINE_STATES)
        assert len({tuple(values.items()) for values in before.values()}) == len(ENGINE_STATES)

        _migrate(WITH_SYNC_TABLE)

        assert _engine_values("fetcher_mailboxsync", "mailbox_id") == before
        with connection.cursor() as cursor:
            columns = {
                column.name
                for column in connection.introspection.get_table_description(cursor, "accounts_mailbox")
            }
            cursor.execute("SELECT count(*) FROM fetcher_message")
            assert cursor.fetchone() == (1,)
        assert not columns & set(ENGINE_COLUMNS)

        _migrate(BEFORE_SYNC_TABLE)  # and back: the values return to the mailbox rows

        assert _engine_values("accounts_mailbox", "id") == before
    finally:
        _migrate(latest)
