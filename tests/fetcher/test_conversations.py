"""Conversations as stage two, `rethread` and `reindex` leave them in PostgreSQL (fetcher.conversations)."""

from __future__ import annotations

import threading
from collections import Counter
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Mailbox
from fetcher import conversations, enqueue, folders, selectors
from fetcher.ingest import parsing, storing
from fetcher.models import Message
from tests import plans
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db

AYSE = "Ayşe Yılmaz <ayse@example.com>"
MEHMET = "Mehmet Demir <mehmet@example.com>"


@pytest.fixture
def mailbox(alice: Persona) -> Mailbox:
    return alice.mailbox  # alice@example.com


def ids(*names: str) -> str:
    return " ".join(f"<{name}@example.com>" for name in names)


def keyed(
    name: str,
    subject: str = "Proje",
    headers: str = "",
    *,
    sender: str = AYSE,
    to: str = "alice@example.com",
    date: str = "27 Nov 2026 10:00:00 +0300",
) -> bytes:
    """A message whose Message-ID is <name@example.com>."""
    return mail(subject, headers=f"Message-ID: {ids(name)}\n{headers}", sender=sender, to=to, date=date)


def key_of(name: str) -> str:
    return Message.objects.get(message_id=ids(name)).thread_key


def day(number: int) -> str:
    """The Date header of that day of November 2026; a number past 30 runs on into December."""
    month, number = ("Nov", number) if number <= 30 else ("Dec", number - 30)
    return f"{number:02d} {month} 2026 10:00:00 +0300"


def chain(count: int, first: int = 0) -> list[bytes]:
    """Messages n of a References chain rooted at <c0@example.com>, each replying to n - 1."""
    return [
        keyed(
            f"c{n}",
            "Re: Zincir" if n else "Zincir",
            f"In-Reply-To: {ids(f'c{n - 1}')}\nReferences: {ids(*(f'c{r}' for r in range(n)))}" if n else "",
        )
        for n in range(first, first + count)
    ]


def test_a_reply_whose_references_name_only_its_parent_joins_the_parents_conversation(
    mailbox: Mailbox,
) -> None:
    stored(mailbox, keyed("a"), keyed("b", "Re: Proje", f"In-Reply-To: {ids('a')}\nReferences: {ids('a')}"))

    stored(mailbox, keyed("c", "Re: Proje", f"References: {ids('b')}"))  # a client that kept only the parent

    assert key_of("a") == key_of("b") == key_of("c") == ids("a")


def test_a_reply_joins_its_parent_in_another_mailbox_of_the_owner_never_someone_elses(
    mailbox: Mailbox,
) -> None:
    work = account_mailbox(("alice-work", "unused"), 995, owner=mailbox.owner)
    bob = account_mailbox(("bob", "unused"), 995)
    stored(mailbox, keyed("a"), keyed("b", "Re: Proje", f"References: {ids('a')}"))
    stored(bob, keyed("x", "Re: Proje", f"References: {ids('bobs-root')}"))

    stored(work, keyed("c", "Re: Proje", f"References: {ids('b')}"))
    stored(work, keyed("d", "Re: Proje", f"In-Reply-To: {ids('x')}"))  # bob has <x>, alice has not

    assert key_of("c") == ids("a")
    assert key_of("d") == ids("x")


def test_a_reply_naming_only_its_parent_joins_it_when_both_come_in_one_batch(mailbox: Mailbox) -> None:
    stored(mailbox, keyed("a"))

    stored(
        mailbox,
        keyed("b", "Re: Proje", f"In-Reply-To: {ids('a')}\nReferences: {ids('a')}"),
        keyed("c", "Re: Proje", f"In-Reply-To: {ids('b')}"),
    )

    assert key_of("c") == ids("a")


def test_replies_that_arrive_before_their_parent_meet_it_when_it_comes(mailbox: Mailbox) -> None:
    stored(mailbox, keyed("b", "Re: Proje", f"In-Reply-To: {ids('a')}\nReferences: {ids('a')}"))

    stored(mailbox, keyed("a"))

    assert key_of("a") == key_of("b") == ids("a")


