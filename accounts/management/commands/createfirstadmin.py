"""Create an administrator when the site has none yet, and say how to log in."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import User


class Command(BaseCommand):
    help = "Create a first administrator with a random password if no administrator exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--password-file",
            type=Path,
            help="Also write the new password to this file (mode 0600), so it survives a lost terminal.",
        )

    def handle(self, *args: Any, username: str, password_file: Path | None, **options: Any) -> None:
        if User.objects.filter(is_superuser=True, is_active=True).exists():
            self.stdout.write("An administrator already exists; log in with that account.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if password_file is not None:
            password_file.touch(mode=0o600)
            password_file.write_text(f"username: {username}\npassword: {password}\n")
        self.stdout.write(
            self.style.SUCCESS(f"Created the administrator {username!r} with the password {password!r}.")
        )
        self.stdout.write("Change it after your first login (user menu, Change password).")
