"""POP3 sync against a real Dovecot: new mail once, retention honoured, failures recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Mailbox
from fetcher.mail.header_scan import fingerprint
from fetcher.models import MailboxState, MailboxSync, Message, Pop3Ledger
from fetcher.services import mailbox_sync_now, message_delete, message_set_flags, syncs_dispatch
from fetcher.sync.claim import SyncResult, mailbox_claim
from tests.factories import deliver, raw_message, run_sync
from tests.servers.dovecot import Dovecot
from tests.servers.net import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.mailservers]


def test_long_lines_and_leading_dots_come_back_byte_for_byte(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    """poplib refuses lines over 2,048 bytes; real HTML mail has them, and must not block the mailbox."""
    raw = raw_message(1).replace(b"\r\n\r\n", b"\r\nX-Long: " + b"h" * 3000 + b"\r\n\r\n", 1)
    raw += b"<p>" + "ışık ".encode() * 20_000 + b"</p>\r\n.\r\n..two dots\r\n. one dot and a space\r\nend\r\n"
    dovecot.deliver(account[0], raw, "long")
    mailbox = make_mailbox()

    assert run_sync(mailbox).fetched == 1

    assert bytes(Message.objects.get(mailbox=mailbox).raw) == raw


def test_new_mail_is_stored_byte_for_byte_and_kept_on_the_server_by_default(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    raws = deliver(dovecot, account, 3)
    mailbox = make_mailbox()

    result = run_sync(mailbox)

    assert result == SyncResult("done", fetched=3, deleted=0)
    stored = sorted(
        bytes(raw) for raw in Message.objects.filter(mailbox=mailbox).values_list("raw", flat=True)
    )
    assert stored == sorted(raws)
    assert dovecot.messages_on_server(account[0]) == 3
    mailbox.refresh_from_db()
    assert mailbox.sync.state == MailboxState.IDLE
    assert mailbox.sync.last_success_at is not None
    assert mailbox.sync.next_sync_at is not None
    assert mailbox.sync.next_sync_at > timezone.now()
    assert mailbox.sync.sync_lease_until is None


def test_a_second_sync_fetches_only_what_is_new_and_never_a_duplicate(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    deliver(dovecot, account, 2)
    mailbox = make_mailbox()
    run_sync(mailbox)
    deliver(dovecot, account, 1, start=2)

    assert run_sync(mailbox).fetched == 1
    assert run_sync(mailbox).fetched == 0
    assert Message.objects.filter(mailbox=mailbox).count() == 3
    assert Pop3Ledger.objects.filter(mailbox=mailbox).count() == 3


def test_an_unchanged_mailbox_costs_the_same_queries_whatever_its_size(
    dovecot: Dovecot,
    account: tuple[str, str],
    make_mailbox: Callable[..., Mailbox],
    django_assert_max_num_queries: Any,
) -> None:
    deliver(dovecot, account, 30)
    mailbox = make_mailbox()
    run_sync(mailbox)

    with django_assert_max_num_queries(8):
        assert run_sync(mailbox).fetched == 0


def test_delete_after_download_deletes_on_the_server_only_what_is_committed(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    deliver(dovecot, account, 4)
    mailbox = make_mailbox(pop3_retention="delete")

    result = run_sync(mailbox)

    assert result.deleted == 4
    assert dovecot.messages_on_server(account[0]) == 0
    assert Message.objects.filter(mailbox=mailbox).count() == 4
    assert not Pop3Ledger.objects.filter(mailbox=mailbox, deleted_on_server_at__isnull=True).exists()


def test_delete_after_n_days_deletes_only_old_enough_messages(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    deliver(dovecot, account, 2)
    mailbox = make_mailbox(pop3_retention="days", pop3_retention_days=7)
    run_sync(mailbox)
    assert dovecot.messages_on_server(account[0]) == 2
    old = Pop3Ledger.objects.filter(mailbox=mailbox).first()
    assert old is not None
    Pop3Ledger.objects.filter(pk=old.pk).update(first_seen_at=timezone.now() - timedelta(days=8))

    assert run_sync(mailbox).deleted == 1
    assert dovecot.messages_on_server(account[0]) == 1
    assert Message.objects.filter(mailbox=mailbox).count() == 2


def test_mail_deleted_on_the_server_by_someone_else_stays_in_postane(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    deliver(dovecot, account, 2)
    mailbox = make_mailbox()
    run_sync(mailbox)
    for sub in ("new", "cur"):
        for path in (dovecot.maildir(account[0]) / sub).iterdir():
            path.unlink()

    run_sync(mailbox)

    assert Message.objects.filter(mailbox=mailbox).count() == 2


def test_a_removed_and_re_added_mailbox_holds_each_server_message_once(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    deliver(dovecot, account, 3)
    first = make_mailbox()
    run_sync(first)
    first.delete()

    again = make_mailbox()
    run_sync(again)
    run_sync(again)

    assert Message.objects.filter(mailbox=again).count() == 3
    assert Message.objects.count() == 3


def test_a_wrong_password_is_reported_backs_off_and_pauses_after_three_failures(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    mailbox = make_mailbox(password="wrong")

    for _ in range(3):
        assert run_sync(mailbox).status == "failed"
        MailboxSync.objects.filter(mailbox_id=mailbox.id).update(next_sync_at=timezone.now())

    mailbox.refresh_from_db()
    assert mailbox.sync.state == MailboxState.ERROR
    assert mailbox.sync.last_error_kind == "auth"
    assert "Authentication failed" in mailbox.sync.last_error_message
    assert mailbox.sync.consecutive_failures == 3
    assert mailbox.sync.paused
    assert run_sync(mailbox).status == "busy"  # a paused mailbox is not claimed
    assert syncs_dispatch() == 0


def test_sync_now_lifts_a_pause_and_queues_a_sync(
    dovecot: Dovecot,
    account: tuple[str, str],
    make_mailbox: Callable[..., Mailbox],
    django_capture_on_commit_callbacks: Any,
) -> None:
    mailbox = make_mailbox(paused=True)

    with django_capture_on_commit_callbacks() as callbacks:
        mailbox_sync_now(mailbox=mailbox)

    assert len(callbacks) == 1
    mailbox.refresh_from_db()
    assert not mailbox.sync.paused
    assert mailbox.sync.next_sync_at is not None
    assert mailbox.sync.next_sync_at <= timezone.now()


def test_an_unreachable_server_is_retried_later_with_backoff(
    account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    mailbox = make_mailbox(incoming_port=free_port())

    run_sync(mailbox)
    first = MailboxSync.objects.get(mailbox_id=mailbox.id)
    run_sync(mailbox)
    second = MailboxSync.objects.get(mailbox_id=mailbox.id)

    assert first.last_error_kind == "connect"
    assert second.consecutive_failures == 2
    assert first.next_sync_at is not None
    assert second.next_sync_at is not None
    assert second.next_sync_at - timezone.now() > first.next_sync_at - timezone.now()
    assert not second.paused


def test_a_claimed_mailbox_makes_a_second_sync_return_at_once(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    mailbox = make_mailbox()
    claim = mailbox_claim(mailbox.id)
    assert claim is not None
    assert claim[1] == mailbox

    assert run_sync(mailbox).status == "busy"
    MailboxSync.objects.filter(mailbox_id=mailbox.id).update(
        sync_lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert run_sync(mailbox).status == "done"  # a dead worker's claim runs out


def test_without_uidl_a_fingerprint_identifies_messages(make_mailbox: Callable[..., Mailbox]) -> None:
    headers = b"Received: by x\r\nMessage-ID: <a@b>\r\nSubject: s\r\n\r\nbody\r\n"

    assert fingerprint(headers) == fingerprint(headers.replace(b"body", b"other body"))
    assert fingerprint(headers) != fingerprint(headers.replace(b"<a@b>", b"<c@d>"))
    assert fingerprint(headers).startswith("fp:")


def test_flags_changed_on_a_pop3_message_stay_local(
    dovecot: Dovecot,
    account: tuple[str, str],
    make_mailbox: Callable[..., Mailbox],
    django_capture_on_commit_callbacks: Any,
) -> None:
    deliver(dovecot, account, 1)
    mailbox = make_mailbox()
    run_sync(mailbox)
    message = Message.objects.get(mailbox=mailbox)

    with django_capture_on_commit_callbacks() as queued:
        message_set_flags(message=message, seen=True, flagged=True)

    message.refresh_from_db()
    assert (message.seen, message.flagged, message.pending_flags) == (True, True, {})
    assert queued == []


def test_a_message_deleted_here_goes_to_the_local_trash_then_for_good_and_is_not_fetched_again(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    deliver(dovecot, account, 2)
    mailbox = make_mailbox()
    run_sync(mailbox)
    first, second = Message.objects.filter(mailbox=mailbox).order_by("id")

    message_delete(message=first)
    assert Message.objects.get(pk=first.pk).folder.role == "trash"
    message_delete(message=Message.objects.get(pk=first.pk))

    assert run_sync(mailbox).fetched == 0
    assert list(Message.objects.filter(mailbox=mailbox)) == [second]
    assert dovecot.messages_on_server(account[0]) == 2  # POP3: the server copy is kept unless asked


def test_with_delete_on_server_too_a_message_deleted_here_leaves_the_server_and_stays_in_trash(
    dovecot: Dovecot, account: tuple[str, str], make_mailbox: Callable[..., Mailbox]
) -> None:
    deliver(dovecot, account, 2)
    mailbox = make_mailbox(pop3_delete_with_local=True)
    run_sync(mailbox)
    first = Message.objects.filter(mailbox=mailbox).order_by("id").first()
    assert first is not None

    message_delete(message=first)
    result = run_sync(mailbox)

    assert result.deleted == 1
    assert dovecot.messages_on_server(account[0]) == 1
    assert Message.objects.get(pk=first.pk).folder.role == "trash"  # Postane's copy stays until emptied
    assert run_sync(mailbox).fetched == 0
