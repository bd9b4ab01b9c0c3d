"""Conversations: which messages belong together. Plain Python, no Django.

The rules, in order (after Thunderbird, which threads by References, and Gmail, which also
needs the subject and a time window before it groups by subject):

1. **Headers.** A message whose In-Reply-To or any References entry names a message already
   known (stored for the same owner) joins that message's conversation; the nearest ancestor
   wins: In-Reply-To, then References from last to first.
2. **Subject, for replies only.** A message with no reply headers at all whose subject is a
   reply or a forward ("Re:", "Fwd:", "YNT:", "İLT:" ...) joins the newest conversation holding
   a message with the same subject (`base_subject`) sent in the WINDOW before it, if the two
   share a person: the reply's sender took part in that conversation (sent or received one of
   its messages), or one of its senders receives the reply. The owner's own addresses do not
   count, or every reply to them would join everything they wrote. A message that is not a
   reply never joins by subject: a hundred "Security alert" notices stay a hundred.
3. **Its own headers.** Otherwise the key is References[0], else In-Reply-To, else the message's
   own Message-ID (`own_key`), so children that arrive before their parent meet it when it comes:
   a stored root's key is its own Message-ID.
4. **The cap.** A conversation holds at most CAP messages. The key of rule 1-3 names a chain
   (its base key); the message joins the chain's newest segment, and a segment that is full
   starts the next: "<root@id>#2", "<root@id>#3"... (`segment_key`).

`Conversations` applies these rules to one owner's messages, one after the other, over what the
caller told it is stored (fetcher.conversations loads that from the database in a few queries
per chunk of messages) plus what it placed itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from fetcher.mail import search

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

CAP = 100  # messages in one conversation, as Gmail does; the next one starts a new segment
WINDOW = timedelta(days=30)  # how far back a headerless reply looks for its conversation by subject
KEY_LENGTH = 998  # Message.thread_key's max_length
# A segment's key is its chain's key, a '#' and the segment's number from 2. Message-IDs end with
# '>' (mime keeps only <...> tokens), so the suffix cannot be part of one.
_SEGMENT = re.compile(r"(.*>)#([1-9][0-9]{0,8})")


def base_subject(subject: str) -> str:
    """The subject as a conversation knows it: prefixes gone, spaces collapsed, Turkish lower case."""
    return search.turkish_lower(" ".join(_PREFIX.sub("", subject).split()))[:255]


def is_reply_subject(subject: str) -> bool:
    prefix = _PREFIX.match(subject)
    return bool(prefix and _REPLY.search(prefix.group()))


def own_key(message_id: str, in_reply_to: str, references: list[str], fallback: str) -> str:
    """The conversation key from the message's own headers (before looking at stored mail)."""
    return (references[0] if references else in_reply_to or message_id or fallback)[:KEY_LENGTH]


def segment_key(base: str, number: int) -> str:
    """The key of a chain's segment `number` (1 is the chain's own key)."""
    if number == 1:
        return base
    suffix = f"#{number}"
    if len(base) + len(suffix) > KEY_LENGTH:  # only a Message-ID near 998 characters: keep its '>'
        base = base[: KEY_LENGTH - len(suffix) - 1] + ">"
    return base + suffix


def split_key(key: str) -> tuple[str, int]:
    """(the chain's key, the segment's number) of a conversation key."""
    if match := _SEGMENT.fullmatch(key):
        return match[1], int(match[2])
    return key, 1


def newest_segment(base: str, size: Callable[[str], int]) -> str:
    """The key of the chain's newest segment with room: the last one holding messages, or the
    one after it when that is full. `size` must know every segment up to an empty one."""
    number = 1
    while size(segment_key(base, number + 1)) > 0:
        number += 1
    key = segment_key(base, number)
    return key if size(key) < CAP else segment_key(base, number + 1)


def shares_participant(
    sender: str, recipients: frozenset[str], people: set[str], senders: set[str], own: frozenset[str]
) -> bool:
    """Whether a reply and a conversation have someone in common, leaving out the owner's own
    addresses: the reply's sender took part in it (`people`: its senders and recipients), or
    one of its `senders` receives the reply."""
    if sender and sender not in own and sender in people:
        return True
    return bool((senders - own) & recipients)


