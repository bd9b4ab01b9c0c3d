"""A real HTTPS server for the discovery tests: the standard library's HTTP server over TLS with a
certificate from the tests' CA, serving files from a folder given to it (the shared ISPDB, read in
place) and any documents, redirects or errors a test sets at a path."""

from __future__ import annotations

import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trustme


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    location: str = ""


@dataclass
class HttpsServer:
    server: ThreadingHTTPServer
    names: tuple[str, ...]
    answers: dict[str, Answer] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)  # a path prefix served from a folder
    ispdb: dict[str, Path] = field(default_factory=dict)  # /v1.1/<domain>: the ISPDB file naming it
    requests: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str, name: str = "localhost") -> str:
        return f"https://{name}:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_https(ca: trustme.CA, names: tuple[str, ...] = ("localhost", "127.0.0.1")) -> HttpsServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    holder: dict[str, HttpsServer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served = holder["server"]
            served.requests.append(self.path)
            path = urlsplit(self.path).path
            answer = (
                served.answers.get(path)
                or _from_ispdb(served.ispdb, path)
                or _from_folder(served.folders, path)
            )
            self.send_response(answer.status)
            if answer.location:
                self.send_header("Location", answer.location)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    holder["server"] = HttpsServer(server, names)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder["server"]


def _from_folder(folders: dict[str, Path], path: str) -> Answer:
    for prefix, folder in folders.items():
        if path.startswith(prefix):
            file = (folder / path.removeprefix(prefix)).resolve()
            if file.is_relative_to(folder.resolve()) and file.is_file():
                return Answer(body=file.read_bytes())
    return Answer(status=404, body=b"not found")


def ispdb_index(folder: Path) -> dict[str, Path]:
    """Mozilla's ISPDB as its public server answers it: each domain a file lists, to that file."""
    index: dict[str, Path] = {}
    for file in sorted(folder.glob("*.xml")):
        for domain in re.findall(rb"<domain>([^<]+)</domain>", file.read_bytes()):
            index.setdefault(domain.decode().strip().lower(), file)
    return index


def _from_ispdb(index: dict[str, Path], path: str) -> Answer | None:
    if not path.startswith("/v1.1/"):
        return None
    file = index.get(path.removeprefix("/v1.1/").lower())
    return Answer(body=file.read_bytes()) if file else Answer(status=404, body=b"not found")
