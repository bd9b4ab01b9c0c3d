"""Drafts over HTTP: one list of them, Discard in compose and in that list, and a discarded draft's
copies (in a server's Drafts, and the one a sync brought back) go with it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Mailbox
from fetcher.models import (
    Folder,
    FolderRole,
    ImapDeletion,
    ImapMessage,
    Message,
    OutgoingMessage,
    OutgoingState,
)
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db


def save_draft(persona: Persona, subject: str, mailbox: Mailbox | None = None) -> OutgoingMessage:
    data = {
        "mailbox": str((mailbox or persona.mailbox).pk),
        "to": "Bob <bob@example.net>",
        "subject": subject,
        "text": "Yarım kalan",
        "action": "save",
    }
    assert persona.client.post(reverse("compose"), data).status_code == 302
    return OutgoingMessage.objects.get(owner=persona.user, subject=subject)


def server_draft(mailbox: Mailbox, subject: str, **headers: str) -> Message:
    """A message of the mailbox's Drafts folder, as a sync stores it (with where it is on the server)."""
    drafts, _created = Folder.objects.get_or_create(
        mailbox=mailbox, role=FolderRole.DRAFTS, defaults={"name": "Drafts", "uidvalidity": 7}
    )
    extra = "\n".join(f"{name}: {value}" for name, value in headers.items())
    message = stored(mailbox, mail(subject, sender=f"Alice <{mailbox.email_address}>", headers=extra))[0]
    Message.objects.filter(pk=message.pk).update(folder=drafts)
    uid = ImapMessage.objects.filter(folder=drafts).count() + 1
    ImapMessage.objects.create(folder=drafts, uidvalidity=7, uid=uid, message=message)
    return Message.objects.select_related("imap", "folder").get(pk=message.pk)


def imap_mailbox(persona: Persona) -> Mailbox:
    """An IMAP mailbox of theirs that no test server answers: the web process never talks to one."""
    return account_mailbox(
        (f"{persona.name}-imap", "unused"), 993, owner=persona.user, protocol="imap", name="IMAP İş"
    )


def drafts_page(persona: Persona) -> str:
    response = persona.client.get(reverse("mail_view", args=["drafts"]))
    assert response.status_code == 200
    return response.content.decode()


def test_compose_offers_discard_and_discarding_removes_the_draft(alice: Persona) -> None:
    draft = save_draft(alice, "Vazgeçtim")
    page = alice.client.get(reverse("compose_edit", args=[draft.public_id])).content.decode()
    assert 'data-testid="discard"' in page
    assert reverse("compose_discard_edit", args=[draft.public_id]) in page

    response = alice.client.post(reverse("compose_discard_edit", args=[draft.public_id]), follow=True)

    assert response.redirect_chain[0][0] == reverse("mail_view", args=["drafts"])
    assert "Draft discarded." in response.content.decode()
    assert not OutgoingMessage.objects.exists()
    assert "Vazgeçtim" not in drafts_page(alice)


def test_discarding_a_message_never_saved_changes_nothing(alice: Persona) -> None:
    save_draft(alice, "Kalsın")

    response = alice.client.post(reverse("compose_discard"))

    assert response.status_code == 302
    assert OutgoingMessage.objects.count() == 1


def test_undo_send_and_discard_leave_no_draft_behind(alice: Persona) -> None:
    data = {
        "mailbox": str(alice.mailbox.pk),
        "to": "bob@example.net",
        "subject": "Gitmesin",
        "action": "send",
    }
    alice.client.post(reverse("compose"), data)
    outgoing = OutgoingMessage.objects.get()
    assert outgoing.state == OutgoingState.QUEUED

    undone = alice.client.post(reverse("outgoing_undo", args=[outgoing.public_id]), follow=True)
    page = undone.content.decode()
    assert 'data-testid="discard"' in page  # undo leads to the draft, which can be discarded there
    alice.client.post(reverse("compose_discard_edit", args=[outgoing.public_id]))

    assert not OutgoingMessage.objects.exists()
    assert 'data-testid="no-messages"' in drafts_page(alice)
    assert "Gitmesin" not in alice.client.get(reverse("outbox")).content.decode()


def test_a_message_waiting_to_leave_is_not_listed_in_drafts_by_its_server_copy(alice: Persona) -> None:
    mailbox = imap_mailbox(alice)
    draft = save_draft(alice, "Yolda", mailbox)
    server_draft(mailbox, "Yolda", **{"Message-ID": draft.message_id})
    alice.client.post(
        reverse("compose_edit", args=[draft.public_id]),
        {"mailbox": str(mailbox.pk), "to": "bob@example.net", "subject": "Yolda", "action": "send"},
    )
    assert OutgoingMessage.objects.get().state == OutgoingState.QUEUED

    assert "Yolda" not in drafts_page(alice)


def test_a_queued_message_is_not_discarded(alice: Persona) -> None:
    data = {"mailbox": str(alice.mailbox.pk), "to": "bob@example.net", "subject": "Gidiyor", "action": "send"}
    alice.client.post(reverse("compose"), data)
    outgoing = OutgoingMessage.objects.get()

    response = alice.client.post(reverse("compose_discard_edit", args=[outgoing.public_id]))

    assert response["Location"] == reverse("outbox")
    outgoing.refresh_from_db()
    assert outgoing.state == OutgoingState.QUEUED


