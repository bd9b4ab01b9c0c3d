"""Words in more messages than a search sorts (selectors.SORTED_MATCHES) are remembered for a while:
the next page, or the same search again, walks by date at once instead of looking the matches up.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from fetcher import selectors
from fetcher.mail import search
from fetcher.models import Folder, FolderRole, Message
from tests import plans
from tests.factories import account_mailbox

pytestmark = pytest.mark.django_db


def _search_ids(user: User, text: str, after: Any = None) -> tuple[list[int], list[str]]:
    with CaptureQueriesContext(connection) as captured:
        page = selectors.page_of_search(user, search.parse_query(text), after, limit=4)
    return [message.pk for message in page.messages], [str(q["sql"]) for q in captured.captured_queries]


def _looked_up_matches(statements: list[str]) -> bool:
    return any(sql.startswith("WITH fenced") for sql in statements)


def test_words_in_too_many_messages_are_remembered_and_later_pages_walk_by_date_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(selectors, "SORTED_MATCHES", 5)
    user = User.objects.create_user("searcher")
    box = account_mailbox(("searcher", "unused"), 993, owner=user, protocol="imap")
    inbox = Folder.objects.create(mailbox=box, name="INBOX", role=FolderRole.INBOX)
    plans.bulk_messages(box, inbox, 9, subject="Toplantı {n}")
    plans.bulk_messages(box, inbox, 3, subject="Fatura {n}")
    newest = list(
        Message.objects.filter(subject__startswith="Toplantı")
        .order_by("-sort_date", "-id")
        .values_list("pk", flat=True)
    )

    first, statements = _search_ids(user, "toplantı")
    assert first == newest[:4]
    assert _looked_up_matches(statements)
    again, statements = _search_ids(user, "toplantı")
    assert again == first
    assert not _looked_up_matches(statements)
    cursor = selectors.page_of_search(user, search.parse_query("toplantı"), None, 4).next
    assert cursor is not None
    second, statements = _search_ids(user, "toplantı", cursor)
    assert second == newest[4:8]
    assert not _looked_up_matches(statements)

    # Few matches are sorted from the lookup, each time; and nobody else's mailboxes share the memo.
    for _ in range(2):
        few, statements = _search_ids(user, "fatura")
        assert len(few) == 3
        assert _looked_up_matches(statements)
    other = User.objects.create_user("other")
    other_box = account_mailbox(("other", "unused"), 993, owner=other, protocol="imap")
    plans.bulk_messages(
        other_box, Folder.objects.create(mailbox=other_box, name="INBOX"), 2, subject="Toplantı {n}"
    )
    theirs, statements = _search_ids(other, "toplantı")
    assert len(theirs) == 2
    assert _looked_up_matches(statements)


def test_search_answers_when_redis_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selectors, "SORTED_MATCHES", 5)
    user = User.objects.create_user("searcher")
    box = account_mailbox(("searcher", "unused"), 993, owner=user, protocol="imap")
    plans.bulk_messages(box, Folder.objects.create(mailbox=box, name="INBOX"), 9, subject="Toplantı {n}")
    dead = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    with override_settings(CACHES=dead):
        for _ in range(2):
            found, statements = _search_ids(user, "toplantı")
            assert len(found) == 4
            assert _looked_up_matches(statements)
