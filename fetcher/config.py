"""From a stored mailbox to the plain config the protocol sessions take (the Django side).

Decryption happens here, in the process about to log in, and the result is wrapped in a
`Secret` at once.
"""

from __future__ import annotations

from django.conf import settings

from accounts import crypto
from accounts.models import Mailbox
from fetcher.mailnet import Endpoint, NetworkPolicy, Security
from fetcher.protocols import Secret, ServerConfig


def network_policy() -> NetworkPolicy:
    ports = settings.WEBMAIL_ALLOWED_MAIL_PORTS
    return NetworkPolicy(
        allowed_networks=tuple(settings.WEBMAIL_ALLOWED_MAIL_NETWORKS),
        allowed_hosts=frozenset(settings.WEBMAIL_ALLOWED_MAIL_HOSTS),
        allowed_ports=None if ports is None else frozenset(ports),
        extra_ca_file=settings.WEBMAIL_EXTRA_CA_FILE,
        timeout=float(settings.WEBMAIL_MAIL_TIMEOUT),
    )


def incoming_config(mailbox: Mailbox) -> ServerConfig:
    return ServerConfig(
        endpoint=Endpoint(
            mailbox.incoming_host,
            mailbox.incoming_port,
            Security(mailbox.incoming_security),
            mailbox.incoming_fingerprint,
        ),
        login=mailbox.incoming_login,
        password=Secret(crypto.decrypt(mailbox.incoming_password_encrypted)),
        policy=network_policy(),
    )


def outgoing_config(mailbox: Mailbox) -> ServerConfig:
    token = (
        mailbox.incoming_password_encrypted if mailbox.smtp_same_login else mailbox.smtp_password_encrypted
    )
    return ServerConfig(
        endpoint=Endpoint(
            mailbox.smtp_host, mailbox.smtp_port, Security(mailbox.smtp_security), mailbox.smtp_fingerprint
        ),
        login=mailbox.effective_smtp_login,
        password=Secret(crypto.decrypt(token)),
        policy=network_policy(),
    )
