"""An action on a conversation row acts on the whole conversation as that list holds it (its view, folder or
search), in one bulk change; "Move to" offers and does only what can happen; every action ends with a
notice, and with an Undo (a POST) where it can be undone (issue #13, defects 2 and 3)."""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Mailbox
from fetcher import folders
from fetcher.models import Folder, FolderRole, Message, Pop3Ledger
from fetcher.services import Change, messages_undo
from tests.factories import account_mailbox, imap_mailbox, mail, on_server, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db

LIST = reverse("home")


def conversation(mailbox: Mailbox, size: int, topic: str = "Proje") -> list[Message]:
    """A conversation of `size` messages in the mailbox's INBOX, oldest first (a root and its replies)."""
    root_id = f"<{uuid.uuid4().hex}@example.com>"
    root = stored(mailbox, mail(topic, headers=f"Message-ID: {root_id}", date=_date(0)))
    replies = [
        mail(f"Re: {topic}", headers=f"In-Reply-To: {root_id}\nReferences: {root_id}", date=_date(n))
        for n in range(1, size)
    ]
    found = [*root, *stored(mailbox, *replies)]
    assert len({message.thread_key for message in found}) == 1
    return found


def _date(minute: int) -> str:
    return f"Fri, 27 Nov 2026 10:{minute:02d}:00 +0300"


def rows(html: str) -> list[str]:
    return re.findall(r'data-testid="message-row"', html)


def act(
    client: Client, action: str, chosen: list[Message], *, scope: str | None = "inbox", **fields: str
) -> str:
    """POST the action as the list's form does (its rows conversations, in `scope`; None: a plain
    list) and return the page it leads back to."""
    data: dict[str, Any] = {"action": action, "message": [str(m.public_id) for m in chosen], "back": LIST}
    if scope is not None:
        data |= {"rows": "conversations", "scope": scope}
    response = client.post(reverse("messages_action"), data | fields, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def notices(page: str) -> list[str]:
    """The notices a page shows, as text (an Undo button reads "Undo")."""
    listed = re.search(r'<ul class="flash"[^>]*>(.*?)</ul>', page, re.S)
    items = re.findall(r"<li[^>]*>(.*?)</li>", listed[1], re.S) if listed else []
    return [html.unescape(" ".join(re.sub(r"<[^>]+>", " ", item).split())) for item in items]


def undo(client: Client, html: str) -> str:
    token = re.search(r'name="token" value="([^"]+)"', html)
    assert token is not None, "no Undo in the notice"
    response = client.post(reverse("messages_undo"), {"token": token[1], "back": LIST}, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def states(messages: list[Message]) -> list[tuple[int, bool, bool]]:
    """Each message's folder and flags, in the order given."""
    found = Message.objects.filter(pk__in=[m.pk for m in messages]).values_list(
        "pk", "folder", "seen", "flagged"
    )
    by_pk = {pk: state for pk, *state in found}
    return [tuple(by_pk[m.pk]) for m in messages]  # type: ignore[misc]


def roles(messages: list[Message]) -> list[str]:
    return [Message.objects.select_related("folder").get(pk=m.pk).folder.role for m in messages]


# --- a conversation row stands for its conversation in that list -------------------------------------------


def test_deleting_a_ten_message_conversation_row_moves_all_ten_to_trash_and_the_row_goes(
    alice: Persona,
) -> None:
    thread = conversation(alice.mailbox, 10)
    other = stored(alice.mailbox, mail("Başka", date=_date(30)))[0]
    before = alice.client.get(LIST).content.decode()
    assert len(rows(before)) == 2
    assert '<span class="thread-count">10</span>' in before

    page = act(alice.client, "delete", [thread[-1]])  # the row's checkbox names its newest message

    assert roles(thread) == [FolderRole.TRASH] * 10
    assert roles([other]) == [FolderRole.INBOX]
    assert len(rows(page)) == 1
    assert notices(page) == ["1 conversation moved to Trash. Undo"]


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        ("read", "seen", True),
        ("unread", "seen", False),
        ("star", "flagged", True),
        ("unstar", "flagged", False),
    ],
)
def test_flags_on_a_conversation_row_change_every_message_of_it(
    alice: Persona, action: str, field: str, value: bool
) -> None:
    thread = conversation(alice.mailbox, 4)
    Message.objects.filter(pk__in=[m.pk for m in thread]).update(**{field: not value})

    act(alice.client, action, [thread[-1]])

    assert (
        list(Message.objects.filter(pk__in=[m.pk for m in thread]).values_list(field, flat=True))
        == [value] * 4
    )


