"""A scripted POP3 server without UIDL: no real server we can start lacks it, and the fallback must work."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from tests.servers.net import free_port


@dataclass
class NoUidlPop3:
    messages: list[bytes]
    password: str = "secret"
    port: int = field(default_factory=free_port)
    deleted: set[int] = field(default_factory=set)
    _listener: socket.socket | None = None

    def start(self) -> NoUidlPop3:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener:
            self._listener.close()

    def _serve(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):
            while True:
                conn, _address = self._listener.accept()
                threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        pending: set[int] = set()
        with conn, conn.makefile("rb") as reader:
            conn.sendall(b"+OK scripted POP3 ready\r\n")
            for line in reader:
                command, *args = line.decode().strip().split(" ")
                reply = self._reply(command.upper(), args, pending)
                conn.sendall(reply)
                if command.upper() == "QUIT":
                    self.deleted |= pending
                    return

    def _reply(self, command: str, args: list[str], pending: set[int]) -> bytes:  # noqa: PLR0911 -- a reply table
        live = [n for n in range(1, len(self.messages) + 1) if n not in self.deleted]
        if command in {"USER", "NOOP"}:
            return b"+OK\r\n"
        if command == "PASS":
            return b"+OK logged in\r\n" if args == [self.password] else b"-ERR [AUTH] wrong\r\n"
        if command == "STAT":
            return f"+OK {len(live)} {sum(len(self.messages[n - 1]) for n in live)}\r\n".encode()
        if command == "CAPA":
            return b"+OK\r\nUSER\r\nTOP\r\n.\r\n"
        if command in {"RETR", "TOP"}:
            raw = self.messages[int(args[0]) - 1]
            body = raw if command == "RETR" else raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            stuffed = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in body.split(b"\r\n"))
            return b"+OK\r\n" + stuffed.rstrip(b"\r\n") + b"\r\n.\r\n"
        if command == "DELE":
            pending.add(int(args[0]))
            return b"+OK\r\n"
        if command == "QUIT":
            return b"+OK bye\r\n"
        return b"-ERR unknown command\r\n"  # UIDL among them
