"""Conversation keys of parsed messages: fetcher.mail.threads's rules over what is stored.

Stage two places each chunk it parses (`place`) once the chunk before it is committed;
`rethread` derives an owner's keys again, oldest message first. A chunk costs one query for its
stored ancestors (by message_id; none when no message has reply headers), one for the sizes of
every chain it may join (thread_key, the message_thread_folder index; each count stops at threads.CAP;
a second round only for a chain past its first segment) and, only when it holds replies without
reply headers, three more: the messages with their subjects in the window (base_subject), the
people of those conversations (thread_key) and the owners' own addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from accounts.models import Mailbox
from fetcher.mail import threads
from fetcher.models import Message

SUBJECT_ROWS = 500  # same-subject messages read for one chunk's headerless replies, newest first
RETHREAD_BATCH = 500
# What threading reads of a stored message (rethread loads only these).
FIELDS = (
    "id",
    "mailbox__id",
    "mailbox__owner_id",
    "message_id",
    "in_reply_to",
    "references",
    "subject",
    "base_subject",
    "from_address",
    "to",
    "cc",
    "sort_date",
    "thread_key",
)


def _addresses(*lists: Iterable[Any]) -> frozenset[str]:
    found = (person.get("address", "") for people in lists for person in people if isinstance(person, dict))
    return frozenset(address.lower() for address in found if address)


def mail_of(message: Message) -> threads.Mail:
    return threads.Mail(
        message_id=message.message_id,
        in_reply_to=message.in_reply_to,
        references=tuple(message.references),
        subject=message.subject,
        base_subject=message.base_subject,
        sender=message.from_address.lower(),
        recipients=_addresses(message.to, message.cc),
        sort_date=message.sort_date,
        fallback=f"<postane.{message.pk}>",
    )


def place(messages: Sequence[Message], *, before: Message | None = None) -> None:
    """Set each message's thread_key (not saved), oldest first, among what is stored and the
    messages placed before it here.

    The messages come with their stored thread_key ("" before their first parse); a stored one
    does not count (a message parsed again is not its own neighbour). `before`: only messages
    older in (sort_date, id) order count as stored (rethread: the newer ones still carry the
    keys it is replacing).
    """
    if messages:
        _Placement(messages, before).run()


class _Placement:
    def __init__(self, messages: Sequence[Message], before: Message | None) -> None:
        self._messages = messages
        # New mail has no key to leave out (the usual case: no list to send), and when only older
        # messages count the messages' own keys are out of the way already.
        self._exclude = [message.pk for message in messages if message.thread_key] if before is None else []
        self._before = (before.sort_date, before.pk) if before is not None else None
        self._owners: dict[int, threads.Conversations] = {}
        # The chunk's own mailboxes (their addresses unread: only `_mailboxes(every=True)` has them).
        self._boxes = {message.mailbox_id: (message.mailbox.owner_id, "") for message in messages}
        self._all_boxes = False

    def run(self) -> None:
        mails = {message.pk: mail_of(message) for message in self._messages}
        chunk: dict[int, list[threads.Mail]] = {}
        for message in self._messages:
            chunk.setdefault(message.mailbox.owner_id, []).append(mails[message.pk])
        self._owners = {owner: threads.Conversations() for owner in chunk}
        self._load_ancestors(chunk)
        self._load_subjects(chunk)
        self._load_sizes(chunk)
        for message in sorted(self._messages, key=lambda message: (message.sort_date, message.pk)):
            message.thread_key = self._owners[message.mailbox.owner_id].place(mails[message.pk])

    def _known(self) -> QuerySet[Message]:
        found = Message.objects.exclude(thread_key="")
        if self._exclude:
            found = found.exclude(id__in=self._exclude)
        if self._before is not None:
            found = found.filter(
                RawSQL(
                    "(fetcher_message.sort_date, fetcher_message.id) < (%s, %s)",
                    self._before,
                    output_field=BooleanField(),
                )
            )
        return found

    def _mailboxes(self, owners: Iterable[int], *, every: bool) -> dict[Any, tuple[int, str]]:
        """Mailbox id -> (owner, address): the chunk's own mailboxes, or `every` one of the owners
        (read once, only when a lookup meets another mailbox or needs the owners' addresses)."""
        if every and not self._all_boxes:
            rows = Mailbox.objects.filter(owner_id__in=list(owners)).values_list(
                "id", "owner_id", "email_address"
            )
            self._boxes = {box: (owner, address.lower()) for box, owner, address in rows}
            self._all_boxes = True
        return self._boxes

    def _load_ancestors(self, chunk: dict[int, list[threads.Mail]]) -> None:
        named = {found for mails in chunk.values() for mail in mails for found in mail.ancestors}
        if not named:
            return
        # By Message-ID alone, owners sorted out here: joined with the owner's mailboxes, the
        # planner may read a whole mailbox's index when its statistics are missing or stale.
        rows = (
            self._known()
            .filter(message_id__in=named)
            .order_by("id")
            .values_list("mailbox_id", "message_id", "thread_key")
        )
        for box, message_id, key in rows:
            boxes = self._mailboxes(chunk, every=box not in self._boxes)
            if box in boxes:  # else another person's copy
                self._owners[boxes[box][0]].know_message(message_id, key)

    def _load_subjects(self, chunk: dict[int, list[threads.Mail]]) -> None:
        replies = [mail for mails in chunk.values() for mail in mails if mail.joins_by_subject]
        if not replies:
            return
        dates = [mail.sort_date for mail in replies]
        boxes = self._mailboxes(chunk, every=True)
        rows = (
            self._known()
            .filter(
                mailbox_id__in=list(boxes),
                base_subject__in={mail.base_subject for mail in replies},
                sort_date__gte=min(dates) - threads.WINDOW,
                sort_date__lte=max(dates),
            )
            .order_by("-sort_date")
            .values_list("mailbox_id", "base_subject", "sort_date", "thread_key")[:SUBJECT_ROWS]
        )
        keys: set[str] = set()
        for box, subject, sort_date, key in rows:
            self._owners[boxes[box][0]].know_subject(subject, sort_date, key)
            keys.add(key)
        if keys:
            self._load_people(boxes, keys)

    def _load_people(self, boxes: dict[Any, tuple[int, str]], keys: set[str]) -> None:
        """Who took part in the conversations a headerless reply may join, and who the owners are."""
        rows = (
            self._known()
            .filter(mailbox_id__in=list(boxes), thread_key__in=keys)
            .values_list("mailbox_id", "thread_key", "from_address", "to", "cc")[: threads.CAP * len(keys)]
        )
        for box, key, sender, to, cc in rows:
            self._owners[boxes[box][0]].know_people(key, sender.lower(), _addresses(to, cc))
        own: dict[int, set[str]] = {}
        for owner, address in boxes.values():
            own.setdefault(owner, set()).add(address)
        for owner, addresses in own.items():
            if owner in self._owners:
                self._owners[owner].own = frozenset(addresses)

    def _load_sizes(self, chunk: dict[int, list[threads.Mail]]) -> None:
        bases = {
            owner: {base for mail in mails for base in self._owners[owner].bases(mail)}
            for owner, mails in chunk.items()
        }
        while True:
            asked = {owner: keys for owner in chunk if (keys := self._owners[owner].probes(bases[owner]))}
            if not asked:
                return
            counts = self._counts(asked)
            for owner, keys in asked.items():
                self._owners[owner].know_sizes(counts.get(owner, {}), keys)

    def _counts(self, asked: dict[int, list[str]]) -> dict[int, dict[str, int]]:
        """Stored messages per (owner, key), each count stopping at threads.CAP: one query, one
        lookup in message_thread_folder per key. OFFSET 0 keeps the owner's join out of that lookup: the
        planner would otherwise combine it with the mailbox index when it takes a mailbox for a
        small one (a new mailbox, tables without statistics), reading the mailbox for every key."""
        owners = [owner for owner, keys in asked.items() for _key in keys]
        keys = [key for found in asked.values() for key in found]
        before = "AND (m.sort_date, m.id) < (%s, %s)" if self._before is not None else ""
        sql = (
            "SELECT probe.owner, probe.key, (SELECT count(*) FROM (SELECT 1 FROM"  # noqa: S608 -- constant text; every value is a parameter
            " (SELECT m.mailbox_id FROM fetcher_message m WHERE m.thread_key = probe.key"
            f" AND NOT (m.id = ANY(%s::bigint[])) {before} OFFSET 0) keyed"
            " JOIN accounts_mailbox b ON b.id = keyed.mailbox_id WHERE b.owner_id = probe.owner"
            " LIMIT %s) capped)"
            " FROM unnest(%s::bigint[], %s::text[]) AS probe(owner, key)"
        )
        params: list[Any] = [self._exclude, *(self._before or ()), threads.CAP, owners, keys]
        counts: dict[int, dict[str, int]] = {}
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for owner, key, count in cursor.fetchall():
                counts.setdefault(owner, {})[key] = count
        return counts


def rethread(*, owner_id: int, batch: int = RETHREAD_BATCH) -> int:
    """Derive every conversation key of one owner again, oldest message first, with the rules
    stage two uses; writes only keys that change and returns how many did."""
    ids = list(
        Message.objects.filter(mailbox__owner_id=owner_id)
        .exclude(thread_key="")  # not parsed yet: its parse task places it
        .order_by("sort_date", "id")
        .values_list("id", flat=True)
    )
    return sum(_rethread_batch(ids[start : start + batch]) for start in range(0, len(ids), batch))


def _rethread_batch(ids: Sequence[int]) -> int:
    messages = sorted(
        Message.objects.filter(id__in=ids).select_related("mailbox").only(*FIELDS),
        key=lambda message: (message.sort_date, message.pk),
    )
    if not messages:
        return 0
    old = {message.pk: message.thread_key for message in messages}
    place(messages, before=messages[0])
    changed = [message for message in messages if message.thread_key != old[message.pk]]
    with transaction.atomic():
        Message.objects.bulk_update(changed, ["thread_key"])
    return len(changed)


def owners_of(mailbox_id: str | None = None) -> list[int]:
    """The owners whose conversations a command re-derives: the mailbox's, or every owner of one."""
    mailboxes = Mailbox.objects.all() if mailbox_id is None else Mailbox.objects.filter(pk=mailbox_id)
    return sorted(set(mailboxes.values_list("owner_id", flat=True)))