def test_archive_and_move_of_a_conversation_row_take_every_message_of_it(alice: Persona) -> None:
    first, second = conversation(alice.mailbox, 3, "Bir"), conversation(alice.mailbox, 3, "İki")
    work = Folder.objects.create(mailbox=alice.mailbox, name="İş", role=FolderRole.OTHER)

    act(alice.client, "archive", [first[-1]])
    act(alice.client, "move", [second[-1]], folder=str(work.public_id))

    assert roles(first) == [FolderRole.ARCHIVE] * 3
    assert {Message.objects.get(pk=m.pk).folder_id for m in second} == {work.pk}


def test_a_row_acts_only_on_the_messages_of_its_conversation_that_its_list_holds(alice: Persona) -> None:
    thread = conversation(alice.mailbox, 4)
    sent = folders.pop3_folder(alice.mailbox, FolderRole.SENT)
    Message.objects.filter(pk=thread[1].pk).update(folder=sent)  # my reply, in Sent: not in All inboxes

    act(alice.client, "archive", [thread[-1]])

    assert roles(thread) == [FolderRole.ARCHIVE, FolderRole.SENT, FolderRole.ARCHIVE, FolderRole.ARCHIVE]


def test_in_one_folders_list_a_row_acts_on_that_folders_messages_of_the_conversation(alice: Persona) -> None:
    thread = conversation(alice.mailbox, 4)
    work = Folder.objects.create(mailbox=alice.mailbox, name="İş", role=FolderRole.OTHER)
    Message.objects.filter(pk__in=[thread[2].pk, thread[3].pk]).update(folder=work)

    act(alice.client, "star", [thread[3]], scope=str(work.public_id))

    assert [Message.objects.get(pk=m.pk).flagged for m in thread] == [False, False, True, True]


def test_in_a_search_a_row_acts_on_the_conversations_messages_the_search_finds(alice: Persona) -> None:
    thread = conversation(alice.mailbox, 3)
    Message.objects.filter(pk=thread[0].pk).update(seen=True)
    query = "is:unread"
    assert len(rows(alice.client.get(reverse("search"), {"q": query}).content.decode())) == 1

    act(alice.client, "star", [thread[-1]], scope="search", q=query)

    assert [Message.objects.get(pk=m.pk).flagged for m in thread] == [False, True, True]


def test_in_the_starred_view_unstarring_a_row_unstars_its_conversations_starred_messages(
    alice: Persona,
) -> None:
    thread = conversation(alice.mailbox, 3)
    Message.objects.filter(pk__in=[thread[0].pk, thread[2].pk]).update(flagged=True)
    sent = folders.pop3_folder(alice.mailbox, FolderRole.SENT)
    Message.objects.filter(pk=thread[0].pk).update(folder=sent)  # starred views hold every folder

    act(alice.client, "unstar", [thread[2]], scope="starred")

    assert not Message.objects.filter(pk__in=[m.pk for m in thread], flagged=True).exists()


def test_the_plain_list_and_the_message_page_act_on_the_chosen_message_only(alice: Persona) -> None:
    thread = conversation(alice.mailbox, 3)

    page = act(alice.client, "archive", [thread[-1]], scope=None)

    assert roles(thread) == [FolderRole.INBOX, FolderRole.INBOX, FolderRole.ARCHIVE]
    assert notices(page) == ["1 message archived. Undo"]


