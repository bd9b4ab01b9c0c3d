"""ImapSession.create marks a role folder with its SPECIAL-USE flag where the server can take one
(CREATE-SPECIAL-USE, RFC 6154) and creates it plainly elsewhere.

No server we can start has the extension (Dovecot 2.3 accepts the parameter and drops it, Courier
refuses it), so this unit test of one method stands in for imapclient with a recorder; the creation
itself runs against real Dovecot and Courier in tests/fetcher/sync/test_archive_folder.py and
test_imap_folders.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from fetcher.mail.imap import ImapSession
from fetcher.mail.net import Endpoint, Security
from fetcher.mail.session import Secret, ServerConfig


class Recorder:
    """The few imapclient calls create() makes, recorded as the commands they would send."""

    def __init__(self, capabilities: set[str]) -> None:
        self.capabilities = capabilities
        self.sent: list[str] = []
        self._imap = self

    def has_capability(self, name: str) -> bool:
        return name in self.capabilities

    def _normalise_folder(self, name: str) -> str:
        return f'"{name}"'

    def _simple_command(self, *words: str) -> tuple[str, list[bytes]]:
        self.sent.append(" ".join(words))
        return "OK", [b"done"]

    def _checkok(self, command: str, typ: str, data: Any) -> None:
        assert typ == "OK"

    def create_folder(self, name: str) -> None:
        self.sent.append(f"CREATE {self._normalise_folder(name)}")

    def subscribe_folder(self, name: str) -> None:
        self.sent.append(f"SUBSCRIBE {self._normalise_folder(name)}")


def session(capabilities: set[str]) -> tuple[ImapSession, Recorder]:
    imap = ImapSession(ServerConfig(Endpoint("localhost", 993, Security.SSL), "ayse", Secret("-")))
    recorder = Recorder(capabilities)
    imap.client = recorder  # type: ignore[assignment]
    return imap, recorder


@pytest.mark.parametrize(
    ("capabilities", "special_use", "sent"),
    [
        ({"CREATE-SPECIAL-USE"}, "\\Archive", 'CREATE "Archive" (USE (\\Archive))'),
        (set(), "\\Archive", 'CREATE "Archive"'),
        ({"CREATE-SPECIAL-USE"}, "", 'CREATE "Archive"'),
        ({"CREATE-SPECIAL-USE"}, "\\Archive) (X", 'CREATE "Archive"'),  # only the flags RFC 6154 names
    ],
)
def test_a_role_folder_is_created_with_its_special_use_only_where_the_server_takes_it(
    capabilities: set[str], special_use: str, sent: str
) -> None:
    imap, recorder = session(capabilities)

    imap.create("Archive", special_use=special_use)

    assert recorder.sent == [sent, 'SUBSCRIBE "Archive"']
