"""Every page a person sees, checked by axe-core in Chromium against WCAG 2.2 AA: no serious or critical
violation, in the light and the dark scheme, in English and in Turkish.

One browser page per scheme and language walks through all the pages (a test each would spend most of
its time setting up), and the failure lists every page that failed with the rules and the nodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import BrowserContext, Page

from accounts import crypto
from accounts.models import (
    ConnectionTest,
    ConnectionTestStatus,
    DiscoveryStatus,
    Mailbox,
    MailboxDiscovery,
    User,
)
from fetcher import enqueue, folders, outbox
from fetcher.models import MailboxState, MailboxSync, Message, OutgoingMessage, OutgoingState
from tests.factories import conversation, imap_mailbox, mail, stored
from tests.paths import PROJECT
from tests.personas import Persona
from tests.webmail.browser.pages import alice_has_her_mailbox, signed_in

__all__ = ["alice_has_her_mailbox"]  # a fixture of tests/webmail/browser/pages.py
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AXE = PROJECT / "tests" / "vendor" / "axe-core" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING = {"serious", "critical"}
# axe leaves an aria-describedby naming a missing id for review (a script might add the id later); no
# script of ours does, so a field that points at nothing is a violation here.
DEFINITE_WHEN_INCOMPLETE = {"aria-valid-attr-value"}
RUN_AXE = """([scope, tags]) => axe.run(
    scope, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations", "incomplete"]}
)"""


def axe_violations(page: Page, scope: str = "html") -> list[dict[str, Any]]:
    """The serious and critical violations axe-core finds on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(RUN_AXE, [scope, WCAG_22_AA])
    definite = [rule for rule in found["incomplete"] if rule["id"] in DEFINITE_WHEN_INCOMPLETE]
    return [rule for rule in found["violations"] + definite if rule["impact"] in FAILING]


def described(rule: dict[str, Any]) -> str:
    nodes = "\n".join(
        f"      {' '.join(map(str, node['target']))}: {_summary(node)}" for node in rule["nodes"]
    )
    return f"    {rule['id']} ({rule['impact']}): {rule['help']}\n{nodes}"


def _summary(node: dict[str, Any]) -> str:
    return " ".join(str(node.get("failureSummary", "")).split())[:300]


@dataclass
class Mail:
    """What alice has, so that every page shows something: the ids the visits open."""

    plain: Message
    html: Message
    thread: Message
    mailbox: Mailbox
    test: ConnectionTest
    draft: OutgoingMessage
    found: MailboxDiscovery  # an address whose servers were found and tested
    nothing: MailboxDiscovery  # an address where nothing was found
    looking: MailboxDiscovery  # still looking


def mail_of_alice(alice: Persona) -> Mail:
    mailbox = alice.mailbox
    plain, html = stored(
        mailbox,
        mail(
            "Bütçe 2027",
            sender="Mehmet Öz <mehmet@example.com>",
            body="Ekte bütçe tablosu var.\nAyrıntılar: https://ornek.com.tr/butce",
            attachments=[("Bütçe tablosu.pdf", "application/pdf", b"%PDF-1.4 butce")],
            date="Fri, 27 Nov 2026 11:00:00 +0300",
        ),
        mail(
            "Bülten",
            sender="Haber <bulten@example.com>",
            html=(
                '<h1>Kasım bülteni</h1><p>Merhaba <b>Alice</b>, <a href="https://ornek.com.tr/">oku</a></p>'
                '<img src="https://ornek.com.tr/logo.png" alt="Logo">'  # remote: the page offers to show it
            ),
            date="Fri, 27 Nov 2026 09:00:00 +0300",
        ),
    )
    Message.objects.filter(pk=html.pk).update(seen=True, flagged=True)
    thread = conversation(mailbox, 3, unread={2})[-1]
    draft = outbox.outgoing_save(
        owner=alice.user,
        mailbox=mailbox,
        values={"to": "dilek@example.net", "subject": "Taslak", "text": "Yarın konuşalım."},
    )
    _outbox_rows(alice, mailbox)
    _failing_mailbox(alice)
    test = _connection_test(alice, mailbox)
    return Mail(plain, html, thread, mailbox, test, draft, *_discoveries(alice, test))


