"""A real Courier IMAP 5.0 and Courier POP3 (Debian's packages) on free local ports, users in its authlib.

Debian's courier-imap and courier-pop conflict with the Dovecot packages, so `.ci/courier` unpacks them into a
prefix of their own (`/opt/postane-courier`). Their binaries look for /etc/courier (authdaemonrc, userdb.dat)
and /run/courier (the authdaemond socket) by compiled-in paths: every server runs in a private mount namespace
(`unshare -m`) where the test's own folders are bound over those two: several servers and the host never meet.
Logins go through Courier's own authdaemond with the authuserdb module, as on a real host.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.servers.local import LocalMailServer, free_mail_ports, with_spare_users
from tests.servers.net import wait_for_port

PREFIX = Path(os.environ.get("POSTANE_COURIER_PREFIX", "/opt/postane-courier"))
INSTALL_HINT = "run .ci/courier (as root) to unpack Debian's Courier packages into /opt/postane-courier"

# Debian's default capabilities (/etc/courier/imapd).
IMAP_CAPABILITY = (
    "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"
)
SPARE_USERS = 100


@dataclass
class Courier(LocalMailServer):
    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        """A folder's Maildir: INBOX is the Maildir itself, `INBOX.Sent` its `.Sent` subfolder."""
        base = self.root / "home" / user / "Maildir"
        if folder == "INBOX":
            return base
        if not folder.startswith("INBOX."):
            raise ValueError(f"Courier's folders live under INBOX.: {folder!r}")
        return base / ("." + folder.removeprefix("INBOX."))

    def make_folder(self, user: str, folder: str) -> Path:
        path = self.maildir(user, folder)
        for sub in ("new", "cur", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        (path / "maildirfolder").touch()
        self._own(path)
        return path

    def deliver(
        self, user: str, raw: bytes, name: str, folder: str = "INBOX", *, as_is: bool = False
    ) -> Path:
        """Drop a message into a folder as an MTA would (Maildir new/); the folder is made if needed.

        An MTA stores Maildir files with LF line ends, and Courier adds the CR when it serves them;
        `as_is=True` writes the bytes unchanged (a CRLF file, as some migration tools leave them).
        """
        maildir = self.make_folder(user, folder) if folder != "INBOX" else self.maildir(user)
        path = maildir / "new" / f"{time.time_ns()}.{name}.postane-test"
        path.write_bytes(raw if as_is else raw.replace(b"\r\n", b"\n"))
        os.chown(path, self.mail_uid, self.mail_gid)
        return path

    def messages_on_server(self, user: str, folder: str = "INBOX") -> int:
        return sum(1 for sub in ("new", "cur") for _ in (self.maildir(user, folder) / sub).iterdir())

    def log(self) -> str:
        path = self.root / "courier.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _own(self, path: Path) -> None:
        for folder, dirs, files in os.walk(path):
            os.chown(folder, self.mail_uid, self.mail_gid)
            for name in dirs + files:
                os.chown(Path(folder) / name, self.mail_uid, self.mail_gid)
        os.chown(path.parent, self.mail_uid, self.mail_gid)


def _mail_owner() -> pwd.struct_passwd:
    # Courier refuses to run a mailbox as root: Debian's unprivileged `mail` account owns the test mail.
    return pwd.getpwnam("mail") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())


def start_courier(
    root: Path, ca: trustme.CA, users: dict[str, str], *, imap_capability: str = IMAP_CAPABILITY
) -> Courier:
    """Courier with IMAP and POP3, each plain (with STARTTLS) and with implicit TLS.

    `imap_capability` is what IMAP announces (Courier's IMAP_CAPABILITY), e.g. without UIDPLUS.
    """
    if not (PREFIX / "usr/bin/imapd").exists():
        raise RuntimeError(f"Courier is not unpacked at {PREFIX}: {INSTALL_HINT}")
    if os.geteuid() != 0:
        raise RuntimeError("Courier's test servers need root (a private mount namespace for /etc/courier)")
    owner = _mail_owner()
    users, spare = with_spare_users(users, SPARE_USERS)
    root.chmod(0o755)
    ports = free_mail_ports()
    for folder in ("etc", "run/authdaemon", "home"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    server = Courier(root, ports, users, None, owner.pw_uid, owner.pw_gid, spare)
    for user in users:
        for sub in ("new", "cur", "tmp"):
            (server.maildir(user) / sub).mkdir(parents=True, exist_ok=True)
        server._own(server.maildir(user))
    _write_userdb(root, users, owner)
    (root / "etc" / "authdaemonrc").write_text(
        'authmodulelist="authuserdb"\ndaemons=3\nauthdaemonvar=/run/courier/authdaemon\n'
        'DEBUG_LOGIN=0\nDEFAULTOPTIONS=""\nLOGGEROPTS=""\n'
    )
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(root / "etc" / "server.pem"))
    script = root / "start.sh"
    script.write_text(_start_script(root, ports, imap_capability))
    for mount_point in (Path("/etc/courier"), Path("/run/courier")):
        mount_point.mkdir(parents=True, exist_ok=True)  # empty on the host; /run is a tmpfs
    with (root / "courier.log").open("wb") as log:
        server.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", str(script)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    for port in ports.values():
        if not wait_for_port(port, 20, server.process):
            server.stop()
            raise RuntimeError(f"Courier did not listen on {port}:\n{server.log()}")
    return server


