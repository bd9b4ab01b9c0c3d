"""`manage.py mailbox add|discover|list|test|sync|enable|disable|remove`: mailboxes for scripts and
administrators.

Passwords come from standard input or an environment variable, never from argv (which
other users of the machine can read in the process list).
"""

from __future__ import annotations

import json
import os
import sys
import time
from argparse import ArgumentParser, Namespace
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import DEFAULT_PORTS, Mailbox, Protocol, Retention, Security, User
from accounts.selectors import mailbox_by_reference
from accounts.services import Passwords, mailbox_delete, mailbox_save, mailbox_set_enabled
from fetcher.config import discovery_sources
from fetcher.mail.discover import Discovery, discover
from fetcher.mail.net import normalise_fingerprint
from fetcher.mail.probe import ProbeReport
from fetcher.mail.session import Secret
from fetcher.models import MailboxSync
from fetcher.selectors import mailbox_storage
from fetcher.services import mailbox_probe, mailbox_sync_now

SECURITIES = [choice.value for choice in Security]


class Command(BaseCommand):
    help = "Add, list, test, enable, disable and remove mailboxes."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True, parser_class=_subparser_class(parser))
        add = commands.add_parser("add", help="add a mailbox for a user (tested first unless --disabled)")
        add.add_argument("user", help="the owner's user name")
        add.add_argument("--address", required=True)
        add.add_argument("--name", help="defaults to the address")
        add.add_argument(
            "--discover", action="store_true", help="find the servers from the address (see discover)"
        )
        add.add_argument("--protocol", choices=[p.value for p in Protocol], help="pop3 (the default) or imap")
        add.add_argument("--host", help="the incoming server (or --discover)")
        add.add_argument("--port", type=int)
        add.add_argument("--security", choices=SECURITIES, default="ssl")
        add.add_argument("--login", help="defaults to what --discover found")
        add.add_argument("--fingerprint", default="", help="SHA-256 of a certificate to trust")
        _password_options(add, "password", "the incoming password")
        add.add_argument("--smtp-host", help="the outgoing server (or --discover)")
        add.add_argument("--smtp-port", type=int)
        add.add_argument("--smtp-security", choices=SECURITIES, default="starttls")
        add.add_argument("--smtp-login", help="defaults to --login, with the same password")
        add.add_argument("--smtp-fingerprint", default="")
        _password_options(add, "smtp-password", "the SMTP password (with --smtp-login)")
        add.add_argument("--retention", choices=[r.value for r in Retention], default="keep")
        add.add_argument("--retention-days", type=int)
        add.add_argument("--poll-minutes", type=int, default=5)
        add.add_argument("--disabled", action="store_true", help="save without testing, and do not poll")
        discover = commands.add_parser("discover", help="find an address's servers and say from where")
        discover.add_argument("address")
        discover.add_argument("--json", action="store_true", help="machine-readable output")
        listing = commands.add_parser("list", help="list mailboxes")
        listing.add_argument("--json", action="store_true", help="machine-readable output")
        listing.add_argument("--user", help="only this user's mailboxes")
        sync = commands.add_parser("sync", help="queue a sync for the workers")
        sync.add_argument("mailbox", help="its address or its id")
        sync.add_argument("--wait", action="store_true", help="block until the sync has ended")
        sync.add_argument("--timeout", type=float, default=600, help="seconds --wait waits at most")
        for name, text in [
            ("test", "log in to the incoming and the outgoing server and report"),
            ("enable", "poll this mailbox again"),
            ("disable", "stop polling this mailbox"),
            ("remove", "delete the mailbox and everything stored from it"),
        ]:
            sub = commands.add_parser(name, help=text)
            sub.add_argument("mailbox", help="its address or its id")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        handler = getattr(self, f"_{action}")
        handler(Namespace(**options))

    # --- add -------------------------------------------------------------------------------

    def _add(self, opts: Namespace) -> None:
        owner = User.objects.filter(username=opts.user).first()
        if owner is None:
            raise CommandError(f"no user {opts.user!r}")
        if opts.discover:
            self._discovered(opts)
        elif not (opts.host and opts.smtp_host and opts.login):
            raise CommandError("give --host, --login and --smtp-host, or --discover")
        opts.protocol = opts.protocol or "pop3"
        passwords = self._passwords(opts)
        values = self._values(opts)
        mailbox = Mailbox(owner=owner, **{k: v for k, v in values.items() if k != "imap_folders"})
        if not opts.disabled:
            self._require_passing_test(mailbox, passwords)
        try:
            saved = mailbox_save(owner=owner, mailbox=None, values=values, passwords=passwords)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"added {saved.email_address} ({saved.id}) for {owner.username}")

    def _discovered(self, opts: Namespace) -> None:
        """--discover: the servers the chain found fill what the options left out (IMAP unless --protocol)."""
        found = discover(opts.address, discovery_sources())
        self._print_discovery(found)
        incoming = found.settings.incoming_for(opts.protocol) if found.settings else None
        if found.settings is None or incoming is None:
            raise CommandError(f"nothing found for {opts.address}: give --host and --smtp-host")
        outgoing = found.settings.outgoing_server()
        opts.protocol, opts.host, opts.port = (
            incoming.protocol,
            opts.host or incoming.host,
            opts.port or incoming.port,
        )
        opts.security = incoming.security.value
        opts.login = opts.login or incoming.login
        if outgoing is not None and not opts.smtp_host:
            opts.smtp_host, opts.smtp_port, opts.smtp_security = (
                outgoing.host,
                outgoing.port,
                outgoing.security.value,
            )

    def _discover(self, opts: Namespace) -> None:
        found = discover(opts.address, discovery_sources())
        if opts.json:
            self.stdout.write(json.dumps(_discovery_json(found), indent=2))
        else:
            self._print_discovery(found)
        if found.settings is None:
            raise CommandError(f"nothing found for {opts.address}")

    def _print_discovery(self, found: Discovery) -> None:
        for tried in found.tried:
            mark = "found" if tried.outcome.startswith("found") else "no"
            self.stdout.write(f"  {mark:5} {tried.step}: {tried.asked} ({tried.outcome})")
        if found.settings is None:
            return
        self.stdout.write(f"from {found.source}: {found.source_detail}")
        for server in (*found.settings.incoming, *found.settings.outgoing):
            oauth = " (OAuth only)" if server.oauth_only else ""
            where = f"{server.host}:{server.port} {server.security}"
            self.stdout.write(f"  {server.protocol} {where} login {server.login}{oauth}")
        if found.provider is not None:
            self.stdout.write(
                f"  {found.provider.name}: sign-in {found.provider.sign_in}; {found.provider.help}"
            )

    def _values(self, opts: Namespace) -> dict[str, Any]:
        same_login = opts.smtp_login is None
        for value, what in [(opts.login, "--login"), (opts.smtp_login or "", "--smtp-login")]:
            if any(ch in value for ch in "\r\n\0"):
                raise CommandError(f"{what} may not contain a line break or NUL")
        return {
            "name": opts.name or opts.address,
            "email_address": opts.address,
            "protocol": opts.protocol,
            "incoming_host": opts.host,
            "incoming_port": opts.port or DEFAULT_PORTS[opts.protocol, opts.security],
            "incoming_security": opts.security,
            "incoming_login": opts.login,
            "incoming_fingerprint": _fingerprint(opts.fingerprint),
            "smtp_host": opts.smtp_host,
            "smtp_port": opts.smtp_port or DEFAULT_PORTS["smtp", opts.smtp_security],
            "smtp_security": opts.smtp_security,
            "smtp_same_login": same_login,
            "smtp_login": "" if same_login else opts.smtp_login,
            "smtp_fingerprint": _fingerprint(opts.smtp_fingerprint),
            "pop3_retention": opts.retention,
            "pop3_retention_days": opts.retention_days,
            "poll_interval_minutes": opts.poll_minutes,
            "enabled": not opts.disabled,
            "imap_folders": [],
        }

    def _passwords(self, opts: Namespace) -> Passwords:
        incoming = _read_password(
            opts.password_stdin, opts.password_env, "--password-stdin or --password-env"
        )
        smtp = ""
        if opts.smtp_login is not None:
            smtp = _read_password(
                opts.smtp_password_stdin,
                opts.smtp_password_env,
                "--smtp-password-stdin or --smtp-password-env",
            )
        for value in (incoming, smtp):
            if any(ch in value for ch in "\r\n\0"):
                raise CommandError("a password may not contain a line break or NUL")
        return Passwords(incoming, smtp)

    def _require_passing_test(self, mailbox: Mailbox, passwords: Passwords) -> None:
        smtp = Secret(passwords.smtp) if passwords.smtp else None
        reports = mailbox_probe(mailbox=mailbox, incoming=Secret(passwords.incoming), smtp=smtp)
        self._print_reports(reports)
        if not all(report.ok for report in reports):
            raise CommandError(
                "the connection test failed; nothing was saved (use --disabled to save untested)"
            )

    # --- list -------------------------------------------------------------------------------

    def _list(self, opts: Namespace) -> None:
        mailboxes = Mailbox.objects.select_related("owner", "sync").order_by(
            "owner__username", "email_address"
        )
        if opts.user:
            mailboxes = mailboxes.filter(owner__username=opts.user)
        storage = mailbox_storage([mailbox.id for mailbox in mailboxes])
        rows = [_row(mailbox, storage) for mailbox in mailboxes]
        if opts.json:
            self.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        for row in rows:
            error = f"  last error: {row['last_error']}" if row["last_error"] else ""
            columns = [
                row["id"],
                f"{row['owner']:<12}",
                f"{row['address']:<32}",
                f"{row['protocol']:<4}",
                f"{row['state']:<8}",
                f"{row['messages']} messages",
            ]
            self.stdout.write(" ".join(columns) + error)

    # --- test, enable, disable, remove ------------------------------------------------------------

    def _test(self, opts: Namespace) -> None:
        mailbox = _mailbox(opts.mailbox)
        try:
            reports = mailbox_probe(mailbox=mailbox)
        except Exception as exc:  # EncryptionKeyError and kin: one line, no traceback
            raise CommandError(str(exc)) from None
        self._print_reports(reports)
        if not all(report.ok for report in reports):
            raise CommandError("the connection test failed")

    def _sync(self, opts: Namespace) -> None:
        mailbox = _mailbox(opts.mailbox)
        if not mailbox.enabled:
            raise CommandError(f"{mailbox.email_address} is disabled; enable it first")
        queued_at = timezone.now()
        mailbox_sync_now(mailbox=mailbox)
        if not opts.wait:
            self.stdout.write(f"queued a sync of {mailbox.email_address}")
            return
        finished = _wait_for_sync(mailbox, queued_at, opts.timeout)
        if finished.last_error_at and finished.last_error_at >= queued_at:
            raise CommandError(f"sync failed at {finished.last_error_kind}: {finished.last_error_message}")
        stored = mailbox_storage([mailbox.id]).get(mailbox.id, (0, 0))[0]
        self.stdout.write(f"synced {mailbox.email_address}: {stored} messages stored")

    def _enable(self, opts: Namespace) -> None:
        mailbox = mailbox_set_enabled(mailbox=_mailbox(opts.mailbox), enabled=True)
        self.stdout.write(f"enabled {mailbox.email_address}")

    def _disable(self, opts: Namespace) -> None:
        mailbox = mailbox_set_enabled(mailbox=_mailbox(opts.mailbox), enabled=False)
        self.stdout.write(f"disabled {mailbox.email_address}")

    def _remove(self, opts: Namespace) -> None:
        mailbox = _mailbox(opts.mailbox)
        mailbox_delete(mailbox=mailbox)
        self.stdout.write(f"removed {mailbox.email_address}")

    def _print_reports(self, reports: list[ProbeReport]) -> None:
        for report in reports:
            line = (
                f"{report.kind}: ok"
                if report.ok
                else f"{report.kind}: FAILED at {report.failed_step}: {report.message}"
            )
            if report.server_text:
                line += f" (server: {report.server_text})"
            self.stdout.write(line)
            if report.certificate and not report.ok:
                cert = report.certificate
                self.stdout.write(f"  certificate: {cert.subject}, issued by {cert.issuer}")
                self.stdout.write(
                    f"  valid {cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d}, SHA-256 {cert.sha256}"
                )