def _discoveries(alice: Persona, test: ConnectionTest) -> tuple[MailboxDiscovery, ...]:
    """Adding a mailbox by its address: found and tested, nothing found, and still looking."""
    tried: list[dict[str, str]] = [
        {"step": "Postane's provider table", "asked": "example.com", "outcome": "not a provider it knows"},
        {
            "step": "The provider's own settings",
            "asked": "https://autoconfig.example.com/",
            "outcome": "found",
        },
    ]
    server = {"host": "mail.example.com", "security": "ssl", "login": "alice@example.com"}
    found = {
        "source": "The provider's own settings",
        "source_detail": "https://autoconfig.example.com/mail/config-v1.1.xml",
        "provider": {"name": "Gmail", "sign_in": "app-password", "help": "https://support.google.com/mail/"},
        "servers": [
            {"protocol": "imap", "port": 993, **server},
            {"protocol": "pop3", "port": 995, **server},
            {"protocol": "smtp", "port": 465, **server},
        ],
        "tried": tried,
    }
    made = [
        (DiscoveryStatus.DONE, found, test),
        (DiscoveryStatus.DONE, {"tried": tried[:1]}, None),
        (DiscoveryStatus.RUNNING, {"tried": tried[:1]}, None),
    ]
    return tuple(
        MailboxDiscovery.objects.create(
            owner=alice.user,
            address="alice@example.com",
            password_encrypted=crypto.encrypt("x"),
            status=status,
            result=result,
            test=tested,
        )
        for status, result, tested in made
    )


def _outbox_rows(alice: Persona, mailbox: Mailbox) -> None:
    """One message scheduled for tomorrow and one the server refused."""
    for subject, state in (("Planlı", OutgoingState.QUEUED), ("Gitmeyen", OutgoingState.FAILED)):
        values = {"to": "dilek@example.net", "subject": subject, "text": "Gövde"}
        outgoing = outbox.outgoing_save(owner=alice.user, mailbox=mailbox, values=values)
        outbox.outgoing_queue(outgoing=outgoing, send_at=timezone.now() + timedelta(days=1))
        if state == OutgoingState.FAILED:
            OutgoingMessage.objects.filter(pk=outgoing.pk).update(
                state=state, attempts=3, last_error="550 5.7.1 Relaying denied"
            )


def _failing_mailbox(alice: Persona) -> None:
    """A second mailbox whose server refuses the login: the sidebar and the lists say so."""
    failing = imap_mailbox(alice.user, "ev")
    MailboxSync.objects.filter(mailbox=failing).update(
        state=MailboxState.ERROR,
        last_error_kind="auth",
        last_error_message="NO [AUTHENTICATIONFAILED] Authentication failed.",
        last_error_at=timezone.now(),
    )


def _connection_test(alice: Persona, mailbox: Mailbox) -> ConnectionTest:
    """A finished test whose incoming server worked and whose SMTP server refused the login."""
    incoming = {
        "kind": "pop3",
        "ok": True,
        "passed": ["input", "policy", "dns", "connect", "tls", "greeting", "auth", "uidl"],
        "failed_step": None,
        "facts": {"uidl": True, "message_count": 3, "size": 3000},
    }
    outgoing = {
        "kind": "smtp",
        "ok": False,
        "passed": ["input", "policy", "dns", "connect", "greeting", "starttls", "tls"],
        "failed_step": "auth",
        "message": "The server refused the login.",
        "message_parts": [["The server refused the login.", {}]],
        "server_text": "535 5.7.8 Authentication credentials invalid",
        "facts": {},
    }
    return ConnectionTest.objects.create(
        owner=alice.user,
        mailbox=mailbox,
        settings={},
        incoming_password_encrypted="",
        status=ConnectionTestStatus.DONE,
        incoming_report=incoming,
        outgoing_report=outgoing,
        finished_at=timezone.now(),
    )