def test_a_headerless_reply_joins_the_recent_conversation_of_someone_it_shares(mailbox: Mailbox) -> None:
    stored(mailbox, keyed("ayse", sender=AYSE, date=day(17)), keyed("mehmet", sender=MEHMET, date=day(26)))

    stored(mailbox, keyed("reply", "YNT: Proje", sender=AYSE, date=day(27)))  # Outlook dropped the headers

    assert key_of("reply") == ids("ayse")  # not Mehmet's newer one: he is not in this exchange
    assert key_of("mehmet") == ids("mehmet")


def test_the_owners_own_headerless_reply_joins_only_a_conversation_with_its_recipient(
    mailbox: Mailbox,
) -> None:
    stored(mailbox, keyed("ayse", sender=AYSE, date=day(20)))

    stored(
        mailbox,
        keyed("to-ayse", "Re: Proje", sender="alice@example.com", to=AYSE, date=day(21)),
        keyed("to-mehmet", "Re: Proje", sender="alice@example.com", to=MEHMET, date=day(22)),
    )

    assert key_of("to-ayse") == ids("ayse")
    assert key_of("to-mehmet") == ids("to-mehmet")  # alice is in everything she reads: she does not count


def test_a_headerless_reply_after_the_window_starts_a_conversation_of_its_own(mailbox: Mailbox) -> None:
    stored(mailbox, keyed("old", sender=AYSE, date=day(1)))

    stored(mailbox, keyed("late", "Re: Proje", sender=AYSE, date=day(33)))  # 32 days later

    assert key_of("late") == ids("late")


def test_a_headerless_reply_from_an_unrelated_sender_starts_a_conversation_of_its_own(
    mailbox: Mailbox,
) -> None:
    stored(mailbox, keyed("ayse", sender=AYSE, date=day(26)))

    stored(mailbox, keyed("stranger", "Re: Proje", sender=MEHMET, date=day(27)))

    assert key_of("stranger") == ids("stranger")


def test_150_notifications_with_one_subject_make_150_conversations(mailbox: Mailbox) -> None:
    alerts = [
        mail(
            "Security alert: new sign-in",
            sender="Google <no-reply@accounts.example.com>",
            date=day(1 + n % 28),
        )
        for n in range(150)
    ]

    stored(mailbox, *alerts[:70])
    stored(mailbox, *alerts[70:])

    assert Message.objects.values("thread_key").distinct().count() == 150


def test_forwards_of_one_subject_over_the_years_are_not_one_conversation(mailbox: Mailbox) -> None:
    colleagues = [f"Şube {n} <sube{n}@example.com>" for n in range(3)]
    forwards = [
        mail(
            "İLT: Iğdır şubesi açılışı",
            sender=colleagues[n % 3],
            date=f"10 Nov {2020 + n // 3} 10:00:00 +0300",
        )
        for n in range(12)
    ]

    for forward in forwards:
        stored(mailbox, forward)

    assert Message.objects.values("thread_key").distinct().count() == 12


def test_a_chain_of_150_makes_a_conversation_of_100_and_one_of_50(mailbox: Mailbox) -> None:
    stored(mailbox, *chain(120))  # in chunks of 50: counted across chunks and within one
    stored(mailbox, *chain(30, first=120))  # counted from what is stored

    sizes = Counter(Message.objects.values_list("thread_key", flat=True))

    assert sizes == {ids("c0"): 100, ids("c0") + "#2": 50}
    assert key_of("c99") == ids("c0")
    assert key_of("c100") == ids("c0") + "#2"


