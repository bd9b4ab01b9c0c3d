"""Template helpers of the browser UI."""

from __future__ import annotations

from django import template
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

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
def step_label(step: str) -> str:
    return str(STEP_LABELS.get(step, step))


@register.filter
def step_explanation(step: str) -> str:
    return str(STEP_EXPLANATIONS.get(step, ""))
