"""The people of the tests, defined once: alice owns the mail a test is about, bob is another user who
must never see it, charlie administers the site.

Each is a fixture (tests/conftest.py) giving a `Persona`: the user, and on first use a mailbox of theirs
and a signed-in test client. Nothing is made before a test asks for it, so a test of the empty screen
meets no mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.test import Client

    from accounts.models import Mailbox, User

# Every persona's web password (each login and password-change test types it).
PASSWORD = "correct horse battery staple"


@dataclass
class Persona:
    user: User

    @property
    def name(self) -> str:
        return str(self.user.username)

    @cached_property
    def mailbox(self) -> Mailbox:
        """Their POP3 mailbox `name@example.com` on localhost, for tests that store mail directly
        (no server is reached; a test that syncs makes its own mailbox on a Dovecot account)."""
        from tests.factories import account_mailbox  # noqa: PLC0415 -- needs Django set up

        return account_mailbox((self.name, "unused"), 995, owner=self.user, name=f"{self.name.title()} İş")

    @cached_property
    def client(self) -> Client:
        """A test client signed in as them."""
        from django.test import Client  # noqa: PLC0415 -- needs Django set up

        client = Client()
        client.force_login(self.user)
        return client


def make_persona(name: str, *, administrator: bool = False) -> Persona:
    from accounts.models import User  # noqa: PLC0415 -- needs Django set up

    user = User.objects.create_user(
        name, f"{name}@example.com", PASSWORD, is_staff=administrator, is_superuser=administrator
    )
    return Persona(user)
