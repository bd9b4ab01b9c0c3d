"""A TCP proxy in front of a real server that can cut or stall the connection on cue."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from tests.servers.net import free_port


@dataclass
class FaultyProxy:
    target_port: int
    port: int = field(default_factory=free_port)
    cut_after: int | None = None  # bytes from the server after which both sides are closed
    stall_after: int | None = None  # bytes from the server after which nothing more is forwarded
    bytes_per_second: int | None = None  # forward at most this fast in either direction (a slow line)
    cut_on: bytes | None = None  # a client command containing this closes both sides (as Courier does)
    _listener: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> FaultyProxy:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._listener:
            self._listener.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _address = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._spawn(self._pipe, client, server, False)
            self._spawn(self._pipe, server, client, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while not self._stopped.is_set():
                data = source.recv(max(self.bytes_per_second // 10, 1) if self.bytes_per_second else 65536)
                if not data:
                    break
                if not from_server and self.cut_on is not None and self.cut_on in data:
                    line_start = data.rfind(b"\n", 0, data.index(self.cut_on)) + 1
                    sink.sendall(data[:line_start])  # the commands before it are answered
                    self._stopped.wait(0.5)
                    break
                if from_server and self.stall_after is not None and sent + len(data) > self.stall_after:
                    self._stopped.wait()  # hold the connection open and silent
                    break
                if from_server and self.cut_after is not None and sent + len(data) > self.cut_after:
                    sink.sendall(data[: max(self.cut_after - sent, 0)])
                    break
                if self.bytes_per_second:  # reads are a tenth of a second's worth at most
                    self._stopped.wait(len(data) / self.bytes_per_second)
                sink.sendall(data)
                sent += len(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
