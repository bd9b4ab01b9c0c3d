"""SMTP sessions over checked connections: submission with AUTH, in pieces. Plain Python, no Django."""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Buffer

from fetcher.mail.net import (
    CertificateInfo,
    MailError,
    Security,
    Step,
    Target,
    check_peer,
    gettext_noop,
    open_connection,
    peer_certificate,
    tls_context,
)
from fetcher.mail.session import HELO_NAME, _lost, _quietly, _Session, _text


class _SMTP(smtplib.SMTP):
    def __init__(self, target: Target, context: ssl.SSLContext | None) -> None:
        self._target = target
        self._implicit_tls = context
        self._in_data = False
        super().__init__(local_hostname=HELO_NAME, timeout=target.timeout)
        self._host = target.endpoint.host  # the name, for SNI and host-name checks in STARTTLS

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return open_connection(self._target, self._implicit_tls)

    def send(self, s: Buffer | str) -> None:
        """Send in pieces: the socket's time-out then means "no progress for that long".

        smtplib hands the whole message to one sendall, whose time-out (since Python 3.5) bounds
        the whole transfer, so a large attachment on a slow line always failed as a lost connection.
        """
        view = memoryview(s.encode(self.command_encoding) if isinstance(s, str) else s).cast("B")
        for start in range(0, len(view), _SEND_PIECE):
            super().send(bytes(view[start : start + _SEND_PIECE]))
        if self._in_data and self.sock is not None:
            # The answer to the final dot waits for every buffered byte to cross the line, and the
            # server's checks: MTAs allow far longer for it (Postfix: smtp_data_done_timeout).
            self.sock.settimeout(max(self.timeout, DATA_DONE_TIMEOUT))

    def data(self, msg: Buffer | str) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)
        finally:
            self._in_data = False
            if self.sock is not None:
                self.sock.settimeout(self.timeout)


_SEND_PIECE = 64 * 1024
DATA_DONE_TIMEOUT = 300.0  # seconds; within send_outgoing's time limit


def _smtp_auth_plain(client: _SMTP, login: str, password: str) -> None:
    """AUTH PLAIN with UTF-8 (smtplib's own encodes ASCII only, which fails a Turkish password)."""
    token = base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode("ascii")
    code, response = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, response)


class SmtpSession(_Session[_SMTP]):
    def _farewell(self, client: _SMTP, *, ended_well: bool) -> None:
        _quietly(client.quit)

    def _shut(self, client: _SMTP) -> None:
        client.close()

    def _connect(self, target: Target, *, verify: bool) -> _SMTP:
        security = target.endpoint.security
        client = _SMTP(target, tls_context(target, verify=verify) if security is Security.SSL else None)
        try:
            code, message = client.connect(target.endpoint.host, target.endpoint.port)
        except ssl.SSLError as exc:
            _quietly(client.close)
            raise self._tls_error(exc, target) from exc
        except (smtplib.SMTPException, OSError) as exc:
            _quietly(client.close)
            raise MailError(
                Step.GREETING,
                gettext_noop("The connection closed before the SMTP greeting."),
                permanent=False,
            ) from exc
        self.greeting = f"{code} {_text(message)}"
        if code != 220:
            _quietly(client.close)
            raise MailError(
                Step.GREETING,
                gettext_noop("The SMTP server did not accept the connection."),
                permanent=code >= 500,
                server_text=self.greeting,
            )
        try:
            client.ehlo_or_helo_if_needed()
        except (smtplib.SMTPException, OSError) as exc:
            _quietly(client.close)
            raise _lost(Step.GREETING, exc) from exc
        if security is Security.STARTTLS:
            self._starttls(client, target, verify=verify)
        if security is not Security.NONE and client.sock is not None:
            self.certificate = peer_certificate(client.sock)
            check_peer(client.sock, target)
        return client

    def _starttls(self, client: _SMTP, target: Target, *, verify: bool) -> None:
        if not client.has_extn("starttls"):
            _quietly(client.close)
            raise MailError(
                Step.STARTTLS, gettext_noop("The SMTP server does not offer STARTTLS."), permanent=True
            )
        try:
            code, message = client.starttls(context=tls_context(target, verify=verify))
        except ssl.SSLError as exc:
            _quietly(client.close)
            raise self._tls_error(exc, target) from exc
        if code != 220:
            _quietly(client.close)
            raise MailError(
                Step.STARTTLS,
                gettext_noop("STARTTLS was refused."),
                permanent=True,
                server_text=f"{code} {_text(message)}",
            )
        client.ehlo()

    def _login(self, client: _SMTP) -> None:
        if not client.has_extn("auth"):
            raise MailError(
                Step.AUTH,
                gettext_noop("The SMTP server offers no login (AUTH) on this connection."),
                permanent=True,
            )
        login, password = self.config.login, self.config.password.reveal()
        try:
            if "PLAIN" in client.esmtp_features.get("auth", "").upper().split():
                _smtp_auth_plain(client, login, password)
            else:
                client.login(login, password)
        except smtplib.SMTPAuthenticationError as exc:
            text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise MailError(
                Step.AUTH, gettext_noop("The server refused the login."), permanent=True, server_text=text
            ) from exc
        except smtplib.SMTPException as exc:
            raise MailError(
                Step.AUTH, gettext_noop("The login failed."), permanent=False, server_text=_text(exc)
            ) from exc
        except OSError as exc:
            raise _lost(Step.AUTH, exc) from exc

    def _fetch_certificate(self, target: Target) -> CertificateInfo | None:
        client = self._connect(target, verify=False)
        _quietly(client.close)
        return self.certificate

    def send(self, sender: str, recipients: list[str], raw: bytes, *, smtputf8: bool) -> dict[str, str]:
        """Deliver one message; returns the recipients the server refused (others got it).

        Raises MailError: `permanent` for a 5xx answer (the server's words kept), temporary for
        4xx answers, time-outs and dropped connections.
        """
        client = self._client()
        if smtputf8 and not client.has_extn("smtputf8"):
            raise MailError(
                Step.PROTOCOL,
                gettext_noop("An address needs SMTPUTF8, which this server does not offer."),
                permanent=True,
            )
        try:
            refused = client.sendmail(sender, recipients, raw, mail_options=["SMTPUTF8"] if smtputf8 else [])
        except smtplib.SMTPRecipientsRefused as exc:
            answers = {rcpt: (code, _text(text)) for rcpt, (code, text) in exc.recipients.items()}
            permanent = all(code >= 500 for code, _text_ in answers.values())
            detail = "; ".join(f"{rcpt}: {code} {text}" for rcpt, (code, text) in answers.items())
            raise MailError(
                Step.PROTOCOL,
                gettext_noop("Every recipient was refused."),
                permanent=permanent,
                server_text=detail,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            text = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise MailError(
                Step.PROTOCOL,
                gettext_noop("The server refused the message."),
                permanent=exc.smtp_code >= 500,
                server_text=text,
            ) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _lost(Step.PROTOCOL, exc) from exc
        return {rcpt: f"{code} {_text(text)}" for rcpt, (code, text) in refused.items()}

    def _client(self) -> _SMTP:
        if self.client is None:
            raise RuntimeError("use the session inside its `with` block")
        return self.client
