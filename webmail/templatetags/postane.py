"""Template helpers of the browser UI."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from django import template
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.functional import Promise
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from fetcher.mail import safehtml, search
from fetcher.mail.names import visible_name
from fetcher.selectors import UNREAD_CAP
from webmail import icons
from webmail.troubles import Trouble, sync_trouble, troubles_of, unreadable_trouble

register = template.Library()


@register.simple_tag
def icon(name: str) -> SafeString:
    """A toolbar icon (webmail.icons), aria-hidden beside the control's text label."""
    return icons.icon(name)


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
    if not terms:
        return conditional_escape(text)
    folded = search.fold(text)
    if len(folded) != len(text):  # folding kept every position (it almost always does)
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
    return _mail_date(value, timezone.localtime(), _date_formats())


def _mail_date(value: datetime | None, now: datetime, formats: dict[str, str]) -> str:
    """`formats`: the active language's formats (_date_formats), looked up once for a whole list."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    if local.date() == now.date():
        name = "TIME_FORMAT"
    elif local.year == now.year:
        name = "MONTH_DAY_FORMAT"
    else:
        name = "SHORT_DATE_FORMAT"
    return dateformat.format(local, formats[name])


def _date_formats() -> dict[str, str]:
    return {name: get_format(name) for name in ("TIME_FORMAT", "MONTH_DAY_FORMAT", "SHORT_DATE_FORMAT")}


@register.filter
def count_label(value: int) -> str:
    """An unread count as shown: counts stop at selectors.UNREAD_CAP, so 1000 and more read 999+."""
    return "999+" if value >= UNREAD_CAP else str(value)


_ATTACHMENT_MARK = (
    '<svg class="attachment-mark" width="14" height="14" viewBox="0 0 24 24" role="img" aria-label="{}">'
    '<path d="M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5" fill="none"'
    ' stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>'
)


@register.simple_tag(takes_context=True)
def message_rows(context: template.Context, rows: list[Any]) -> SafeString:
    """The rows of a mail list (webmail.views.lists.Row), rendered in Python.

    The list is the page read most, and as template tags its 50 rows cost about two thirds of
    the request (some 1,400 variable lookups); here they cost a few milliseconds. Every value is
    escaped; the words a search matched are marked (`highlight`).
    """
    terms = context.get("terms") or []
    link, back = (
        conditional_escape(str(context.get("message_url") or "")),
        conditional_escape(str(context.get("back_query") or "")),
    )
    star = conditional_escape(_("Star"))
    unread = format_html(
        '<span class="visually-hidden">{}</span> ', _("Unread:")
    )  # the bold, for a screen reader
    no_sender, no_subject = str(_("(no sender)")), str(_("(no subject)"))
    attachment_mark = format_html(_ATTACHMENT_MARK, _("Has attachments"))
    now, formats = timezone.localtime(), _date_formats()
    html = []
    for row in rows:
        if getattr(row, "outgoing", None) is not None:
            html.append(_draft_row(row, now, formats))
            continue
        m = row.message
        public_id = conditional_escape(str(m.public_id))
        chip = (
            format_html(
                '<svg class="chip" width="10" height="10" viewBox="0 0 10 10" aria-hidden="true">'
                '<circle cx="5" cy="5" r="5" fill="{}"/></svg>',
                row.mailbox.colour,
            )
            if row.mailbox
            else ""
        )
        count = format_html(' <span class="thread-count">{}</span>', row.count) if row.count > 1 else ""
        sender = highlight(_shown_sender(m, row.mailbox) or no_sender, terms)
        local = timezone.localtime(m.sort_date)
        when = format_html(
            '<time datetime="{}">{}</time>', local.isoformat(), _mail_date(local, now, formats)
        )
        html.append(
            f'<li class="message-row{"" if m.seen else " unread"}" data-message="{public_id}"'
            f' data-mailbox="{conditional_escape(str(m.mailbox_id))}" data-testid="message-row">\n'
            f'<input type="checkbox" name="message" value="{public_id}"{_named_by(public_id)}>\n'
            f'<button class="star{" on" if m.flagged else ""}" form="{"unstar" if m.flagged else "star"}-one"'
            f' name="message" value="{public_id}" aria-label="{star}"'
            f' aria-pressed="{"true" if m.flagged else "false"}" data-testid="star">'
            f"{'★' if m.flagged else '☆'}</button>\n"
            f'<a class="row-link" href="{link}{public_id}/{back}">{"" if m.seen else unread}'
            f'<span class="from" id="f-{public_id}">{chip}{sender}{count}</span>'
            f' <span class="subject" id="s-{public_id}">{highlight(m.subject or no_subject, terms)}</span>'
            f' <span class="snippet muted">{highlight(m.snippet, terms)}</span></a>\n'
            f'<span class="meta">{attachment_mark if m.has_attachments else ""}'
            f"{when}</span>\n</li>\n"
        )
    return mark_safe("".join(html))  # noqa: S308 -- every value escaped above


def _draft_row(row: Any, now: datetime, formats: dict[str, str]) -> str:
    """A draft written here (webmail.views.lists.DraftRow), shown as the servers' drafts are: whom it
    is for, its subject and beginning. Its box is a `message` box too (value `draft:<id>`), so
    choosing rows, "choose all" and the keyboard treat both kinds alike."""
    draft = row.outgoing
    public_id = conditional_escape(str(draft.public_id))
    people = [person.get("name") or person.get("address", "") for person in [*draft.to, *draft.cc]]
    to = (
        str(_("To: %(people)s") % {"people": ", ".join(people[:3]) + ("…" if len(people) > 3 else "")})
        if people
        else str(_("(no recipient)"))
    )
    subject = draft.subject or str(_("(no subject)"))
    chip = format_html(_CHIP, row.mailbox.colour) if row.mailbox else ""
    local = timezone.localtime(draft.updated_at)
    when = format_html('<time datetime="{}">{}</time>', local.isoformat(), _mail_date(local, now, formats))
    url = conditional_escape(reverse("compose_edit", args=[draft.public_id]))
    beginning = " ".join(draft.text_body.split())[:200]
    return (
        f'<li class="message-row draft" data-draft="{public_id}"'
        f' data-mailbox="{conditional_escape(str(draft.mailbox_id))}" data-testid="message-row">\n'
        f'<input type="checkbox" name="message" value="draft:{public_id}"{_named_by(public_id)}>\n'
        '<span class="star" aria-hidden="true"></span>\n'
        f'<a class="row-link" href="{url}"><span class="from" id="f-{public_id}">{chip}{escape(to)}</span>'
        f' <span class="subject" id="s-{public_id}">{escape(subject)}</span>'
        f' <span class="snippet muted">{escape(beginning)}</span></a>\n'
        f'<span class="meta">{when}</span>\n</li>\n'
    )


def _named_by(public_id: str) -> str:
    """A row's checkbox is named "Choose", its sender and its subject (a screen reader says which
    message it chooses) by reference, so the row does not carry its subject twice."""
    return f' aria-labelledby="choose-word f-{public_id} s-{public_id}"'


def _shown_sender(message: Any, mailbox: Any) -> str:
    """Who a row names: the sender, or for mail the person sent from that mailbox (Sent, Drafts,
    their own copies elsewhere) whom it went to, as mail readers do."""
    own = mailbox is not None and message.from_address.lower() == mailbox.email_address.lower()
    if own and (people := [*message.to, *message.cc]):
        names = ", ".join(person.get("name") or person.get("address", "") for person in people[:3])
        return str(_("To: %(people)s") % {"people": names + ("…" if len(people) > 3 else "")})
    return str(message.from_name or message.from_address)


_CHIP = (
    '<svg class="chip" width="10" height="10" viewBox="0 0 10 10" aria-hidden="true">'
    '<circle cx="5" cy="5" r="5" fill="{}"/></svg>\n'  # the newline: a space before the name
)


@register.simple_tag(takes_context=True)
def mailbox_tree(context: template.Context) -> SafeString:
    """The sidebar's mailboxes, each with its folder tree and unread counts, rendered in Python.

    Every page shows it: as template tags (a plural translation, a URL and a dozen lookups per
    folder) it cost about a fifth of a list page. Every value is escaped.
    """
    sidebar, request = context.get("sidebar"), context.get("request")
    match = getattr(request, "resolver_match", None)
    here = str(match.kwargs.get("folder_id", "")) if match else ""
    blank = str(uuid.UUID(int=0))
    folder_url = reverse("folder", args=[blank]).removesuffix(f"{blank}/")
    html = []
    trees = dict(sidebar.mailboxes) if sidebar else {}
    # Every mailbox, with its folders if it has any yet: one whose first sync failed has none, and
    # its warning must show all the same.
    for mailbox in context.get("sidebar_mailboxes") or []:
        html.append(_mailbox_name(mailbox))
        for line in trees.get(mailbox, []):
            depth, label, folder = line.depth or 0, escape(line.label), line.folder
            if folder is None:
                html.append(
                    f'<li class="folder sub level depth-{depth}" data-testid="folder-level">{label}</li>'
                )
                continue
            public_id = str(folder.public_id)
            current = " current" if public_id == here else ""
            totals = ngettext(
                "%(counter)s message, %(unread)s unread",
                "%(counter)s messages, %(unread)s unread",
                folder.total,
            ) % {"counter": folder.total, "unread": folder.unread}
            count = f' <span class="count">{count_label(folder.unread)}</span>' if folder.unread else ""
            title = f"{escape(line.path)} · {escape(totals)}"
            html.append(
                f'<li><a class="folder sub depth-{depth}{current}" href="{escape(folder_url)}{public_id}/"'
                f' title="{title}" data-testid="folder">{label}{count}</a></li>'
            )
    if not html:
        html.append(f'<li class="muted">{escape(gettext("No mailboxes yet"))}</li>')
    return mark_safe("\n".join(html))  # noqa: S308 -- every value escaped above


def _mailbox_name(mailbox: Any) -> str:
    """A mailbox's line in the sidebar; a mailbox that needs its person carries a warning that says why
    and leads to the fix (webmail.troubles)."""
    trouble = sync_trouble(mailbox) or unreadable_trouble(mailbox)
    mark = (
        format_html(
            ' <a class="mailbox-alert" href="{}" title="{}" data-testid="mailbox-alert">'
            '<span aria-hidden="true">⚠</span><span class="visually-hidden">{}</span></a>',
            trouble.url,
            trouble.reason,
            trouble.reason,
        )
        if trouble
        else ""
    )
    return f'<li class="mailbox-name">{format_html(_CHIP, mailbox.colour)}{escape(mailbox.name)}{mark}</li>'


@register.simple_tag(takes_context=True)
def mailbox_alerts(context: template.Context) -> SafeString:
    """At the top of a list: each mailbox that needs its person, why, and the fix (webmail.troubles),
    from the mailboxes the page holds anyway."""
    troubles = troubles_of(list(context.get("sidebar_mailboxes") or []))
    if not troubles:
        return mark_safe("")
    items = [_trouble_item(trouble, str(context.get("csrf_token") or "")) for trouble in troubles]
    return format_html(
        # The live region around the list: a list with role="status" would be no list to a screen reader.
        '<div role="status" aria-label="{}" data-testid="mailbox-alerts">'
        '<ul class="mailbox-alerts">{}</ul></div>',
        gettext("Mailboxes that need you"),
        mark_safe("".join(items)),  # noqa: S308 -- each item built by format_html
    )


def _trouble_item(trouble: Trouble, csrf_token: str) -> str:
    again = (
        format_html(
            ' <form method="post" action="{}" class="inline"><input type="hidden" name="csrfmiddlewaretoken"'
            ' value="{}"><button class="link">{}</button></form>',
            reverse("mailbox_sync", args=[trouble.mailbox.id]),
            csrf_token,
            gettext("Sync now"),
        )
        if trouble.sync_again
        else ""
    )
    detail = (
        format_html(
            ' <details><summary>{}</summary><p class="muted small">{}</p></details>',
            gettext("Details"),
            trouble.detail,
        )
        if trouble.detail
        else ""
    )
    return format_html(
        '<li data-testid="mailbox-trouble" data-mailbox="{}"><strong>{}</strong>: {}'
        ' <a href="{}">{}</a>{}{}</li>',
        trouble.mailbox.id,
        trouble.mailbox.name,
        trouble.reason,
        trouble.url,
        trouble.fix,
        again,
        detail,
    )


# The values of a MailError's sentence that are themselves marked messages ("the %(what)s contains ...").
_TRANSLATED_VALUES = frozenset({"what", "reason"})


@register.filter
def translate_text(text: str) -> str:
    """A text marked with gettext_noop where it was made, translated where it is shown."""
    return gettext(text) if text else ""


@register.filter
def mail_error(report: dict[str, Any]) -> str:
    """A connection test's failure in the reader's language: each sentence of the error
    (fetcher.mail.net.MailError.parts) translated, its values put in; a report stored before
    there were parts, or a sentence whose translation does not fit its values, as it came."""
    return " ".join(_translated(report.get("message_parts") or [])) or str(report.get("message", ""))


@register.filter
def provider_hints(report: dict[str, Any]) -> list[str]:
    """A known provider's reasons for a refused login (fetcher.mail.providers.login_hints), translated."""
    return _translated(report.get("hints") or [])


def _translated(parts: list[Any]) -> list[str]:
    sentences = []
    for text, values in parts:
        given = {
            key: gettext(value) if key in _TRANSLATED_VALUES and isinstance(value, str) else value
            for key, value in values.items()
        }
        try:
            sentences.append(gettext(text) % given if given else gettext(text))
        except (KeyError, ValueError, TypeError):
            sentences.append(text % values if values else text)
    return sentences