def fill(mailbox: Mailbox, count: int) -> None:
    """`count` more messages in the mailbox, each its own conversation, over the years before 2026."""
    columns = [
        field.column for field in Message._meta.concrete_fields if field.column not in {"id", "public_id"}
    ]
    varied = {
        "message_id": "'<dolgu.' || n || '@example.com>'",
        "thread_key": "'<dolgu.' || n || '@example.com>'",
        "base_subject": "'dolgu ' || n",
        "sort_date": "sort_date - n * interval '3 hours'",
    }
    chosen = ", ".join(varied.get(str(column), f'"{column}"') for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO fetcher_message (public_id, {', '.join(f'"{c}"' for c in columns)})"  # noqa: S608
            f" SELECT gen_random_uuid(), {chosen} FROM fetcher_message, generate_series(1, %s) AS n"
            " WHERE id = (SELECT min(id) FROM fetcher_message WHERE mailbox_id = %s)",
            [count, mailbox.pk],
        )
        cursor.execute("ANALYZE fetcher_message")


INTENDED = {  # how a lookup names what it looks for -> the index it must use
    '"fetcher_message"."message_id" IN (': "fetcher_message_message_id",
    '"fetcher_message"."base_subject" IN (': "message_base_subject",
    '"fetcher_message"."thread_key" IN (': "message_thread_folder",
    "m.thread_key = probe.key": "message_thread_folder",
}


def test_a_message_parsed_again_in_a_full_conversation_keeps_its_place(mailbox: Mailbox) -> None:
    stored(mailbox, *chain(100))
    root = Message.objects.get(message_id=ids("c0"))

    parsing.parse_messages([root.pk])  # a retried task: it does not count itself

    assert key_of("c0") == ids("c0")
    assert Message.objects.filter(thread_key=ids("c0")).count() == 100


@pytest.mark.django_db(transaction=True)
def test_a_task_places_each_chunk_once_the_chunk_before_it_is_committed(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)  # parsed here, outside a transaction
    batch = [storing.Fetched(f"u{n}", raw) for n, raw in enumerate(chain(150))]
    new = storing.store_pop3_batch(mailbox=mailbox, folder=folders.inbox_of(mailbox), batch=batch)
    # The writer holds each chunk back until the next one is parsed, so a placement that did not
    # wait for the chunk before it would find it uncommitted.
    parsed = [threading.Event() for _ in range(8)]
    calls = {"parse": 0, "store": 0}
    committed_when_placed: list[int] = []

    def parse(part: list[int], original: Any = parsing._parse_chunk) -> Any:
        chunk = original(part)
        parsed[calls["parse"]].set()
        calls["parse"] += 1
        return chunk

    def store(chunk: Any, original: Any = parsing._store_parsed) -> int:
        calls["store"] += 1
        assert parsed[min(calls["store"], 7)].wait(timeout=60)
        return int(original(chunk))

    def place(messages: Any, original: Any = conversations.place, **options: Any) -> None:
        committed_when_placed.append(
            Message.objects.filter(id__in=new).exclude(parse_state="pending").count()
        )
        original(messages, **options)

    monkeypatch.setattr(parsing, "_parse_chunk", parse)
    monkeypatch.setattr(parsing, "_store_parsed", store)
    monkeypatch.setattr(conversations, "place", place)

    assert parsing.parse_messages(new, chunk=20) == 150

    assert committed_when_placed == [0, 20, 40, 60, 80, 100, 120, 140]
    sizes = Counter(Message.objects.values_list("thread_key", flat=True))
    assert sizes == {ids("c0"): 100, ids("c0") + "#2": 50}


@pytest.mark.parametrize("statistics", ["analysed", "analysed before parsing"])
def test_every_conversation_lookup_goes_through_its_index_in_a_large_mailbox(
    mailbox: Mailbox, statistics: str
) -> None:
    stored(mailbox, keyed("a", sender=AYSE, date=day(20)), *chain(3))
    fill(mailbox, 20_000)
    if statistics == "analysed before parsing":  # a large first sync's stage two: no keys when analysed
        plans.analysed_before_parsing()
    reparsed = list(Message.objects.filter(message_id__startswith="<c").select_related("mailbox"))
    stored(mailbox, keyed("reply", "Re: Proje", sender=AYSE, date=day(21)))
    reply = Message.objects.select_related("mailbox").get(message_id=ids("reply"))

    with CaptureQueriesContext(connection) as queries:
        conversations.place([*reparsed, reply])  # stage two
        conversations.place([reply], before=reply)  # rethread

    looked_up = [query["sql"] for query in queries if "fetcher_message" in query["sql"]]
    assert len(looked_up) == 7  # ancestors, subjects, people, sizes; subjects, people, sizes
    with connection.cursor() as cursor:
        for sql in looked_up:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            [index] = [index for looks, index in INTENDED.items() if looks in sql]
            assert index in plan, f"{sql}\n{plan}"
            assert "Seq Scan on fetcher_message" not in plan, f"{sql}\n{plan}"