def test_the_drafts_page_is_one_list_of_both_kinds_newest_first_with_the_same_controls(
    alice: Persona,
) -> None:
    mailbox = imap_mailbox(alice)
    older = server_draft(mailbox, "Sunucudaki eski")
    newer = server_draft(mailbox, "Sunucudaki yeni")
    Message.objects.filter(pk=older.pk).update(sort_date=timezone.now() - timedelta(days=2))
    Message.objects.filter(pk=newer.pk).update(sort_date=timezone.now() + timedelta(hours=1))
    here = save_draft(alice, "Burada yazılan", mailbox)

    page = drafts_page(alice)

    lists = re.findall(r'<ul class="messages[^"]*"[^>]*>(.*?)</ul>', page, flags=re.DOTALL)
    assert len(lists) == 1
    rows = re.findall(r'<li class="message-row.*?</li>', lists[0], flags=re.DOTALL)
    subjects = [re.search(r'class="subject"[^>]*>([^<]*)<', row)[1] for row in rows]  # type: ignore[index]
    assert subjects == ["Sunucudaki yeni", "Burada yazılan", "Sunucudaki eski"]
    boxes = [re.search(r'<input type="checkbox" name="message" value="([^"]+)"', row) for row in rows]
    assert [box[1] if box else None for box in boxes] == [
        str(newer.public_id),
        f"draft:{here.public_id}",
        str(older.public_id),
    ]
    assert reverse("compose_edit", args=[here.public_id]) in rows[1]
    assert 'data-testid="discard-chosen"' in page
    assert 'value="delete"' not in page  # one action for every row: Discard
    assert 'data-testid="own-drafts"' not in page


def test_discard_in_the_list_removes_the_chosen_drafts_of_both_kinds_and_nothing_else(
    alice: Persona, django_capture_on_commit_callbacks: Callable[..., Any], queued_syncs: list[str]
) -> None:
    mailbox = imap_mailbox(alice)
    theirs = server_draft(mailbox, "Başka istemcide yazılan")
    kept = server_draft(mailbox, "Kalacak")
    ours = save_draft(alice, "Burada yazılan")
    inbox = stored(mailbox, mail("Gelen ileti"))[0]

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.client.post(
            reverse("drafts_discard"),
            {
                "message": [f"draft:{ours.public_id}", str(theirs.public_id), str(inbox.public_id)],
                "back": reverse("mail_view", args=["drafts"]),
            },
            follow=True,
        )

    assert "2 drafts discarded." in response.content.decode()
    assert not OutgoingMessage.objects.exists()
    assert set(Message.objects.values_list("subject", flat=True)) == {"Kalacak", "Gelen ileti"}
    assert Message.objects.get(pk=kept.pk).folder.role == FolderRole.DRAFTS
    assert list(ImapDeletion.objects.values_list("uid", "message_id")) == [
        (theirs.imap.uid, theirs.message_id)
    ]
    assert queued_syncs == [str(mailbox.pk)]  # the sync deletes it on the server


def test_a_discarded_imap_draft_leaves_its_server_copies_to_the_next_sync(
    alice: Persona, django_capture_on_commit_callbacks: Callable[..., Any], queued_syncs: list[str]
) -> None:
    mailbox = imap_mailbox(alice)
    draft = save_draft(alice, "Sunucuda da var", mailbox)
    copy = server_draft(mailbox, "Sunucuda da var", **{"Message-ID": draft.message_id})  # synced back here
    drafts = copy.folder
    # outbox.draft_to_server's latest copy, which the sync has not read yet.
    OutgoingMessage.objects.filter(pk=draft.pk).update(server_draft_folder=drafts, server_draft_uid=41)

    with django_capture_on_commit_callbacks(execute=True):
        alice.client.post(reverse("compose_discard_edit", args=[draft.public_id]))

    assert not OutgoingMessage.objects.exists()
    assert not Message.objects.filter(pk=copy.pk).exists()
    assert set(ImapDeletion.objects.values_list("folder", "uidvalidity", "uid", "message_id")) == {
        (drafts.pk, 7, copy.imap.uid, draft.message_id),
        (drafts.pk, 7, 41, draft.message_id),
    }
    assert queued_syncs == [str(mailbox.pk)]


def test_nobody_discards_someone_elses_draft(alice: Persona, bob: Persona) -> None:
    draft = save_draft(alice, "Alice'in taslağı")
    theirs = server_draft(imap_mailbox(alice), "Alice'in sunucudaki taslağı")

    assert bob.client.post(reverse("compose_discard_edit", args=[draft.public_id])).status_code == 404
    for chosen in ([f"draft:{draft.public_id}"], [str(theirs.public_id)], [f"draft:{theirs.public_id}"]):
        assert bob.client.post(reverse("drafts_discard"), {"message": chosen}).status_code == 404
    assert OutgoingMessage.objects.filter(pk=draft.pk).exists()
    assert Message.objects.filter(pk=theirs.pk).exists()
    assert not ImapDeletion.objects.exists()
