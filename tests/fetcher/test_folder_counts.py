"""Per-folder message and unread counts, kept by triggers through every change, and repaired by `recount`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from imapclient import IMAPClient

from accounts.models import Mailbox
from fetcher.models import Folder, FolderCount
from fetcher.selectors import folders_of, unread_in_view
from fetcher.services import message_delete, message_delete_for_good, message_move, message_set_flags
from tests import plans
from tests.factories import account_mailbox, counted, in_folder, kept, mail, run_sync, stored

pytestmark = pytest.mark.django_db


def test_counts_follow_storing_reading_moving_deleting_and_emptying_the_trash() -> None:
    box = account_mailbox(("counts", "unused"), 995)
    first, second, third, fourth = stored(box, *(mail(f"Konu {n}") for n in range(4)))
    inbox = first.folder
    assert kept()[f"counts/{inbox.name}"] == (4, 4)

    message_set_flags(message=first, seen=True)
    message_set_flags(message=first, seen=True)  # no change, no count
    message_set_flags(message=second, seen=True, flagged=True)
    message_set_flags(message=second, flagged=False)
    assert kept() == counted()
    assert kept()[f"counts/{inbox.name}"] == (4, 2)

    work = Folder.objects.create(mailbox=box, name="İş")
    message_move(message=third, folder=work)
    message_move(message=first, folder=work)
    assert kept()[f"counts/{inbox.name}"] == (2, 1)
    assert kept()["counts/İş"] == (2, 1)

    message_delete(message=fourth)  # to the Trash
    message_delete_for_good(message=third)
    assert kept() == counted()

    client = Client()
    client.force_login(box.owner)
    assert client.post("/mail/trash/empty/").status_code in {200, 302}
    assert kept() == counted()
    assert unread_in_view(box.owner, "inbox") == counted()[f"counts/{inbox.name}"][1]


def test_a_mailbox_removed_takes_its_counts_and_leaves_the_others_right() -> None:
    kept_box = account_mailbox(("stays", "unused"), 995)
    gone_box = account_mailbox(("goes", "unused"), 995)
    stored(kept_box, mail("Kalır"))
    stored(gone_box, mail("Gider"), mail("Gider 2"))
    gone_box.delete()
    assert kept() == counted()
    assert FolderCount.objects.count() == 1


@pytest.mark.mailservers
def test_flags_and_mail_from_the_imap_server_are_counted(mailbox: Mailbox, server: IMAPClient) -> None:
    for number in range(3):
        server.append("INBOX", mail(f"Sunucu {number}"))
    run_sync(mailbox)
    assert kept()[f"{mailbox.name}/INBOX"] == (3, 3)
    server.select_folder("INBOX")
    server.add_flags(server.search(["ALL"])[:2], [b"\\Seen"])
    run_sync(mailbox)
    assert [m.seen for m in in_folder(mailbox, "INBOX")].count(True) == 2
    assert kept() == counted()
    assert kept()[f"{mailbox.name}/INBOX"] == (3, 1)


def test_the_sidebar_reads_counts_without_counting_and_caps_the_display() -> None:
    box = account_mailbox(("many", "unused"), 995)
    inbox = Folder.objects.create(mailbox=box, name="INBOX", role="inbox")
    plans.bulk_messages(box, inbox, 1_500)
    client = Client()
    client.force_login(box.owner)
    statements = plans.analysed_statements(lambda: client.get("/account/preferences/"))
    # The counts come from fetcher_foldercount; the one statement that touches messages counts the
    # unreadable ones (issue #13.7) through their partial index, and here there are none to read.
    assert plans.costly_reads(statements, budget=0) == []
    assert len(statements) <= 1
    [folder] = folders_of(box.owner)
    assert (folder.unread, folder.total) == (1_500, 1_500)  # type: ignore[attr-defined]
    assert 'data-testid="unread-inbox">999+<' in client.get("/").content.decode()


def test_recount_repairs_counts_changed_behind_the_triggers_back() -> None:
    box = account_mailbox(("repair", "unused"), 995)
    stored(box, mail("Bir"), mail("İki"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE fetcher_foldercount SET messages = 40, unread = 7")
        # As a restore or replication applies rows: no ordinary trigger fires.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE fetcher_message SET seen = true WHERE id = (SELECT min(id) FROM fetcher_message)"
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert kept() != counted()

    out = StringIO()
    call_command("recount", stdout=out)
    assert out.getvalue().startswith("1 folder counts were wrong")
    assert kept() == counted()
    assert next(iter(kept().values())) == (2, 1)

    out = StringIO()
    call_command("recount", f"--mailbox={box.pk}", stdout=out)
    assert out.getvalue().startswith("0 folder counts were wrong")
