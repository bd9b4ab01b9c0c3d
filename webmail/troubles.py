"""What a mailbox needs from its person, said where they read: the sidebar and the top of the lists.

From what the page already holds (fetcher.selectors.Holdings: each mailbox with its MailboxSync and
how many of its messages could not be read), so saying it costs no query. Each trouble has its
reason and its fix, in the reader's language; the server's own words stay as they came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Mailbox
from fetcher.mail.net import Step
from fetcher.models import MailboxState
from fetcher.selectors import UNREAD_CAP

# Providers that refuse a login until their own website was signed in to (a security check, an app
# password to create) say so in the refusal: Gmail's "[ALERT] Please log in via your web browser",
# "[WEBALERT ...]", "Application-specific password required".
_SIGN_IN_THERE = re.compile(
    r"WEBALERT|web ?browser|web ?login|log ?in via|sign ?in via|application-specific password|app password",
    re.IGNORECASE,
)

_REASONS: dict[str, Promise] = {
    Step.AUTH: _("The server refused the login name or the password."),
    "key": _("The stored password can no longer be read: the site's encryption keys changed."),
    Step.POLICY: _(
        "Postane does not connect to this address or port. An administrator can allow intranet servers."
    ),
    Step.DNS: _("The server name could not be found. Check it for typing mistakes."),
    Step.CONNECT: _(
        "The server could not be reached on this port: it refused the connection or did not answer."
    ),
    Step.TLS: _("The encrypted connection failed or the server's certificate is not trusted."),
    Step.STARTTLS: _("The server does not offer STARTTLS on this port. Try SSL/TLS on its own port."),
    Step.GREETING: _("The server did not answer as a mail server of this kind would."),
    Step.UIDL: _("The server cannot list messages by unique id."),
    Step.INPUT: _("A setting cannot be sent to a server as it is."),
    Step.PROTOCOL: _("The conversation with the server broke off."),
    "internal": _(
        "Postane met an unexpected problem while syncing; the administrator can read about it in the log."
    ),
}
_SIGN_IN_REASON = _("The provider wants you to sign in on its website before a mail program may log in.")
_PAUSED = _("Syncing is paused after repeated login failures.")


@dataclass(frozen=True)
class Trouble:
    mailbox: Mailbox
    reason: str  # translated
    fix: str  # translated: what to do, the text of the link
    url: str  # where to do it
    detail: str = ""  # what was recorded (the server's words), untranslated
    sync_again: bool = False  # the fix is done elsewhere: offer "Sync now" beside it


def sync_trouble(mailbox: Mailbox) -> Trouble | None:
    """A mailbox whose last sync failed: why, and the fix (its settings, the password, signing in)."""
    sync: Any = getattr(mailbox, "sync", None)
    if sync is None or sync.state != MailboxState.ERROR:
        return None
    kind, detail = sync.last_error_kind, sync.last_error_message
    edit = reverse("mailbox_edit", args=[mailbox.id])
    if kind == Step.AUTH and _SIGN_IN_THERE.search(detail):
        fix = _("Sign in on your provider's website, then sync again")
        return Trouble(mailbox, str(_SIGN_IN_REASON), str(fix), edit, detail, sync_again=True)
    reason = str(_REASONS.get(kind, _("Syncing failed.")))
    if sync.paused:
        reason = f"{reason} {_PAUSED}"
    if kind in {Step.AUTH, "key"}:
        fix = _("Enter the password again")
    elif kind == "internal":
        return Trouble(mailbox, reason, str(_("Mailbox settings")), reverse("mailbox_list"), detail, True)
    else:
        fix = _("Check the mailbox's settings")
    return Trouble(mailbox, reason, str(fix), edit, detail)


def unreadable_trouble(mailbox: Mailbox) -> Trouble | None:
    """Messages stage two could not read (each kept as it arrived): how many, and where to see them."""
    count = int(getattr(mailbox, "unreadable", 0) or 0)
    if not count:
        return None
    shown = "999+" if count >= UNREAD_CAP else str(count)  # counted up to the unread counts' cap
    reason = ngettext(
        "%(count)s message could not be read. It is kept as it arrived: open it to see the original.",
        "%(count)s messages could not be read. Each is kept as it arrived: open one to see its original.",
        count,
    ) % {"count": shown}
    url = reverse("search") + "?" + urlencode({"q": "is:unreadable"})
    return Trouble(mailbox, reason, str(_("Show them")), url)


def troubles_of(mailboxes: list[Mailbox]) -> list[Trouble]:
    """Every trouble of these mailboxes, failing syncs first."""
    found = [sync_trouble(mailbox) for mailbox in mailboxes]
    found += [unreadable_trouble(mailbox) for mailbox in mailboxes]
    return [trouble for trouble in found if trouble is not None]