@dataclass(frozen=True)
class Visit:
    name: str
    path: str
    then: Callable[[Page], None] | None = None
    scope: str = "html"  # what axe checks: an open menu alone (the page under it was checked closed)


def _open_menu(page: Page) -> None:
    page.locator(".user-menu summary").click()


def _submit_empty(page: Page) -> None:
    with page.expect_navigation():
        page.locator("form button[type=submit]").last.click()


def _save_empty(page: Page) -> None:
    page.locator("#id_name").fill("")
    page.locator("#id_email_address").fill("")
    with page.expect_navigation():
        page.locator("button[value=save]").click()


def _delete_first(page: Page) -> None:
    page.locator(".message-row input[type=checkbox]").first.check()
    with page.expect_navigation():
        page.locator("button[value=delete]").click()
    page.get_by_test_id("notices").wait_for()


def _choose_and_move(page: Page) -> None:
    """A row chosen and another one current (j), as a person going through the list leaves them."""
    page.locator(".message-row input[type=checkbox]").nth(1).check()
    page.keyboard.press("j")


def _rich_text(page: Page) -> None:
    page.locator(".rich-toggle input").check()
    page.get_by_test_id("rich-editor").wait_for()


def _suggestions(page: Page) -> None:
    page.locator("#id_to").press_sequentially("meh")
    page.get_by_test_id("suggestions").first.locator("button").first.wait_for()


def _shortcuts(page: Page) -> None:
    page.keyboard.press("?")
    page.get_by_test_id("shortcuts").wait_for()


def _csrf_refused(page: Page) -> None:
    """A form posted without its token, as a page left open for days would: the 403 page."""
    with page.expect_navigation():
        page.evaluate(
            """() => { const form = document.createElement("form"); form.method = "post";
            form.action = "/logout/"; document.body.append(form); form.submit(); }"""
        )


def _too_large(page: Page) -> None:
    """A form whose body is over the site's limit (made small here): the 413 page."""
    previous = settings.WEBMAIL_MAX_REQUEST_BYTES
    settings.WEBMAIL_MAX_REQUEST_BYTES = 512  # read on each request, by the live server's thread too
    try:
        with page.expect_navigation():
            page.evaluate(
                """() => { const form = document.createElement("form"); form.method = "post";
                form.action = "/mail/compose/"; const text = document.createElement("textarea");
                text.name = "text"; text.value = "x".repeat(4096); form.append(text);
                document.body.append(form); form.submit(); }"""
            )
    finally:
        settings.WEBMAIL_MAX_REQUEST_BYTES = previous


def _locked_out(page: Page) -> None:
    """Wrong passwords until the lock-out page shows."""
    for _attempt in range(settings.WEBMAIL_LOGIN_FAILURE_LIMIT):
        page.goto(page.url.split("/login/")[0] + "/login/")
        _wrong_password(page)


def _wrong_password(page: Page) -> None:
    page.locator("#id_username").fill("alice")
    page.locator("#id_password").fill("not her password")
    with page.expect_navigation():
        page.locator("form button[type=submit]").first.click()


def _test_result(test: ConnectionTest) -> Callable[[Page], None]:
    def show(page: Page) -> None:  # what the page's htmx shows when the worker has answered
        page.evaluate(
            "url => htmx.ajax('GET', url, {target: '#connection-test', swap: 'innerHTML'})",
            f"/mailboxes/tests/{test.id}/",
        )
        page.get_by_test_id("connection-test").wait_for()

    return show


