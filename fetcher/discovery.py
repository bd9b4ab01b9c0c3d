"""Adding a mailbox from its address: the Django side of discovery (the chain itself is plain Python,
fetcher.mail.discover).

A person types an address and a password; `discovery_start` keeps them (the password encrypted) and
queues `discovery_run` for a worker, which runs the chain, records each step as it is tried, and
starts the existing connection test with what it found (IMAP where there is one). The page shows
both; `discovery_save` saves the mailbox that passed, `discovery_retest` tries the other protocol.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import crypto
from accounts.models import (
    DEFAULT_PORTS,
    ConnectionTest,
    DiscoveryStatus,
    Mailbox,
    MailboxDiscovery,
    Retention,
    User,
)
from accounts.services import Passwords, mailbox_save
from fetcher import config, enqueue, leases
from fetcher.mail.discover import Discovery, discover
from fetcher.services import connection_test_start

logger = logging.getLogger(__name__)


def discovery_start(*, owner: User, address: str, password: str) -> MailboxDiscovery:
    found = MailboxDiscovery.objects.create(
        owner=owner, address=address.strip(), password_encrypted=crypto.encrypt(password)
    )
    transaction.on_commit(lambda: enqueue.run_discovery(found.id))
    return found


def discovery_run(*, discovery_id: uuid.UUID | str) -> None:
    """Claim the discovery, run the chain (each step saved as it is tried), then test what it found."""
    waiting = Q(status=DiscoveryStatus.PENDING) | Q(
        status=DiscoveryStatus.RUNNING, lease_until__lt=timezone.now()
    )
    claimed = MailboxDiscovery.objects.filter(waiting, id=discovery_id).update(
        status=DiscoveryStatus.RUNNING, lease_until=leases.lease_end()
    )
    if not claimed:
        return
    row = MailboxDiscovery.objects.select_related("owner").get(id=discovery_id)

    def record(progress: Discovery) -> None:
        MailboxDiscovery.objects.filter(id=discovery_id).update(
            result=_result(progress), lease_until=leases.lease_end()
        )

    try:
        found = discover(row.address, config.discovery_sources(), listener=record)
    except Exception:
        logger.exception("discovery %s failed unexpectedly", discovery_id)
        found = Discovery(row.address)
    result = _result(found)
    test = _test(row, _first_protocol(result), result) if found.settings else None
    MailboxDiscovery.objects.filter(id=discovery_id).update(
        status=DiscoveryStatus.DONE, result=result, test=test, lease_until=None
    )
    logger.info("discovery %s: %s", discovery_id, found.source or "nothing found")


def discovery_retest(*, discovery: MailboxDiscovery, protocol: str) -> ConnectionTest | None:
    """Test the other protocol the chain found (POP3 instead of IMAP, say)."""
    test = _test(discovery, protocol, discovery.result)
    MailboxDiscovery.objects.filter(id=discovery.id).update(test=test)
    discovery.test = test
    return test


def discovery_values(result: dict[str, Any], address: str, protocol: str) -> dict[str, Any] | None:
    """The mailbox settings of what the chain found, for `protocol`; None when it found none."""
    servers = result.get("servers") or []
    incoming = next((s for s in servers if s["protocol"] == protocol), None)
    outgoing = next((s for s in servers if s["protocol"] == "smtp"), None)
    if incoming is None:
        return None
    smtp = outgoing or {
        "host": incoming["host"],
        "port": DEFAULT_PORTS["smtp", "starttls"],
        "security": "starttls",
    }
    same_login = outgoing is None or outgoing["login"] == incoming["login"]
    return {
        "name": address,
        "email_address": address,
        "protocol": protocol,
        "incoming_host": incoming["host"],
        "incoming_port": incoming["port"],
        "incoming_security": incoming["security"],
        "incoming_login": incoming["login"],
        "incoming_fingerprint": "",
        "smtp_host": smtp["host"],
        "smtp_port": smtp["port"],
        "smtp_security": smtp["security"],
        "smtp_same_login": same_login,
        "smtp_login": "" if same_login else outgoing["login"] if outgoing else "",
        "smtp_fingerprint": "",
        "pop3_retention": Retention.KEEP,
        "pop3_retention_days": None,
        "poll_interval_minutes": 5,
        "enabled": True,
        "imap_folders": [],
    }


def discovery_save(*, discovery: MailboxDiscovery) -> Mailbox:
    """The mailbox of a discovery whose connection test passed, with the tested password."""
    test = discovery.test
    if test is None or not test.passed:
        raise ValueError("the connection test has not passed")
    values = discovery_values(discovery.result, discovery.address, test.settings["protocol"])
    if values is None:
        raise ValueError("nothing was found")
    saved = mailbox_save(owner=discovery.owner, mailbox=None, values=values, passwords=Passwords(), test=test)
    discovery.delete()
    return saved


def _test(row: MailboxDiscovery, protocol: str, result: dict[str, Any]) -> ConnectionTest | None:
    values = discovery_values(result, row.address, protocol)
    if values is None:
        return None
    password = crypto.decrypt(row.password_encrypted)
    return connection_test_start(
        owner=row.owner, mailbox=None, values=values, passwords=Passwords(incoming=password)
    )


def _first_protocol(result: dict[str, Any]) -> str:
    protocols = [server["protocol"] for server in result.get("servers") or []]
    return "imap" if "imap" in protocols else "pop3"


def _result(found: Discovery) -> dict[str, Any]:
    settings = found.settings
    servers = [*settings.incoming, *settings.outgoing] if settings else []
    order = {"imap": 0, "pop3": 1, "smtp": 2}
    best = {kind: settings.incoming_for(kind) for kind in ("imap", "pop3")} if settings else {}
    chosen = [server for server in best.values() if server is not None]
    if settings and (smtp := settings.outgoing_server()) is not None:
        chosen.append(smtp)
    provider = found.provider
    return {
        "source": found.source,
        "source_detail": found.source_detail,
        "provider": {"name": provider.name, "sign_in": provider.sign_in, "help": provider.help}
        if provider
        else None,
        "servers": [
            {
                "protocol": s.protocol,
                "host": s.host,
                "port": s.port,
                "security": str(s.security),
                "login": s.login,
            }
            for s in sorted(chosen, key=lambda s: order[s.protocol])
        ],
        "all_servers": len(servers),
        "tried": [{"step": t.step, "asked": t.asked, "outcome": t.outcome} for t in found.tried],
    }
