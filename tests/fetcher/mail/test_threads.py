"""The conversation rules of fetcher.mail.threads, as plain Python: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fetcher.mail import threads
from fetcher.mail.threads import CAP, Conversations, Mail

DAY = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def mail(
    number: int,
    subject: str = "Proje",
    *,
    sender: str = "ayse@example.com",
    to: tuple[str, ...] = ("alice@example.com",),
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    when: datetime = DAY,
) -> Mail:
    return Mail(
        message_id=f"<{number}@example.com>",
        in_reply_to=in_reply_to,
        references=references,
        subject=subject,
        base_subject=threads.base_subject(subject),
        sender=sender,
        recipients=frozenset(to),
        sort_date=when,
    )


def known(conversations: Conversations, *mails: Mail) -> Conversations:
    """Sizes as the database side would load them: every chain asked about, none stored."""
    for item in mails:
        conversations.know_sizes({}, conversations.probes(conversations.bases(item)))
    return conversations


def test_the_nearest_ancestor_comes_first_in_reply_to_then_references_from_last() -> None:
    item = mail(9, in_reply_to="<3@x>", references=("<1@x>", "<2@x>", "<3@x>", "<9@example.com>"))

    assert item.ancestors == ["<3@x>", "<2@x>", "<1@x>"]  # no duplicate, not itself


def test_a_reply_joins_its_nearest_stored_ancestor_not_the_first_reference() -> None:
    conversations = Conversations()
    conversations.know_message("<2@x>", "<elsewhere@x>")
    conversations.know_message("<1@x>", "<1@x>")
    reply = mail(3, references=("<1@x>", "<2@x>"))

    assert known(conversations, reply).place(reply) == "<elsewhere@x>"


def test_without_a_stored_ancestor_the_key_comes_from_its_own_headers() -> None:
    conversations = Conversations()
    reply = mail(3, in_reply_to="<2@x>", references=("<1@x>", "<2@x>"))
    orphan = mail(4, in_reply_to="<2@x>")
    child = mail(5, in_reply_to="<3@example.com>")  # a reply to the reply just placed
    root = mail(1)

    assert known(conversations, reply).place(reply) == "<1@x>"
    assert known(conversations, orphan).place(orphan) == "<2@x>"
    assert known(conversations, child).place(child) == "<1@x>"
    assert known(conversations, root).place(root) == "<1@example.com>"


def test_segment_keys_name_the_chain_and_come_apart_again() -> None:
    assert threads.segment_key("<kok@x>", 1) == "<kok@x>"
    assert threads.segment_key("<kok@x>", 2) == "<kok@x>#2"
    assert threads.split_key("<kok@x>#12") == ("<kok@x>", 12)
    assert threads.split_key("<kok#2@x>") == ("<kok#2@x>", 1)
    long = "<" + "a" * 995 + ">"
    assert len(threads.segment_key(long, 123)) <= threads.KEY_LENGTH
    assert threads.split_key(threads.segment_key(long, 123))[1] == 123


def test_the_newest_segment_with_room_is_joined_and_a_full_one_starts_the_next() -> None:
    def newest(sizes: dict[str, int]) -> str:
        return threads.newest_segment("<k>", lambda key: sizes.get(key, 0))

    assert newest({}) == "<k>"
    assert newest({"<k>": CAP - 1}) == "<k>"
    assert newest({"<k>": CAP}) == "<k>#2"
    assert newest({"<k>": CAP - 5, "<k>#2": 30}) == "<k>#2"  # the newest, even if an older one has room
    assert newest({"<k>": CAP, "<k>#2": CAP}) == "<k>#3"


def test_a_chain_of_150_fills_one_conversation_of_100_then_another() -> None:
    conversations = Conversations()
    keys = []
    for number in range(150):
        item = mail(number, references=tuple(f"<{n}@example.com>" for n in range(number)))
        keys.append(known(conversations, item).place(item))

    assert keys.count("<0@example.com>") == CAP
    assert keys.count("<0@example.com>#2") == 50


def test_probes_ask_for_two_segments_and_more_only_while_the_last_holds_messages() -> None:
    conversations = Conversations()

    first = conversations.probes(["<k>"])
    conversations.know_sizes({"<k>": CAP, "<k>#2": 7}, first)
    second = conversations.probes(["<k>"])
    conversations.know_sizes({}, second)

    assert first == ["<k>", "<k>#2"]
    assert second == ["<k>#3", "<k>#4"]
    assert conversations.probes(["<k>"]) == []


def test_the_participant_check_leaves_out_the_owners_own_addresses() -> None:
    own = frozenset({"alice@example.com"})
    people = {"ayse@example.com", "alice@example.com"}

    assert threads.shares_participant("ayse@example.com", frozenset(), people, set(), own)
    assert threads.shares_participant(
        "alice@example.com", frozenset({"ayse@example.com"}), people, {"ayse@example.com"}, own
    )
    assert not threads.shares_participant(
        "alice@example.com",
        frozenset({"mehmet@example.com"}),
        people,
        {"ayse@example.com", "alice@example.com"},
        own,
    )
    assert not threads.shares_participant(
        "mehmet@example.com", frozenset({"alice@example.com"}), people, {"alice@example.com"}, own
    )


def subject_conversations(*stored: tuple[Mail, str]) -> Conversations:
    conversations = Conversations(own=frozenset({"alice@example.com"}))
    for item, key in stored:
        conversations.know_subject(item.base_subject, item.sort_date, key)
        conversations.know_people(key, item.sender, item.recipients)
    return conversations


def test_a_headerless_reply_joins_by_subject_within_the_window_and_with_someone_in_common() -> None:
    original = mail(1, "Proje", when=DAY - timedelta(days=29))
    conversations = subject_conversations((original, "<1@example.com>"))
    reply = mail(2, "YNT: Proje", sender="ayse@example.com")

    assert known(conversations, reply).place(reply) == "<1@example.com>"


def test_a_headerless_reply_stays_alone_outside_the_window_or_from_a_stranger() -> None:
    old = subject_conversations((mail(1, "Proje", when=DAY - timedelta(days=31)), "<1@example.com>"))
    recent = subject_conversations((mail(1, "Proje", when=DAY - timedelta(days=1)), "<1@example.com>"))
    late = mail(2, "Re: Proje")
    stranger = mail(3, "Re: Proje", sender="mehmet@example.com")

    assert known(old, late).place(late) == "<2@example.com>"
    assert known(recent, stranger).place(stranger) == "<3@example.com>"


def test_the_newest_conversation_that_shares_a_person_wins() -> None:
    conversations = subject_conversations(
        (mail(1, "Proje", sender="ayse@example.com", when=DAY - timedelta(days=3)), "<1@example.com>"),
        (mail(2, "Proje", sender="mehmet@example.com", when=DAY - timedelta(days=1)), "<2@example.com>"),
    )
    reply = mail(3, "Re: Proje", sender="ayse@example.com")

    assert known(conversations, reply).place(reply) == "<1@example.com>"


def test_a_subject_that_is_not_a_reply_never_joins_by_subject() -> None:
    conversations = Conversations()
    keys = set()
    for number in range(150):
        alert = mail(number, "Security alert: new sign-in", sender="no-reply@accounts.example.com")
        keys.add(known(conversations, alert).place(alert))

    assert len(keys) == 150


def test_a_reply_with_reply_headers_does_not_join_by_subject() -> None:
    conversations = subject_conversations((mail(1, "Proje"), "<1@example.com>"))
    reply = mail(2, "Re: Proje", in_reply_to="<unknown@x>")

    assert not reply.joins_by_subject
    assert known(conversations, reply).place(reply) == "<unknown@x>"