def signed_in_visits(found: Mail) -> list[Visit]:
    inbox = folders.inbox_of(found.mailbox)
    return [
        Visit("unified inbox", "/"),
        Visit("unified inbox, user menu open", "/", _open_menu, ".user-menu"),
        Visit("unified inbox, keyboard shortcuts", "/", _shortcuts),
        Visit("unified inbox, a row chosen, another current", "/", _choose_and_move),
        Visit("folder", f"/mail/folder/{inbox.public_id}/"),
        Visit("starred", "/mail/v/starred/"),
        Visit("trash (empty)", "/mail/v/trash/"),
        Visit("search results", "/mail/search/?q=b%C3%BCt%C3%A7e"),
        Visit("search without results", "/mail/search/?q=zzzyok"),
        Visit("plain message", f"/mail/m/{found.plain.public_id}/"),
        Visit("HTML message", f"/mail/m/{found.html.public_id}/"),
        Visit("conversation", f"/mail/m/{found.thread.public_id}/"),
        Visit("message source", f"/mail/m/{found.plain.public_id}/source/"),
        Visit("compose", "/mail/compose/"),
        Visit("compose, rich text", "/mail/compose/", _rich_text),
        Visit("compose, address suggestions", "/mail/compose/", _suggestions),
        Visit("reply", f"/mail/compose/?reply={found.plain.public_id}"),
        Visit("forward", f"/mail/compose/?forward={found.html.public_id}"),
        Visit("draft", f"/mail/compose/{found.draft.public_id}/"),
        Visit("drafts", "/mail/v/drafts/"),
        Visit("outbox", "/mail/outbox/"),
        Visit("mailboxes", "/mailboxes/"),
        Visit("add mailbox by its address", "/mailboxes/add/"),
        Visit("add mailbox by its address, found and tested", f"/mailboxes/add/{found.found.id}/"),
        Visit("add mailbox by its address, nothing found", f"/mailboxes/add/{found.nothing.id}/"),
        Visit("add mailbox by its address, still looking", f"/mailboxes/add/{found.looking.id}/"),
        Visit("add mailbox", "/mailboxes/new/"),
        Visit("edit mailbox", f"/mailboxes/{found.mailbox.id}/"),
        Visit("edit mailbox, connection tested", f"/mailboxes/{found.mailbox.id}/", _test_result(found.test)),
        Visit("add mailbox, with errors", "/mailboxes/new/", _save_empty),
        Visit("remove mailbox", f"/mailboxes/{found.mailbox.id}/remove/"),
        Visit("preferences", "/account/preferences/"),
        Visit("password change", "/account/password/"),
        Visit("404", "/no/such/page/"),
        Visit("403 (form expired)", "/", _csrf_refused),
        Visit("413 (too much sent at once)", "/mail/compose/", _too_large),
        Visit("unified inbox, a message deleted (notice with Undo)", "/", _delete_first),
    ]


def signed_out_visits(owner: User) -> list[Visit]:
    """The pages before signing in; the password-reset link is the one alice's mail would carry."""
    uid, token = urlsafe_base64_encode(force_bytes(owner.pk)), default_token_generator.make_token(owner)
    new_password = Visit("password reset, new password", f"/account/reset/{uid}/{token}/", _new_password_form)
    return [*SIGNED_OUT_VISITS, new_password]


def _new_password_form(page: Page) -> None:
    page.locator("#id_new_password1").wait_for()  # the link worked: the form, not "this link is invalid"


ADMIN_VISITS = [
    Visit("administration", "/admin/"),
    Visit("administration: mailboxes", "/admin/accounts/mailbox/"),
    Visit("administration: users", "/admin/accounts/user/"),
]
SIGNED_OUT_VISITS = [
    Visit("login", "/login/"),
    Visit("login, wrong password", "/login/", _wrong_password),
    Visit("sign-up", "/signup/"),
    Visit("sign-up, with errors", "/signup/", _submit_empty),
    Visit("password reset", "/account/reset/"),
    Visit("password reset sent", "/account/reset/sent/"),
    Visit("password reset, expired link", "/account/reset/MQ/set-password-xyz/"),
    Visit("sign-up, expired link", "/signup/confirm/MQ/xyz/"),
    Visit("404 signed out", "/no/such/page/"),
    Visit("locked out", "/login/", _locked_out),  # last: it locks this address out
]