def test_the_list_form_says_its_rows_are_conversations_and_which_list_they_are_in(alice: Persona) -> None:
    conversation(alice.mailbox, 2)
    work = Folder.objects.create(mailbox=alice.mailbox, name="İş", role=FolderRole.OTHER)

    inbox = alice.client.get(LIST).content.decode()
    folder = alice.client.get(reverse("folder", args=[work.public_id])).content.decode()
    found = alice.client.get(reverse("search"), {"q": "proje"}).content.decode()

    assert '<input type="hidden" name="rows" value="conversations">' in inbox
    assert '<input type="hidden" name="scope" value="inbox">' in inbox
    assert f'<input type="hidden" name="scope" value="{work.public_id}">' in folder
    assert '<input type="hidden" name="q" value="proje">' in found
    alice.client.post(reverse("conversations_setting"), {"conversations": "0", "back": LIST})
    assert 'name="rows"' not in alice.client.get(LIST).content.decode()


def test_someone_elses_folder_as_the_scope_is_a_404_and_changes_nothing(alice: Persona, bob: Persona) -> None:
    thread = conversation(alice.mailbox, 2)
    bobs = Folder.objects.create(mailbox=bob.mailbox, name="Bob", role=FolderRole.OTHER)
    data = {"action": "read", "message": [str(thread[-1].public_id)], "rows": "conversations"}

    response = alice.client.post(reverse("messages_action"), data | {"scope": str(bobs.public_id)})

    assert response.status_code == 404
    assert not Message.objects.filter(pk__in=[m.pk for m in thread], seen=True).exists()


def imap_conversations(mailbox: Mailbox, count: int, size: int, start: int) -> list[Message]:
    """`count` conversations of `size` messages with server copies; the newest of each (its row)."""
    newest = []
    for number in range(start, start + count):
        thread = on_server(mailbox, size, start=number * size)
        Message.objects.filter(pk__in=[m.pk for m in thread]).update(thread_key=f"<t{number}@example.com>")
        newest.append(thread[-1])
    return newest


@pytest.mark.parametrize("action", ["read", "star", "archive", "delete", "move"])
def test_acting_on_2_or_20_conversation_rows_sends_the_same_statements_and_one_sync_per_mailbox(
    alice: Persona, queued_syncs: list[str], action: str, django_capture_on_commit_callbacks: Any
) -> None:
    boxes = [imap_mailbox(alice.user, "is"), imap_mailbox(alice.user, "ev")]
    few = [*imap_conversations(boxes[0], 1, 3, 0), *imap_conversations(boxes[1], 1, 3, 0)]
    many = [*imap_conversations(boxes[0], 10, 3, 1), *imap_conversations(boxes[1], 10, 3, 1)]
    fields = {"folder": "role:junk"} if action == "move" else {}
    folders.role_folder(boxes[0], FolderRole.JUNK), folders.role_folder(boxes[1], FolderRole.JUNK)

    statements = []
    alice.client.get(LIST)  # signed in, language recorded: what every request after it skips
    for chosen in (few, many):
        queued_syncs.clear()
        data = {"action": action, "message": [str(m.public_id) for m in chosen], **fields}
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as sent:
            posted = alice.client.post(
                reverse("messages_action"), data | {"rows": "conversations", "scope": "inbox"}
            )
        assert posted.status_code == 302
        statements.append(len(sent.captured_queries))
        assert sorted(queued_syncs) == sorted(str(box.id) for box in boxes)

    assert statements[0] == statements[1]
    changed = Message.objects.filter(mailbox__in=boxes)
    assert changed.count() == 66
    if action == "read":
        assert not changed.filter(seen=False).exists()
    elif action == "star":
        assert not changed.filter(flagged=False).exists()
    else:
        assert set(changed.values_list("folder__role", flat=True)) == {
            {"archive": FolderRole.ARCHIVE, "delete": FolderRole.TRASH, "move": FolderRole.JUNK}[action]
        }


# --- "Move to": only what can happen -----------------------------------------------------------------------


