"""Conversations: which messages belong together. Plain Python, no Django.

A conversation is named by its first message's Message-ID: the first entry of References
(clients list the chain from its root), else In-Reply-To, else the message's own id. A reply
that names only its parent joins the parent's conversation when the parent is stored; a reply
with no such headers at all joins, by its subject without "Re:", "Fwd:", "YNT:" or "İLT:", the
latest conversation of the same person with that subject.
"""

from __future__ import annotations

import re

from fetcher import search

# Reply and forward prefixes in the languages our users write (Turkish Outlook: YNT, İLT),
# with counters ("Re[2]:") and mailing-list tags ("[liste] Re:"), repeated.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|fw|[iİIı]lt|ynt|aw|wg|sv|vs|antw|tr|rv|res|enc|odp)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*"
    r"|\[[^\]]{1,40}\]\s*)+",
    re.IGNORECASE,
)
_REPLY = re.compile(
    r"(?:re|fwd?|fw|[iİIı]lt|ynt|aw|wg|sv|vs|antw|tr|rv|res|enc|odp)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]", re.I
)


def base_subject(subject: str) -> str:
    """The subject as a conversation knows it: prefixes gone, spaces collapsed, Turkish lower case."""
    return search.turkish_lower(" ".join(_PREFIX.sub("", subject).split()))[:255]


def is_reply_subject(subject: str) -> bool:
    prefix = _PREFIX.match(subject)
    return bool(prefix and _REPLY.search(prefix.group()))


def own_key(message_id: str, in_reply_to: str, references: list[str], fallback: str) -> str:
    """The conversation key from the message's own headers (before looking at stored mail)."""
    return (references[0] if references else in_reply_to or message_id or fallback)[:998]
