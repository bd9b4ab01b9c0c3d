"""A mailbox that needs its person says so where they read: a warning by its name in the sidebar and a
notice at the top of the lists, with the reason and the fix, in their language; so do messages stage two
could not read. From what the page reads anyway: no query more, however many mailboxes."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Mailbox
from fetcher import enqueue, sync
from fetcher.ingest import parsing
from fetcher.models import Message
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona
from tests.servers.dovecot import Dovecot

pytestmark = pytest.mark.django_db


def failing(persona: Persona, kind: str, message: str = "", **engine: Any) -> Mailbox:
    """A mailbox of theirs whose last sync failed at `kind`, as fetcher.sync.claim records it."""
    return account_mailbox(
        (f"{persona.name}-{kind}", "unused"),
        995,
        owner=persona.user,
        name=f"Kutu {kind}",
        state="error",
        last_error_kind=kind,
        last_error_message=message or f"{kind} failed",
        last_error_at=timezone.now(),
        **engine,
    )


def page_of(persona: Persona, url: str = "/", **headers: str) -> str:
    response = persona.client.get(url, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def troubles(page: str) -> list[str]:
    return re.findall(r'<li data-testid="mailbox-trouble".*?</li>', page, flags=re.DOTALL)


def sidebar_alerts(page: str) -> list[str]:
    return re.findall(r'<a class="mailbox-alert"[^>]*>', page)


@pytest.mark.mailservers
def test_a_refused_password_shows_in_the_sidebar_and_the_inbox_with_the_way_to_enter_it_again(
    alice: Persona, dovecot: Dovecot, local_mail_settings: None
) -> None:
    login, _password = dovecot.fresh_user()
    mailbox = account_mailbox(
        (login, "not the password"), dovecot.ports["pop3s"], owner=alice.user, name="Ev"
    )
    sync.sync_mailbox(mailbox_id=mailbox.id, budget_seconds=30)  # a real refusal, recorded as the engine does
    edit = reverse("mailbox_edit", args=[mailbox.id])

    for url in ("/", reverse("mail_view", args=["sent"])):
        page = page_of(alice, url)
        [notice] = troubles(page)
        assert "<strong>Ev</strong>: The server refused the login name or the password." in notice
        assert f'<a href="{edit}">Enter the password again</a>' in notice
        assert "<details><summary>Details</summary>" in notice  # the server's own words, as they came
        [alert] = sidebar_alerts(page)
        assert f'href="{edit}"' in alert
        assert 'title="The server refused the login name or the password."' in alert


def test_the_notice_is_in_the_readers_language(alice: Persona) -> None:
    mailbox = failing(alice, "auth")

    page = page_of(alice, "/", **{"accept-language": "tr"})

    [notice] = troubles(page)
    assert "Parolayı yeniden girin" in notice
    assert reverse("mailbox_edit", args=[mailbox.id]) in notice
    assert "The server refused" not in notice


@pytest.mark.parametrize(
    ("kind", "message", "reason", "fix", "where"),
    [
        (
            "auth",
            "",
            "The server refused the login name or the password.",
            "Enter the password again",
            "edit",
        ),
        ("key", "", "The stored password can no longer be read", "Enter the password again", "edit"),
        ("dns", "", "The server name could not be found.", "Check the mailbox&#x27;s settings", "edit"),
        ("connect", "", "The server could not be reached", "Check the mailbox&#x27;s settings", "edit"),
        ("tls", "", "certificate is not trusted", "Check the mailbox&#x27;s settings", "edit"),
        (
            "policy",
            "",
            "An administrator can allow intranet servers.",
            "Check the mailbox&#x27;s settings",
            "edit",
        ),
        (
            "auth",
            "[ALERT] Please log in via your web browser: https://support.google.com/mail (Failure)",
            "sign in on its website",
            "Sign in on your provider&#x27;s website, then sync again",
            "edit",
        ),
        ("internal", "", "unexpected problem", "Mailbox settings", "list"),
    ],
)
def test_each_kind_of_failure_names_its_reason_and_its_fix(  # noqa: PLR0917 -- the table's columns
    alice: Persona, kind: str, message: str, reason: str, fix: str, where: str
) -> None:
    mailbox = failing(alice, kind, message)

    [notice] = troubles(page_of(alice))

    assert reason in notice
    url = reverse("mailbox_edit", args=[mailbox.id]) if where == "edit" else reverse("mailbox_list")
    assert f'<a href="{url}">{fix}</a>' in notice
    offers_sync = reverse("mailbox_sync", args=[mailbox.id]) in notice
    assert offers_sync == (kind == "internal" or bool(message))  # the fix is done elsewhere: sync again
    assert 'name="csrfmiddlewaretoken" value=""' not in notice


def test_a_paused_mailbox_says_it_is_paused(alice: Persona) -> None:
    failing(alice, "auth", paused=True, consecutive_failures=3)

    [notice] = troubles(page_of(alice))

    assert "Syncing is paused after repeated login failures." in notice


def test_a_healthy_mailbox_and_a_folder_list_note_show_nothing(alice: Persona) -> None:
    account_mailbox(("alice-ok", "unused"), 995, owner=alice.user, name="Sağlam")
    account_mailbox(
        ("alice-note", "unused"), 993, owner=alice.user, protocol="imap", last_error_kind="folders"
    )  # a note on an idle mailbox: syncing works

    page = page_of(alice)

    assert troubles(page) == []
    assert sidebar_alerts(page) == []
    assert 'data-testid="mailbox-alerts"' not in page


def test_a_failing_mailbox_without_folders_still_shows_in_the_sidebar(alice: Persona) -> None:
    stored(alice.mailbox, mail("Merhaba"))  # a mailbox with folders beside it
    failing(alice, "auth")  # its first sync failed: no folder yet

    page = page_of(alice)

    sidebar = page[page.index('<ul class="folders mailboxes">') :]
    assert "Kutu auth" in sidebar
    assert len(sidebar_alerts(page)) == 1
    assert alice.mailbox.name in sidebar


def test_someone_elses_failing_mailbox_is_not_shown(alice: Persona, bob: Persona) -> None:
    failing(bob, "auth")
    alice.mailbox  # noqa: B018 -- alice has a mailbox of her own, which works

    assert troubles(page_of(alice)) == []


def unreadable(mailbox: Mailbox, subject: str) -> Message:
    """A message stage two gave up on, marked as parsing.requeue_unparsed marks a hopeless one."""
    message: Message = stored(mailbox, mail(subject))[0]
    Message.objects.filter(pk=message.pk).update(
        parse_state="pending",
        parse_attempts=parsing.MAX_PARSE_ATTEMPTS,
        parse_lease_until=timezone.now() - timedelta(minutes=1),
    )
    parsing.requeue_unparsed()
    message.refresh_from_db()
    assert message.parse_state == "failed"
    return message


def test_messages_that_could_not_be_read_are_noticed_and_listed_by_is_unreadable(
    alice: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)
    first = unreadable(alice.mailbox, "Bozuk bir")
    second = unreadable(alice.mailbox, "Bozuk iki")
    stored(alice.mailbox, mail("Sağlam ileti"))

    page = page_of(alice)

    [notice] = troubles(page)
    assert "2 messages could not be read. Each is kept as it arrived" in notice
    link = re.search(r'<a href="([^"]+)">Show them</a>', notice)
    assert link is not None
    assert len(sidebar_alerts(page)) == 1
    listed = page_of(alice, link[1].replace("&amp;", "&"))
    assert str(first.public_id) in listed
    assert str(second.public_id) in listed
    assert "Sağlam ileti" not in listed
    turkish = page_of(alice, reverse("search") + "?q=is%3Aokunamayan")
    assert str(first.public_id) in turkish


def _statements(persona: Persona, url: str) -> int:
    persona.client.get(url)  # the session's first write is not a page's
    with CaptureQueriesContext(connection) as captured:
        assert persona.client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    "url", ["/", "/mail/v/sent/", "/mail/search/?q=is%3Aunread", "/account/preferences/"]
)
def test_the_notices_cost_no_query_however_many_mailboxes_fail(
    alice: Persona, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setattr(enqueue, "parse_messages", lambda ids: None)
    stored(alice.mailbox, mail("Toplantı"))  # rows on the lists, as below (a list with none asks less)
    healthy = _statements(alice, url)

    for kind in ("auth", "dns", "internal"):
        unreadable(failing(alice, kind), f"Bozuk {kind}")
    page = page_of(alice, url)

    assert len(sidebar_alerts(page)) == 3
    assert _statements(alice, url) == healthy