def failures_on(page: Page, live_url: str, visits: list[Visit], where: str) -> list[str]:
    failed = []
    for visit in visits:
        page.goto(live_url + visit.path)
        if visit.then is not None:
            visit.then(page)
        page.wait_for_load_state("load")
        if found := axe_violations(page, visit.scope):
            rules = "\n".join(described(rule) for rule in found)
            failed.append(f"{visit.name} ({where}, {page.url}):\n{rules}")
    return failed


@pytest.fixture
def alice_mail(alice: Persona, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Mail:
    """Alice's mail, with sign-up open so that its page can be checked too."""
    monkeypatch.setattr(enqueue, "send_outgoing", lambda outgoing_id, delay: None)  # nothing leaves
    settings.ALLOW_SIGNUP = settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL = True
    return mail_of_alice(alice)


LOOKS = [(scheme, locale) for locale in ("en-US", "tr-TR") for scheme in ("light", "dark")]


@pytest.mark.parametrize("look", LOOKS, ids=[f"{scheme}-{locale}" for scheme, locale in LOOKS])
def test_every_page_has_no_serious_accessibility_violation(
    new_context: Callable[..., BrowserContext],
    live_url: str,
    alice_mail: Mail,
    *,
    bob: Persona,
    charlie: Persona,
    look: tuple[str, str],
) -> None:
    scheme, locale = look
    options = {"locale": locale, "color_scheme": scheme, "bypass_csp": True}  # axe is an inline script
    where = f"{scheme} scheme, {locale}"

    page = signed_in(new_context, live_url, alice_mail.mailbox.owner, **options)
    failed = failures_on(page, live_url, signed_in_visits(alice_mail), where)
    newcomer = signed_in(new_context, live_url, bob.user, **options)
    failed += failures_on(newcomer, live_url, [Visit("inbox without a mailbox", "/")], where)
    administrator = signed_in(new_context, live_url, charlie.user, **options)
    failed += failures_on(administrator, live_url, ADMIN_VISITS, where)
    stranger = new_context(**options).new_page()
    failed += failures_on(stranger, live_url, signed_out_visits(alice_mail.mailbox.owner), where)

    assert not failed, "serious or critical WCAG 2.2 AA violations:\n" + "\n".join(failed)


def test_the_pages_are_in_the_language_asked_for(
    new_context: Callable[..., BrowserContext], live_url: str, alice: Persona
) -> None:
    """The check above is worth its four runs only if Turkish pages really are Turkish."""
    page = signed_in(new_context, live_url, alice.user, locale="tr-TR")
    page.goto(f"{live_url}/")
    assert page.locator("html").get_attribute("lang") == "tr"
    assert "gelen kutuları" in page.title()


def test_every_page_on_a_phone_has_no_serious_accessibility_violation(
    new_context: Callable[..., BrowserContext], live_url: str, alice_mail: Mail
) -> None:
    """At 375 px, in Turkish (the longer words): the targets where the layout is one column (the colours
    are those checked above)."""
    scheme = "light"
    phone = {"viewport": {"width": 375, "height": 812}, "has_touch": True, "is_mobile": True}
    options = {"locale": "tr-TR", "color_scheme": scheme, "bypass_csp": True} | phone
    page = signed_in(new_context, live_url, alice_mail.mailbox.owner, **options)

    failed = failures_on(page, live_url, signed_in_visits(alice_mail), f"{scheme} scheme, tr-TR, 375 px")

    assert not failed, "serious or critical WCAG 2.2 AA violations:\n" + "\n".join(failed)