def old_keys(mailbox: Mailbox) -> None:
    """Keys as the rules before #11 left them: one conversation per reply subject, chains by References[0]."""
    messages = Message.objects.filter(mailbox=mailbox)
    messages.filter(subject__contains="Proje").update(thread_key=ids("old"))
    messages.filter(subject="Security alert: new sign-in").update(thread_key=ids("alert-0"))
    messages.filter(subject__contains="Zincir").update(thread_key=ids("c0"))


def test_rethread_derives_the_keys_of_old_conversations_again_and_twice_changes_nothing(
    mailbox: Mailbox,
) -> None:
    bob = account_mailbox(("bob", "unused"), 995)
    stored(
        mailbox, keyed("old", sender=AYSE, date=day(1)), keyed("late", "Re: Proje", sender=AYSE, date=day(33))
    )
    stored(mailbox, *[keyed(f"alert-{n}", "Security alert: new sign-in", date=day(2)) for n in range(5)])
    stored(mailbox, *chain(120))
    stored(bob, keyed("bob", "Security alert: new sign-in"))
    expected = dict(Message.objects.values_list("id", "thread_key"))
    old_keys(mailbox)
    Message.objects.filter(mailbox=bob).update(thread_key="<untouched@example.com>")

    out = StringIO()
    call_command("rethread", "--mailbox", str(mailbox.pk), "--batch", "40", stdout=out)

    now = dict(Message.objects.values_list("id", "thread_key"))
    assert {pk: key for pk, key in now.items() if pk in expected and key != expected[pk]} == {
        Message.objects.get(mailbox=bob).pk: "<untouched@example.com>"  # another owner: not asked for
    }
    assert Counter(now.values())[ids("c0") + "#2"] == 20
    assert ": 25 messages changed" in out.getvalue()  # late, 4 alerts, 20 of the chain (the rest kept theirs)
    call_command("rethread", stdout=out)
    assert (
        dict(Message.objects.filter(mailbox=mailbox).values_list("id", "thread_key")).items() <= now.items()
    )
    assert out.getvalue().endswith("1 messages changed conversation\n")  # only bob's, once


def test_reindex_derives_the_conversations_again_after_reparsing(mailbox: Mailbox) -> None:
    stored(
        mailbox, keyed("old", sender=AYSE, date=day(1)), keyed("late", "Re: Proje", sender=AYSE, date=day(33))
    )
    stored(mailbox, *chain(120))
    old_keys(mailbox)

    call_command("reindex", stdout=StringIO())

    sizes = Counter(Message.objects.values_list("thread_key", flat=True))
    assert sizes == {ids("old"): 1, ids("late"): 1, ids("c0"): 100, ids("c0") + "#2": 20}


def test_a_message_in_two_of_the_owners_mailboxes_shows_once_in_its_conversation(mailbox: Mailbox) -> None:
    work = account_mailbox(("alice-work", "unused"), 995, owner=mailbox.owner)
    stored(mailbox, keyed("a"), keyed("b", "Re: Proje", f"References: {ids('a')}"))
    stored(work, keyed("b", "Re: Proje", f"References: {ids('a')}"))  # the same message, Cc'd to both
    copies = Message.objects.filter(message_id=ids("b")).select_related("mailbox").order_by("id")
    assert copies.count() == 2
    assert len({copy.thread_key for copy in copies}) == 1

    for opened in copies:
        shown = selectors.conversation_of(opened)

        assert [message.message_id for message in shown] == [ids("a"), ids("b")]
        assert opened in shown  # the copy that was opened is the one shown