def test_a_move_into_another_mailboxs_folder_moves_nothing_and_says_why(alice: Persona) -> None:
    mine = conversation(alice.mailbox, 2)
    other = account_mailbox(("alice-ev", "unused"), 995, owner=alice.user, name="Ev")
    there = Folder.objects.create(mailbox=other, name="Faturalar", role=FolderRole.OTHER)

    page = act(alice.client, "move", [mine[-1]], folder=str(there.public_id))

    assert roles(mine) == [FolderRole.INBOX, FolderRole.INBOX]
    assert notices(page) == [
        "Nothing was moved: “Faturalar” is a folder of Ev, and 2 of the chosen messages are in another"
        " mailbox. Choose a folder of their own mailbox, or one under “Each message's own mailbox”."
    ]


def test_a_move_by_role_takes_each_message_to_its_own_mailboxs_folder(alice: Persona) -> None:
    mine = conversation(alice.mailbox, 2)
    other = account_mailbox(("alice-ev", "unused"), 995, owner=alice.user, name="Ev")
    theirs = stored(other, mail("Ev işi"))[0]

    page = act(alice.client, "move", [mine[-1], theirs], folder="role:archive")

    placed = Message.objects.filter(pk__in=[mine[0].pk, mine[1].pk, theirs.pk]).select_related("folder")
    assert {(m.mailbox_id, m.folder.role) for m in placed} == {
        (alice.mailbox.id, FolderRole.ARCHIVE),
        (other.id, FolderRole.ARCHIVE),
    }
    assert notices(page) == ["2 conversations moved to Archive. Undo"]


def move_menu(client: Client, url: str) -> str:
    found = re.search(r"<select name=\"folder\".*?</select>", client.get(url).content.decode(), re.S)
    assert found is not None
    return found[0]


def test_the_move_menu_offers_only_folders_the_messages_can_go_to(alice: Persona) -> None:
    message = conversation(alice.mailbox, 1)[0]
    other = account_mailbox(("alice-ev", "unused"), 995, owner=alice.user, name="Ev")
    stored(other, mail("Ev işi"))
    folders.pop3_folder(other, FolderRole.ARCHIVE)
    mine = folders.pop3_folder(alice.mailbox, FolderRole.ARCHIVE)
    imap = imap_mailbox(alice.user, "is")
    Folder.objects.create(mailbox=imap, name="Sent (Postane)", role=FolderRole.SENT, local=True)

    everywhere = move_menu(alice.client, LIST)
    one = move_menu(alice.client, reverse("message", args=[message.public_id]))
    in_folder = move_menu(alice.client, reverse("folder", args=[mine.public_id]))

    assert 'data-testid="move-roles"' in everywhere
    assert everywhere.count("<optgroup") == 4  # the roles, then each of the three mailboxes
    assert f'data-mailbox="{other.id}"' in everywhere
    assert "Sent (Postane)" not in everywhere  # Postane's own folder: the server cannot take messages there
    for page in (one, in_folder):
        assert page.count("<optgroup") == 1
        assert f'<optgroup label="{alice.mailbox.name}" data-mailbox="{alice.mailbox.id}">' in page
        assert 'data-testid="move-roles"' not in page


def test_a_move_without_a_folder_or_an_action_without_messages_says_what_is_missing(alice: Persona) -> None:
    message = conversation(alice.mailbox, 1)[0]

    no_folder = act(alice.client, "move", [message], folder="")
    nothing = act(alice.client, "archive", [])

    assert notices(no_folder) == ["Choose a folder to move them to."]
    assert notices(nothing) == ["Choose messages first."]
    assert roles([message]) == [FolderRole.INBOX]