def _password_hash(password: str) -> str:
    """authlib's {SHA256} scheme: base64 of the raw digest."""
    return "{SHA256}" + base64.b64encode(hashlib.sha256(password.encode()).digest()).decode("ascii")


def _write_userdb(root: Path, users: dict[str, str], owner: pwd.struct_passwd) -> None:
    """userdb.dat and userdbshadow.dat, as Courier's makeuserdb writes them (through its makedatprog)."""
    makedat = PREFIX / "usr/lib/courier/courier-authlib/makedatprog"
    accounts = "".join(
        f"{user}\tuid={owner.pw_uid}|gid={owner.pw_gid}|home={root}/home/{user}"
        f"|mail={root}/home/{user}/Maildir|_=\n"
        for user in users
    )
    secrets = "".join(f"{user}\tsystempw={_password_hash(password)}\n" for user, password in users.items())
    env = {"LD_LIBRARY_PATH": _library_path()}
    for name, text in (("userdb", accounts), ("userdbshadow", secrets)):
        target = root / "etc" / f"{name}.dat"
        subprocess.run(
            [str(makedat), "-", str(root / "etc" / f"{name}.tmp"), str(target)],
            input=(text + ".\n").encode(),
            env=env,
            check=True,
        )
        target.chmod(0o600)


def _library_path() -> str:
    return ":".join(
        str(PREFIX / sub)
        for sub in ("usr/lib", "usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib/courier-authlib")
    )


def _start_script(root: Path, ports: dict[str, int], capability: str) -> str:
    """The shell that runs inside the mount namespace: authdaemond and one couriertcpd per port."""
    prefix = shlex.quote(str(PREFIX))
    tcpd = (
        f"{prefix}/usr/sbin/couriertcpd -address=127.0.0.1 -nodnslookup -noidentlookup"
        " -maxprocs=60 -maxperip=60"
    )
    tls = f"{prefix}/usr/bin/couriertls -server -tcpd"
    imap = f"{prefix}/usr/lib/courier/courier/imaplogin {prefix}/usr/bin/imapd Maildir"
    logins = f"{prefix}/usr/lib/courier/courier"
    pop3 = f"{logins}/courierpop3login {logins}/courierpop3d Maildir"
    quoted = shlex.quote(str(root))
    return f"""set -eu
mount --bind {quoted}/etc /etc/courier
mount --bind {quoted}/run /run/courier
export LD_LIBRARY_PATH={shlex.quote(_library_path())}
# Courier's IDLE and folder watching use gamin; without its server each SELECT waits 1.2 s for it.
export GAMIN_DEBUG_SERVER={prefix}/usr/libexec/gam_server
export TLS_CERTFILE=/etc/courier/server.pem TLS_VERIFYPEER=NONE
export COURIERTLS={prefix}/usr/bin/couriertls
export IMAP_CAPABILITY="{capability}" IMAP_CAPABILITY_TLS="{capability} AUTH=PLAIN"
export IMAP_KEYWORDS=1 IMAP_ACL=1 IMAP_USELOCKS=1 IMAP_TRASHFOLDERNAME=Trash IMAP_EMPTYTRASH= IMAP_UMASK=022
export IMAP_IDLE_TIMEOUT=60 IMAP_MOVE_EXPUNGE_TO_TRASH=0 IMAP_CHECK_ALL_FOLDERS=0 IMAP_MAILBOX_SANITY_CHECK=1
export POP3AUTH="" POP3AUTH_TLS="LOGIN PLAIN" MIME_UNICODE_MESSAGE_TYPE=message/global
pids=""
{prefix}/usr/lib/courier/courier-authlib/authdaemond & pids="$pids $!"
IMAP_STARTTLS=YES {tcpd} {ports["imap"]} {imap} & pids="$pids $!"
IMAP_TLS=1 IMAP_STARTTLS=NO {tcpd} {ports["imaps"]} {tls} {imap} & pids="$pids $!"
POP3_STARTTLS=YES {tcpd} {ports["pop3"]} {pop3} & pids="$pids $!"
POP3_TLS=1 POP3_STARTTLS=NO {tcpd} {ports["pop3s"]} {tls} {pop3} & pids="$pids $!"
trap 'kill $pids 2>/dev/null; wait; exit 0' TERM INT
wait
"""
