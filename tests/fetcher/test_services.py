"""An action on many messages is a set: one statement for all of them and one sync per IMAP mailbox,
doing exactly what the action does to one message (pending flags and moves, role folders, counts)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Mailbox, User
from fetcher.models import Folder, FolderRole, ImapDeletion, Message, Pop3Ledger
from tests.factories import account_mailbox, counted, imap_mailbox, kept, mail, on_server, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def alice_chose_english(alice: Persona) -> None:
    """Her language already recorded: no request of a test writes it (webmail.middleware)."""
    User.objects.filter(pk=alice.user.pk).update(language="en")


def act(client: Client, action: str, messages: list[Message], **fields: str) -> CaptureQueriesContext:
    """POST the action on these messages and commit; the statements it sent."""
    data = {"action": action, "message": [str(m.public_id) for m in messages], **fields}
    with CaptureQueriesContext(connection) as statements:
        assert client.post(reverse("messages_action"), data).status_code == 302
    return statements


ACTIONS: dict[str, Callable[[list[Mailbox]], dict[str, str]]] = {
    "read": lambda boxes: {},
    "unread": lambda boxes: {},
    "star": lambda boxes: {},
    "archive": lambda boxes: {},
    "delete": lambda boxes: {},
    # Across mailboxes a move names a role: each message goes to its own mailbox's folder of that role
    # (a folder takes its own mailbox's messages only: tests/webmail/views/test_conversation_actions.py).
    "move": lambda boxes: {"folder": "role:trash"},
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_an_action_costs_the_same_statements_for_4_or_40_messages_and_queues_one_sync_per_mailbox(
    alice: Persona, queued_syncs: list[str], action: str, django_capture_on_commit_callbacks: Any
) -> None:
    boxes = [imap_mailbox(alice.user, "is"), imap_mailbox(alice.user, "ev")]
    few = [*on_server(boxes[0], 2), *on_server(boxes[1], 2)]
    many = [*on_server(boxes[0], 20, start=2), *on_server(boxes[1], 20, start=2)]
    Message.objects.filter(pk__in=[m.pk for m in few + many]).update(seen=action == "unread")

    with django_capture_on_commit_callbacks(execute=True):
        for_few = len(act(alice.client, action, few, **ACTIONS[action](boxes)))
    queued_for_few = sorted(queued_syncs)
    queued_syncs.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for_many = len(act(alice.client, action, many, **ACTIONS[action](boxes)))

    assert for_many == for_few
    assert sorted(queued_syncs) == queued_for_few == sorted(str(box.id) for box in boxes)


def test_marking_40_messages_read_is_one_update_that_records_the_flag_for_the_imap_push(
    alice: Persona, queued_syncs: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    boxes = [imap_mailbox(alice.user, "is"), imap_mailbox(alice.user, "ev")]
    chosen = [*on_server(boxes[0], 20), *on_server(boxes[1], 20)]
    Message.objects.filter(pk=chosen[0].pk).update(pending_flags={"flagged": True})
    Message.objects.filter(pk=chosen[1].pk).update(seen=True)  # already read: nothing to push

    with django_capture_on_commit_callbacks(execute=True):
        statements = act(alice.client, "read", chosen)

    sql = [query["sql"] for query in statements.captured_queries]
    assert len([line for line in sql if line.startswith('UPDATE "fetcher_message"')]) == 1
    pending = dict(Message.objects.filter(pk__in=[m.pk for m in chosen]).values_list("pk", "pending_flags"))
    assert pending[chosen[0].pk] == {"flagged": True, "seen": True}
    assert pending[chosen[1].pk] == {}
    assert all(pending[m.pk] == {"seen": True} for m in chosen[2:])
    assert not Message.objects.filter(pk__in=[m.pk for m in chosen], seen=False).exists()
    assert kept() == counted()
    assert sorted(queued_syncs) == sorted(str(box.id) for box in boxes)


def test_deleting_many_moves_them_to_each_mailboxs_trash_then_deletes_them_for_good(
    alice: Persona, queued_syncs: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    boxes = [imap_mailbox(alice.user, "is"), imap_mailbox(alice.user, "ev")]
    chosen = [*on_server(boxes[0], 3), *on_server(boxes[1], 3)]
    local = stored(boxes[1], mail("Yalnız burada"))[0]  # no server copy: nothing to move there
    chosen.append(local)

    with django_capture_on_commit_callbacks(execute=True):
        act(alice.client, "delete", chosen)

    moved = Message.objects.filter(pk__in=[m.pk for m in chosen]).select_related("folder")
    assert {(m.mailbox_id, m.folder.name) for m in moved} == {(boxes[0].id, "Trash"), (boxes[1].id, "Trash")}
    assert {m.pk for m in moved if m.pending_move} == {m.pk for m in chosen if m.pk != local.pk}
    assert kept() == counted()

    with django_capture_on_commit_callbacks(execute=True):
        act(alice.client, "delete", list(moved))  # in the Trash: for good

    assert not Message.objects.filter(pk__in=[m.pk for m in chosen]).exists()
    # Each server copy is left for the next sync to expunge, where the server has it.
    assert sorted(ImapDeletion.objects.values_list("folder__mailbox__name", "uid")) == sorted(
        (box.name, uid) for box in boxes for uid in (1, 2, 3)
    )
    assert kept() == counted()
    assert sorted(queued_syncs) == sorted([str(box.id) for box in boxes] * 2)


def test_deleting_some_in_the_trash_and_some_not_still_queues_one_sync_per_mailbox(
    alice: Persona, queued_syncs: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    box = imap_mailbox(alice.user, "is")
    trashed, kept_in_inbox = on_server(box, 2), on_server(box, 2, start=2)
    Message.objects.filter(pk__in=[m.pk for m in trashed]).update(
        folder=Folder.objects.get(mailbox=box, role=FolderRole.TRASH)
    )

    with django_capture_on_commit_callbacks(execute=True):
        act(alice.client, "delete", [*trashed, *kept_in_inbox])

    assert not Message.objects.filter(pk__in=[m.pk for m in trashed]).exists()
    assert set(Message.objects.values_list("folder__role", flat=True)) == {FolderRole.TRASH}
    assert queued_syncs == [str(box.id)]


def test_archiving_many_takes_each_to_its_own_mailboxs_archive_and_pop3_stays_local(
    alice: Persona, queued_syncs: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    imap = imap_mailbox(alice.user, "is")
    pop3 = account_mailbox(("ev", "unused"), 995, owner=alice.user)
    chosen = [*on_server(imap, 2), *stored(pop3, mail("Bir"), mail("İki"))]

    with django_capture_on_commit_callbacks(execute=True):
        act(alice.client, "archive", chosen)

    placed = Message.objects.filter(pk__in=[m.pk for m in chosen]).select_related("folder")
    assert {(m.mailbox_id, m.folder.role, m.pending_move) for m in placed} == {
        (imap.id, FolderRole.ARCHIVE, True),
        (pop3.id, FolderRole.ARCHIVE, False),
    }
    assert queued_syncs == [str(imap.id)]  # POP3 has nothing on the server to change


def test_deleting_pop3_mail_with_delete_on_server_marks_every_ledger_row(
    alice: Persona, queued_syncs: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    pop3 = account_mailbox(("ev", "unused"), 995, owner=alice.user, pop3_delete_with_local=True)
    chosen = stored(pop3, mail("Bir"), mail("İki"), mail("Üç"))

    with django_capture_on_commit_callbacks(execute=True):
        act(alice.client, "delete", chosen[:2])

    assert set(Pop3Ledger.objects.filter(delete_requested=True).values_list("message_id", flat=True)) == {
        chosen[0].pk,
        chosen[1].pk,
    }
    assert queued_syncs == []


def test_one_message_that_is_not_yours_among_many_changes_nothing(alice: Persona, bob: Persona) -> None:
    mine = on_server(imap_mailbox(alice.user, "is"), 3)
    bobs = on_server(imap_mailbox(bob.user, "bob"), 1)
    ids = [str(m.public_id) for m in mine]

    for other in (str(bobs[0].public_id), str(uuid.uuid4()), "not an id"):
        response = alice.client.post(reverse("messages_action"), {"action": "read", "message": [*ids, other]})
        assert response.status_code == 404, other
    assert not Message.objects.filter(seen=True).exists()