def _subparser_class(parser: CommandParser) -> type[ArgumentParser]:
    # Sub-commands raise CommandError like Django's own parser, instead of printing usage and exiting 2.
    class SubParser(CommandParser):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("called_from_command_line", parser.called_from_command_line)
            super().__init__(**kwargs)

    return SubParser


def _password_options(parser: ArgumentParser, name: str, what: str) -> None:
    parser.add_argument(f"--{name}-stdin", action="store_true", help=f"read {what} from standard input")
    parser.add_argument(
        f"--{name}-env", metavar="VARIABLE", help=f"read {what} from this environment variable"
    )


def _read_password(from_stdin: bool, env_name: str | None, options: str) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    elif env_name:
        password = os.environ.get(env_name, "")
    else:
        raise CommandError(f"give the password with {options} (never on the command line)")
    if not password:
        raise CommandError("the password is empty")
    return password


def _fingerprint(text: str) -> str:
    if not text:
        return ""
    try:
        return normalise_fingerprint(text)
    except ValueError as exc:
        raise CommandError(f"fingerprint: {exc}") from None


def _wait_for_sync(mailbox: Mailbox, since: datetime, timeout: float) -> MailboxSync:
    """Until a sync that started after `since` has ended, with success or an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = MailboxSync.objects.get(mailbox_id=mailbox.id)
        ended = max(filter(None, [current.last_success_at, current.last_error_at]), default=None)
        if current.sync_lease_until is None and ended is not None and ended >= since:
            return current
        time.sleep(0.5)
    raise CommandError(
        f"no sync of {mailbox.email_address} ended within {timeout:.0f} s (is a worker running?)"
    )


def _mailbox(reference: str) -> Mailbox:
    try:
        return mailbox_by_reference(reference)
    except Mailbox.DoesNotExist as exc:
        raise CommandError(str(exc) or f"no mailbox {reference!r}") from None


def _row(mailbox: Mailbox, storage: dict[Any, tuple[int, int]]) -> dict[str, Any]:
    engine = mailbox.sync
    return {
        "id": str(mailbox.id),
        "owner": mailbox.owner.username,
        "name": mailbox.name,
        "address": mailbox.email_address,
        "protocol": mailbox.protocol,
        "incoming": f"{mailbox.incoming_host}:{mailbox.incoming_port} ({mailbox.incoming_security})",
        "smtp": f"{mailbox.smtp_host}:{mailbox.smtp_port} ({mailbox.smtp_security})",
        "enabled": mailbox.enabled,
        "state": engine.state,
        "last_success_at": engine.last_success_at.isoformat() if engine.last_success_at else None,
        "last_error": engine.last_error_message or None,
        "last_error_kind": engine.last_error_kind or None,
        "messages": storage.get(mailbox.id, (0, 0))[0],
        "bytes": storage.get(mailbox.id, (0, 0))[1],
    }


def _discovery_json(found: Discovery) -> dict[str, Any]:
    settings = found.settings
    servers = [*settings.incoming, *settings.outgoing] if settings else []
    return {
        "address": found.address,
        "source": found.source,
        "source_detail": found.source_detail,
        "provider": found.provider.id if found.provider else None,
        "servers": [
            {
                "protocol": s.protocol,
                "host": s.host,
                "port": s.port,
                "security": str(s.security),
                "login": s.login,
            }
            for s in servers
        ],
        "tried": [{"step": t.step, "asked": t.asked, "outcome": t.outcome} for t in found.tried],
    }
