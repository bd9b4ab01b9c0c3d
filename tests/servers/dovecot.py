"""A real Dovecot (Debian's dovecot-pop3d and dovecot-imapd) on free local ports, from a generated config."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.servers.local import LocalMailServer, free_mail_ports, with_spare_users
from tests.servers.net import wait_for_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


@dataclass
class Dovecot(LocalMailServer):
    tls: bool = True

    def messages_on_server(self, user: str) -> int:
        return sum(1 for sub in ("new", "cur") for _ in (self.maildir(user) / sub).iterdir())

    def maildir(self, user: str) -> Path:
        return self.root / "home" / user / "Maildir"

    def deliver(self, user: str, raw: bytes, name: str) -> Path:
        """Drop a message into the user's INBOX as an MTA would (Maildir new/)."""
        new = self.maildir(user) / "new"
        path = new / f"{time.time_ns()}.{name}.postane-test"
        path.write_bytes(raw)
        os.chown(path, self.mail_uid, self.mail_gid)
        return path


def _service_users() -> tuple[str, str, pwd.struct_passwd]:
    if os.geteuid() == 0:
        # Debian's package creates these; mail is owned by the unprivileged dovecot user.
        return "dovecot", "dovenull", pwd.getpwnam("dovecot")
    me = pwd.getpwuid(os.geteuid())
    return me.pw_name, me.pw_name, me


SPARE_USERS = 300


_SPECIAL_USE_NAMESPACE = """namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
}"""
# What Courier and many cPanel hosts look like: every folder under "INBOX." and no SPECIAL-USE flags.
_COURIER_LIKE_NAMESPACE = """namespace inbox {
  inbox = yes
  separator = .
  prefix = INBOX.
}"""
# Debian's stock conf.d/15-mailboxes.conf: role folders flagged, none made until a client asks, and no
# Archive at all.
_STOCK_NAMESPACE = """namespace inbox {
  inbox = yes
  mailbox Drafts {
    special_use = \\Drafts
  }
  mailbox Junk {
    special_use = \\Junk
  }
  mailbox Trash {
    special_use = \\Trash
  }
  mailbox Sent {
    special_use = \\Sent
  }
  mailbox "Sent Messages" {
    special_use = \\Sent
  }
}"""


def start_dovecot(
    root: Path,
    ca: trustme.CA | None,
    users: dict[str, str],
    *,
    tls: bool = True,
    courier_like: bool = False,
    stock: bool = False,
) -> Dovecot:
    """Dovecot with POP3 (plain and implicit TLS) and IMAP (plain and implicit TLS) on free ports.

    With tls=False nothing offers TLS, so STARTTLS is missing: the connection test must say so.
    With courier_like=True the personal namespace is `INBOX.` with `.` as separator and no folder
    carries a SPECIAL-USE flag, as on Courier. With stock=True the folders are those of Debian's
    default configuration: none exists until a client creates it, and there is no Archive.
    """
    internal_user, login_user, mail_owner = _service_users()
    users, spare = with_spare_users(users, SPARE_USERS)
    # Dovecot's unprivileged processes must reach the passwd file and the homes: a world-traversable
    # root outside pytest's private (0700) temporary folders.
    root.chmod(0o755)
    ports = free_mail_ports()
    for folder in ("run", "state", "home"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "passwd").write_text(
        "".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in users.items())
    )
    for user in users:
        for sub in ("new", "cur", "tmp"):
            (root / "home" / user / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    _chown_tree(root / "home", mail_owner.pw_uid, mail_owner.pw_gid)
    ssl_lines = "ssl = no\n"
    if tls:
        assert ca is not None
        cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
        cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(root / "cert.pem"), append=True)
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        ssl_lines = (
            f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem\nssl_min_protocol = TLSv1.2\n"
        )
    config = f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = pop3 imap
listen = 127.0.0.1
default_internal_user = {internal_user}
default_internal_group = {internal_user}
default_login_user = {login_user}
first_valid_uid = {min(mail_owner.pw_uid, 100) if mail_owner.pw_uid else 0}
{ssl_lines}
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_owner.pw_uid} gid={mail_owner.pw_gid} home={root}/home/%u
}}
mail_location = {"mbox:~/mail:INBOX=~/inbox" if stock else "maildir:~/Maildir"}
{_namespace(courier_like=courier_like, stock=stock)}
pop3_uidl_format = %08Xu%08Xv
service imap-login {{
  inet_listener imap {{
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    port = {ports["imaps"] if tls else 0}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {ports["pop3"]}
  }}
  inet_listener pop3s {{
    port = {ports["pop3s"] if tls else 0}
    ssl = yes
  }}
}}
# Tests fail logins on purpose: no delay, and no growing penalty per address.
auth_failure_delay = 0
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
    conf = root / "dovecot.conf"
    conf.write_text(config)
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server = Dovecot(root, ports, users, process, mail_owner.pw_uid, mail_owner.pw_gid, spare, tls=tls)
    listening = [ports["pop3"], ports["imap"]] + ([ports["pop3s"], ports["imaps"]] if tls else [])
    for port in listening:
        if not wait_for_port(port, 20, process):
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            stderr = process.stderr.read().decode() if process.poll() is not None and process.stderr else ""
            server.stop()
            raise RuntimeError(f"Dovecot did not listen on {port}:\n{stderr}\n{log}")
    return server


def _namespace(*, courier_like: bool, stock: bool) -> str:
    if stock:
        return _STOCK_NAMESPACE
    return _COURIER_LIKE_NAMESPACE if courier_like else _SPECIAL_USE_NAMESPACE


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for folder, dirs, files in os.walk(path):
        os.chown(folder, uid, gid)
        for name in dirs + files:
            os.chown(Path(folder) / name, uid, gid)
