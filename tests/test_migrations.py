from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    # Exits with SystemExit(1) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_user_model_is_our_own_from_the_first_migration() -> None:
    assert get_user_model()._meta.label == "accounts.User"
