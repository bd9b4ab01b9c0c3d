"""The Drafts view's pages: drafts written here and the servers' drafts as one list, newest first,
each row once across pages however the two kinds interleave."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fetcher import outbox
from fetcher.models import Folder, FolderRole, Message, OutgoingMessage
from fetcher.selectors import Cursor, page_of_drafts
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona

pytestmark = pytest.mark.django_db


def walk(persona: Persona, folders: list[int], limit: int) -> list[str]:
    shown: list[str] = []
    after: Cursor | None = None
    for _page in range(50):
        page = page_of_drafts(persona.user, folders, after, limit)
        shown += [row.subject for row in page.rows]
        if page.next is None:
            return shown
        after = page.next
    pytest.fail("the pages never ended")


@pytest.mark.parametrize("limit", [1, 2, 3, 50])
def test_both_kinds_interleave_newest_first_each_row_once(alice: Persona, limit: int) -> None:
    mailbox = account_mailbox(("alice-imap", "unused"), 993, owner=alice.user, protocol="imap")
    drafts = Folder.objects.create(mailbox=mailbox, name="Drafts", role=FolderRole.DRAFTS)
    now = timezone.now()
    # Server drafts at hours 0, 3, 4, 5; drafts written here at hours 1, 2, 6, 7 (newest last).
    for hour in (0, 3, 4, 5):
        message = stored(mailbox, mail(f"s{hour}"))[0]
        Message.objects.filter(pk=message.pk).update(
            folder=drafts, sort_date=now - timedelta(hours=10 - hour)
        )
    for hour in (1, 2, 6, 7):
        draft = outbox.outgoing_save(owner=alice.user, mailbox=mailbox, values={"subject": f"d{hour}"})
        OutgoingMessage.objects.filter(pk=draft.pk).update(updated_at=now - timedelta(hours=10 - hour))

    assert walk(alice, [drafts.pk], limit) == ["d7", "d6", "s5", "s4", "s3", "d2", "d1", "s0"]


def test_a_servers_copy_of_a_message_written_here_is_not_listed_beside_it(alice: Persona) -> None:
    mailbox = account_mailbox(("alice-imap", "unused"), 993, owner=alice.user, protocol="imap")
    drafts = Folder.objects.create(mailbox=mailbox, name="Drafts", role=FolderRole.DRAFTS)
    draft = outbox.outgoing_save(owner=alice.user, mailbox=mailbox, values={"subject": "Tek"})
    copy = stored(mailbox, mail("Tek", headers=f"Message-ID: {draft.message_id}"))[0]
    Message.objects.filter(pk=copy.pk).update(folder=drafts)

    assert walk(alice, [drafts.pk], 1) == ["Tek"]
    assert [type(row) for row in page_of_drafts(alice.user, [drafts.pk], None).rows] == [OutgoingMessage]
