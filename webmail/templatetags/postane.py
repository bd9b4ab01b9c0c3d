"""Template helpers of the browser UI."""

from __future__ import annotations

import re
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from fetcher import safehtml, search
from fetcher.names import visible_name
from fetcher.selectors import UNREAD_CAP

register = template.Library()

STEP_LABELS: dict[str, Promise] = {
    "input": _("Settings check"),
    "policy": _("Address check"),
    "dns": _("DNS lookup"),
    "connect": _("TCP connection"),
    "tls": _("TLS and certificate"),
    "greeting": _("Server greeting"),
    "starttls": _("STARTTLS"),
    "auth": _("Login"),
    "uidl": _("Message list (UIDL)"),
    "folders": _("Folder list"),
    "protocol": _("Conversation with the server"),
}

STEP_EXPLANATIONS: dict[str, Promise] = {
    "input": _("A setting cannot be sent to a server as it is."),
    "policy": _(
        "Postane does not connect to this address or port. An administrator can allow intranet servers."
    ),
    "dns": _("The server name could not be found. Check it for typing mistakes."),
    "connect": _(
        "The server could not be reached on this port: it refused the connection or did not answer."
    ),
    "tls": _("The encrypted connection failed or the server's certificate is not trusted."),
    "greeting": _("The server did not answer as a mail server of this kind would."),
    "starttls": _("The server does not offer STARTTLS on this port. Try SSL/TLS on its own port."),
    "auth": _("The server refused the login name or the password."),
    "uidl": _("The server cannot list messages by unique id."),
    "folders": _("The server did not list its folders."),
    "protocol": _("The conversation with the server broke off."),
}


@register.filter
def visible(name: str) -> str:
    """An attachment's name as shown: no bidi override or other invisible character can disguise it."""
    return visible_name(name or "")


@register.filter
def step_label(step: str) -> str:
    return str(STEP_LABELS.get(step, step))


@register.filter
def step_explanation(step: str) -> str:
    return str(STEP_EXPLANATIONS.get(step, ""))


@register.filter
def linkify(text: str) -> SafeString:
    """Plain mail text, escaped, with its http, https and mailto links clickable (new tab, no referrer)."""
    return mark_safe(safehtml.linkify(text or ""))  # noqa: S308 -- safehtml.linkify escapes every piece


@register.filter
def highlight(text: str, terms: list[str]) -> SafeString:
    """Text escaped, with the words a search matched (as prefixes, folded as the index folds) marked."""
    text = text or ""
    folded = search.fold(text)
    if not terms or len(folded) != len(text):  # folding kept every position (it almost always does)
        return conditional_escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(term) for term in terms) + r")\w*")
    pieces, position = [], 0
    for match in pattern.finditer(folded):
        pieces.append(conditional_escape(text[position : match.start()]))
        pieces.append(format_html("<mark>{}</mark>", text[match.start() : match.end()]))
        position = match.end()
    pieces.append(conditional_escape(text[position:]))
    return mark_safe("".join(pieces))  # noqa: S308 -- every piece escaped above


@register.filter
def mail_date(value: datetime | None) -> str:
    """Today: the time; this year: day and month; before: the full date (all in the user's time zone)."""
    if value is None:
        return ""
    local, now = timezone.localtime(value), timezone.localtime()
    if local.date() == now.date():
        return date_format(local, "TIME_FORMAT")
    if local.year == now.year:
        return date_format(local, "MONTH_DAY_FORMAT")
    return date_format(local, "SHORT_DATE_FORMAT")


@register.filter
def count_label(value: int) -> str:
    """An unread count as shown: counts stop at selectors.UNREAD_CAP, so 1000 and more read 999+."""
    return "999+" if value >= UNREAD_CAP else str(value)