# --- notices and Undo --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "notice"),
    [
        ("read", "2 conversations marked as read."),
        ("unread", "2 conversations marked as unread."),
        ("star", "2 conversations starred."),
        ("unstar", "2 conversations unstarred."),
        ("archive", "2 conversations archived."),
        ("delete", "2 conversations moved to Trash."),
    ],
)
def test_every_action_ends_with_a_notice_and_its_undo_puts_everything_back(
    alice: Persona, action: str, notice: str
) -> None:
    chosen = [conversation(alice.mailbox, 3, "Bir"), conversation(alice.mailbox, 2, "İki")]
    every = [m for thread in chosen for m in thread]
    if action in {"read", "unstar"}:  # so that there is something to change
        Message.objects.filter(pk__in=[m.pk for m in every]).update(seen=False, flagged=True)
    if action == "unread":
        Message.objects.filter(pk__in=[m.pk for m in every]).update(seen=True)
    before = states(every)

    page = act(alice.client, action, [thread[-1] for thread in chosen])
    assert notices(page) == [f"{notice} Undo"]
    assert all(state != old for state, old in zip(states(every), before, strict=True))
    undone = undo(alice.client, page)

    assert states(every) == before
    assert notices(undone) == ["Undone."]


def test_undo_of_a_delete_on_pop3_keeps_the_server_copy(alice: Persona) -> None:
    mailbox = account_mailbox(("alice-sil", "unused"), 995, owner=alice.user, pop3_delete_with_local=True)
    thread = conversation(mailbox, 2)

    page = act(alice.client, "delete", [thread[-1]])
    assert Pop3Ledger.objects.filter(message__in=[m.pk for m in thread], delete_requested=True).count() == 2
    undo(alice.client, page)

    assert roles(thread) == [FolderRole.INBOX, FolderRole.INBOX]
    assert not Pop3Ledger.objects.filter(message__in=[m.pk for m in thread], delete_requested=True).exists()


def test_deleting_in_the_trash_is_for_good_and_offers_no_undo(alice: Persona) -> None:
    thread = conversation(alice.mailbox, 2)
    trash = folders.pop3_folder(alice.mailbox, FolderRole.TRASH)
    Message.objects.filter(pk__in=[m.pk for m in thread]).update(folder=trash)

    page = act(alice.client, "delete", [thread[-1]], scope="trash")

    assert not Message.objects.filter(pk__in=[m.pk for m in thread]).exists()
    assert notices(page) == ["1 conversation deleted for good."]
    assert 'data-testid="undo"' not in page


def test_an_old_notices_undo_does_not_undo_a_later_action(alice: Persona) -> None:
    first, second = conversation(alice.mailbox, 2, "Bir"), conversation(alice.mailbox, 2, "İki")
    old = act(alice.client, "archive", [first[-1]])
    act(alice.client, "star", [second[-1]])

    page = undo(alice.client, old)

    assert notices(page) == ["That can no longer be undone."]
    assert roles(first) == [FolderRole.ARCHIVE, FolderRole.ARCHIVE]
    assert all(Message.objects.get(pk=m.pk).flagged for m in second)


def test_undo_is_post_only_and_reverses_only_the_owners_own_messages(alice: Persona, bob: Persona) -> None:
    alices = conversation(alice.mailbox, 1)[0]
    inbox = alices.folder
    archive = folders.pop3_folder(alice.mailbox, FolderRole.ARCHIVE)
    Message.objects.filter(pk=alices.pk).update(folder=archive, seen=True)
    forged = Change(moved_from={alices.pk: inbox.pk}, flags={"seen": False}, flagged=(alices.pk,))

    assert alice.client.get(reverse("messages_undo")).status_code == 405
    messages_undo(owner=bob.user, change=forged)

    assert roles([alices]) == [FolderRole.ARCHIVE]
    assert Message.objects.get(pk=alices.pk).seen


def test_marking_read_on_open_leaves_no_notice(alice: Persona) -> None:
    message = conversation(alice.mailbox, 1)[0]
    data = {"action": "read", "message": [str(message.public_id)], "notice": "0", "back": LIST}

    page = alice.client.post(reverse("messages_action"), data, follow=True).content.decode()

    assert Message.objects.get(pk=message.pk).seen
    assert notices(page) == []
