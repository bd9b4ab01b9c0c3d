#!/usr/bin/env python3
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys

from django.core.management import execute_from_command_line

# Commands that only read the code (models, templates) need no secrets or services: in a bare
# shell (a fresh clone, a pre-commit hook) they run with development placeholders. Every other
# command keeps the strict check of webmail/env.py.
CODE_ONLY_COMMANDS = {"makemigrations", "makemessages", "compilemessages"}
PLACEHOLDERS = {
    "DEBUG": "true",
    "DATABASE_URL": "postgresql://localhost/postane",
    "REDIS_URL": "redis://localhost:6379/0",
}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
    if sys.argv[1:2] and sys.argv[1] in CODE_ONLY_COMMANDS and "SECRET_KEY" not in os.environ:
        for name, value in PLACEHOLDERS.items():
            os.environ.setdefault(name, value)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