@dataclass(frozen=True)
class Mail:
    """What threading reads of a message. Addresses in lower case."""

    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    base_subject: str  # base_subject(subject), as stage two stored it
    sender: str
    recipients: frozenset[str]
    sort_date: datetime
    fallback: str = ""  # the key of a message without any Message-ID

    @cached_property
    def ancestors(self) -> list[str]:
        """The Message-IDs it replies to, nearest first: In-Reply-To, then References last to first."""
        named = [self.in_reply_to, *reversed(self.references)]
        return [found for found in dict.fromkeys(named) if found and found != self.message_id]

    def own_key(self) -> str:
        return own_key(self.message_id, self.in_reply_to, list(self.references), self.fallback)

    @cached_property
    def joins_by_subject(self) -> bool:
        """A reply or forward without reply headers (a client that drops them)."""
        no_headers = not self.in_reply_to and not self.references
        return no_headers and bool(self.base_subject) and is_reply_subject(self.subject)


@dataclass
class Conversations:
    """One owner's conversations as far as they matter to the messages being placed.

    The caller tells it what is stored (`know_*`, and the chains' sizes through `probes` and
    `know_sizes`); `place` then decides each message's key and counts it, so the next message
    sees it.
    """

    own: frozenset[str] = frozenset()  # the owner's addresses
    keys: dict[str, str] = field(default_factory=dict)  # Message-ID -> conversation key
    stored: dict[str, int] = field(default_factory=dict)  # key -> messages stored (up to CAP)
    added: dict[str, int] = field(default_factory=dict)  # key -> messages placed here
    subjects: dict[str, list[tuple[datetime, str]]] = field(
        default_factory=dict
    )  # base subject -> (date, key)
    people: dict[str, set[str]] = field(default_factory=dict)  # key -> its senders and recipients
    senders: dict[str, set[str]] = field(default_factory=dict)  # key -> its senders
    probed: dict[str, int] = field(default_factory=dict)  # chain key -> highest segment whose size is known

    def know_message(self, message_id: str, key: str) -> None:
        if message_id:
            self.keys.setdefault(message_id, key)

    def know_subject(self, subject: str, sort_date: datetime, key: str) -> None:
        if subject:
            self.subjects.setdefault(subject, []).append((sort_date, key))

    def know_people(self, key: str, sender: str, recipients: Iterable[str]) -> None:
        found = {address for address in (sender, *recipients) if address}
        self.people.setdefault(key, set()).update(found)
        if sender:
            self.senders.setdefault(key, set()).add(sender)

    def bases(self, mail: Mail) -> set[str]:
        """The chains this message may join, whose sizes `place` will need."""
        keys = {mail.own_key(), *(self.keys[found] for found in mail.ancestors if found in self.keys)}
        if mail.joins_by_subject:
            keys.update(key for _date, key in self.subjects.get(mail.base_subject, []))
        return {split_key(key)[0] for key in keys}

    def probes(self, bases: Iterable[str]) -> list[str]:
        """Segment keys whose stored sizes are still unknown, one round: segments 1 and 2 of a new
        chain, twice as many as before while the last one asked about holds messages."""
        keys = []
        for base in sorted(set(bases)):
            top = self.probed.get(base, 0)
            if top and not self.stored.get(segment_key(base, top)):
                continue  # an empty segment found: none after it
            upto = max(2, top * 2)
            keys += [segment_key(base, number) for number in range(top + 1, upto + 1)]
            self.probed[base] = upto
        return keys

    def know_sizes(self, counts: dict[str, int], asked: Iterable[str]) -> None:
        for key in asked:
            self.stored[key] = counts.get(key, 0)

    def size(self, key: str) -> int:
        return self.stored.get(key, 0) + self.added.get(key, 0)

    def place(self, mail: Mail) -> str:
        """The message's conversation key, counted from now on."""
        chain = split_key(self._by_headers(mail) or self._by_subject(mail) or mail.own_key())[0]
        key = newest_segment(chain, self.size)
        if mail.message_id:
            self.keys[mail.message_id] = key
        self.added[key] = self.added.get(key, 0) + 1
        self.know_subject(mail.base_subject, mail.sort_date, key)
        self.know_people(key, mail.sender, mail.recipients)
        return key

    def _by_headers(self, mail: Mail) -> str:
        return next((self.keys[found] for found in mail.ancestors if found in self.keys), "")

    def _by_subject(self, mail: Mail) -> str:
        if not mail.joins_by_subject:
            return ""
        earliest = mail.sort_date - WINDOW
        for sort_date, key in sorted(self.subjects.get(mail.base_subject, []), reverse=True):
            if earliest <= sort_date <= mail.sort_date and shares_participant(
                mail.sender,
                mail.recipients,
                self.people.get(key, set()),
                self.senders.get(key, set()),
                self.own,
            ):
                return key
        return ""
