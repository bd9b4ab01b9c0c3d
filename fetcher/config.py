"""From a stored mailbox to the plain config the protocol sessions take (the Django side).

Decryption happens here, in the process about to log in, and the result is wrapped in a
`Secret` at once.
"""

from __future__ import annotations

from django.conf import settings

from accounts import crypto
from accounts.models import Mailbox
from fetcher.mail.discover import Sources
from fetcher.mail.net import Endpoint, NetworkPolicy, Security
from fetcher.mail.resolver import Resolver
from fetcher.mail.session import Secret, ServerConfig


def network_policy() -> NetworkPolicy:
    ports = settings.WEBMAIL_ALLOWED_MAIL_PORTS
    return NetworkPolicy(
        allowed_networks=tuple(settings.WEBMAIL_ALLOWED_MAIL_NETWORKS),
        allowed_hosts=frozenset(settings.WEBMAIL_ALLOWED_MAIL_HOSTS),
        allowed_ports=None if ports is None else frozenset(ports),
        extra_ca_file=settings.WEBMAIL_EXTRA_CA_FILE,
        timeout=float(settings.WEBMAIL_MAIL_TIMEOUT),
        dns_servers=tuple(settings.WEBMAIL_DNS_SERVERS),
    )


def discovery_sources() -> Sources:
    """Where mailbox discovery asks: the configured resolvers and ISPDB, under the network policy."""
    policy = network_policy()
    return Sources(
        policy=policy,
        resolver=Resolver(policy.dns_servers, timeout=min(policy.timeout, 5.0)),
        ispdb_url=settings.WEBMAIL_ISPDB_URL,
    )


def incoming_endpoint(mailbox: Mailbox) -> Endpoint:
    security = Security(mailbox.incoming_security)
    return Endpoint(mailbox.incoming_host, mailbox.incoming_port, security, mailbox.incoming_fingerprint)


def outgoing_endpoint(mailbox: Mailbox) -> Endpoint:
    return Endpoint(
        mailbox.smtp_host, mailbox.smtp_port, Security(mailbox.smtp_security), mailbox.smtp_fingerprint
    )


def incoming_config(mailbox: Mailbox, password: Secret | None = None) -> ServerConfig:
    """Decrypts the stored password unless one is given (a password typed on the command line)."""
    secret = password or Secret(crypto.decrypt(mailbox.incoming_password_encrypted))
    return ServerConfig(incoming_endpoint(mailbox), mailbox.incoming_login, secret, network_policy())


def outgoing_config(mailbox: Mailbox, password: Secret | None = None) -> ServerConfig:
    if password is None:
        same = mailbox.smtp_same_login
        password = Secret(
            crypto.decrypt(mailbox.incoming_password_encrypted if same else mailbox.smtp_password_encrypted)
        )
    return ServerConfig(outgoing_endpoint(mailbox), mailbox.effective_smtp_login, password, network_policy())
