"""The connection test: log in for real and say which step failed. Plain Python, no Django."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fetcher.mail import providers
from fetcher.mail.imap import ImapSession
from fetcher.mail.net import CertificateInfo, MailError, Security, Step, gettext_noop
from fetcher.mail.pop3 import Pop3Session
from fetcher.mail.session import ServerConfig
from fetcher.mail.smtp import SmtpSession

_EXTRA_STEP = {"pop3": Step.UIDL, "imap": Step.FOLDERS, "smtp": None}


def expected_steps(kind: str, security: Security) -> list[Step]:
    steps = [Step.INPUT, Step.POLICY, Step.DNS, Step.CONNECT]
    if security is Security.SSL:
        steps += [Step.TLS, Step.GREETING]
    elif security is Security.STARTTLS:
        steps += [Step.GREETING, Step.STARTTLS, Step.TLS]
    else:
        steps += [Step.GREETING]
    steps.append(Step.AUTH)
    if extra := _EXTRA_STEP[kind]:
        steps.append(extra)
    return steps


@dataclass
class ProbeReport:
    kind: str  # pop3, imap or smtp
    ok: bool = False
    passed: list[Step] = field(default_factory=list)
    failed_step: Step | None = None
    message: str = ""  # English; `parts` are its sentences for a page to translate (MailError.parts)
    parts: list[tuple[str, dict[str, str | int]]] = field(default_factory=list)
    server_text: str = ""
    greeting: str = ""
    certificate: CertificateInfo | None = None
    # What the harmless read found: message_count and size (POP3), uidl (False when missing), folders (IMAP).
    facts: dict[str, Any] = field(default_factory=dict)
    # A known provider's reason for refusing a login, and the next step (providers.login_hints).
    hints: list[tuple[str, dict[str, str | int]]] = field(default_factory=list)

    def fail(self, error: MailError, steps: list[Step]) -> None:
        failed = error.step if error.step in steps else Step.PROTOCOL
        self.failed_step = failed
        self.passed = steps[: steps.index(failed)] if failed in steps else []
        self.message = error.message
        self.parts = list(error.parts)
        self.server_text = error.server_text
        self.certificate = error.certificate or self.certificate

    def as_json(self) -> dict[str, Any]:
        certificate = None
        if self.certificate is not None:
            cert = self.certificate
            certificate = {
                "subject": cert.subject,
                "issuer": cert.issuer,
                "not_before": cert.not_before.isoformat(),
                "not_after": cert.not_after.isoformat(),
                "sha256": cert.sha256,
                "names": list(cert.names),
            }
        return {
            "kind": self.kind,
            "ok": self.ok,
            "passed": [str(step) for step in self.passed],
            "failed_step": str(self.failed_step) if self.failed_step else None,
            "message": self.message,
            "message_parts": [[text, values] for text, values in self.parts],
            "server_text": self.server_text,
            "greeting": self.greeting,
            "certificate": certificate,
            "facts": self.facts,
            "hints": [[text, values] for text, values in self.hints],
        }


_SESSIONS: dict[str, type[Pop3Session] | type[ImapSession] | type[SmtpSession]] = {
    "pop3": Pop3Session,
    "imap": ImapSession,
    "smtp": SmtpSession,
}


def probe(kind: str, config: ServerConfig) -> ProbeReport:
    """Connect, log in and do one harmless read; never raises MailError."""
    report = ProbeReport(kind)
    steps = expected_steps(kind, config.endpoint.security)
    session = _SESSIONS[kind](config)
    try:
        with session:
            report.greeting = session.greeting
            report.certificate = session.certificate
            _read_something(kind, session, report)
    except MailError as error:
        report.greeting = session.greeting
        report.certificate = report.certificate or session.certificate
        if error.step is Step.UIDL:
            # Not fatal: without UIDL, messages are recognised by a fingerprint instead.
            report.facts["uidl"] = False
            report.ok, report.passed = True, steps
            return report
        report.fail(error, steps)
        if report.failed_step is Step.AUTH:
            report.hints = providers.login_hints(kind, config.endpoint.host)
        return report
    except (OSError, EOFError, UnicodeError) as exc:
        # A last resort: the sessions translate what they expect; a connection may still die anywhere.
        report.fail(
            MailError(
                Step.PROTOCOL,
                gettext_noop("The connection failed (%(error)s)."),
                permanent=False,
                values={"error": exc.__class__.__name__},
            ),
            steps,
        )
        return report
    report.ok, report.passed = True, steps
    return report


def _read_something(kind: str, session: Pop3Session | ImapSession | SmtpSession, report: ProbeReport) -> None:
    if isinstance(session, Pop3Session):
        report.facts["message_count"], report.facts["size"] = session.stat()
        session.uidl()
        report.facts["uidl"] = True
    elif isinstance(session, ImapSession):
        report.facts["folders"] = [folder.name for folder in session.folders()]
