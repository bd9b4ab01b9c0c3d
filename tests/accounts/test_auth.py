"""People: log in and out, lock-outs, password change and reset, sign-up, idle expiry, the admin."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import Mailbox, User
from fetcher.models import MailboxSync
from tests.conftest import WorkerProcess, wait_for
from tests.factories import account_mailbox
from tests.personas import PASSWORD, Persona
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()  # sessions are cached_db; lock-out counters live in the database


def log_in(client: Client, username: str, password: str, address: str = "198.51.100.1") -> Any:
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_user_logs_in_and_out(client: Client, alice: Persona) -> None:
    assert log_in(client, "alice", PASSWORD).status_code == 302
    assert client.get("/").status_code == 200

    client.post("/logout/")

    assert client.get("/").status_code == 302


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client: Client, alice: Persona) -> None:
    wrong = log_in(client, "alice", "nope").content.decode()
    unknown = log_in(client, "nobody", "nope").content.decode()

    def without_tokens(page: str) -> str:
        return re.sub(r'(value|nonce)="[^"]*"', "", page)

    assert "didn't match" in wrong
    assert without_tokens(wrong) == without_tokens(unknown).replace("nobody", "alice")


def test_a_user_name_is_locked_out_after_five_failures_from_any_address(
    client: Client, alice: Persona
) -> None:
    for attempt in range(5):
        log_in(client, "alice", "wrong", address=f"198.51.100.{attempt + 10}")

    locked = log_in(client, "alice", PASSWORD, address="203.0.113.99")

    assert locked.status_code == 429
    assert 'data-testid="locked-out"' in locked.content.decode()


def test_an_address_is_locked_out_after_five_failures_with_any_names(client: Client, alice: Persona) -> None:
    for attempt in range(5):
        log_in(client, f"guess{attempt}", "wrong", address="203.0.113.7")

    assert log_in(client, "alice", PASSWORD, address="203.0.113.7").status_code == 429
    assert log_in(client, "alice", PASSWORD, address="203.0.113.8").status_code == 302


def test_another_users_login_from_the_same_address_does_not_clear_her_failures(
    client: Client, alice: Persona
) -> None:
    User.objects.create_user("mallory", password="mallory's own long password")
    for _ in range(4):
        log_in(client, "alice", "guess", address="203.0.113.50")
    assert (
        log_in(Client(), "mallory", "mallory's own long password", address="203.0.113.50").status_code == 302
    )

    log_in(client, "alice", "guess", address="203.0.113.50")

    assert log_in(client, "alice", PASSWORD, address="198.51.100.77").status_code == 429


def test_a_good_login_clears_only_her_own_failures(client: Client, alice: Persona) -> None:
    for _ in range(4):
        log_in(client, "alice", "typo", address="203.0.113.60")
    assert log_in(client, "alice", PASSWORD, address="203.0.113.60").status_code == 302
    client.post("/logout/")

    for _ in range(4):
        log_in(client, "alice", "typo again", address="203.0.113.61")

    assert log_in(client, "alice", PASSWORD, address="203.0.113.61").status_code == 302


def test_an_unknown_user_name_is_locked_out_the_same_way(client: Client) -> None:
    for _ in range(5):
        log_in(client, "ghost", "wrong")

    assert log_in(client, "ghost", "wrong").status_code == 429


def test_an_administrator_unlocks_a_locked_out_user(client: Client, alice: Persona, charlie: Persona) -> None:
    for _ in range(5):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", PASSWORD).status_code == 429
    admin_client = charlie.client
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))

    response = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )

    assert response.status_code == 302
    assert log_in(client, "alice", PASSWORD).status_code == 302


def test_a_user_changes_her_password(client: Client, alice: Persona) -> None:
    log_in(client, "alice", PASSWORD)

    response = client.post(
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a new Ünİcode passphrase",
            "new_password2": "a new Ünİcode passphrase",
        },
    )

    assert response.status_code == 302
    client.post("/logout/")
    assert log_in(client, "alice", PASSWORD).status_code == 200
    assert log_in(client, "alice", "a new Ünİcode passphrase").status_code == 302


def test_a_new_password_needs_at_least_twelve_characters(client: Client, alice: Persona) -> None:
    log_in(client, "alice", PASSWORD)

    def change_to(new: str) -> int:
        data = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
        return int(client.post("/account/password/", data).status_code)

    assert change_to("kısa-parola") == 200  # 11 characters
    assert change_to("kısa-parola!") == 302  # 12


@pytest.mark.django_db(transaction=True)
@pytest.mark.mailservers
def test_a_password_reset_link_arrives_by_real_smtp_and_sets_a_new_password(
    client: Client,
    alice: Persona,
    celery_worker: WorkerProcess,
    smtp_servers: dict[str, SmtpServer],
    settings: Any,
) -> None:
    settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL = True
    inbox = smtp_servers["plain"].handler.received
    before = len(inbox)

    sent = client.post("/account/reset/", {"email": "alice@example.com"})
    nobody = client.post("/account/reset/", {"email": "nobody@example.com"})

    assert sent.status_code == nobody.status_code == 302
    wait_for(lambda: len(inbox) > before, "the reset email")
    message = inbox[-1]
    assert message.recipients == ["alice@example.com"]
    link = re.search(rb"http://testserver(/account/reset/\S+/)", message.content)
    assert link is not None
    form_page = client.get(link[1].decode(), follow=True)
    assert b"Choose a new password" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "brand new secret 2026", "new_password2": "brand new secret 2026"},
    )
    assert done.status_code == 302
    assert log_in(client, "alice", "brand new secret 2026").status_code == 302
    assert len(inbox) == before + 1  # nothing was sent for the unknown address


def test_password_reset_is_off_without_a_site_mail_server(client: Client, settings: Any) -> None:
    settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL = False

    assert client.get("/account/reset/").status_code == 404
    assert "Forgot your password" not in client.get("/login/").content.decode()


def test_sign_up_is_off_by_default(client: Client) -> None:
    assert client.get("/signup/").status_code == 404
    assert "Create an account" not in client.get("/login/").content.decode()


SIGNUP = {"password1": "ılık süt içtim", "password2": "ılık süt içtim"}


def sign_up(client: Client, username: str, email: str) -> Any:
    return client.post("/signup/", {"username": username, "email": email, **SIGNUP})


@pytest.fixture
def signup_on(settings: Any) -> None:
    settings.ALLOW_SIGNUP = True
    settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL = True  # the site has a mail server to confirm addresses


@pytest.mark.django_db(transaction=True)
@pytest.mark.mailservers
def test_sign_up_confirms_the_address_by_a_link_sent_through_the_site_smtp_before_the_account_signs_in(
    client: Client, celery_worker: WorkerProcess, smtp_servers: dict[str, SmtpServer], signup_on: None
) -> None:
    inbox = smtp_servers["plain"].handler.received
    before = len(inbox)

    response = sign_up(client, "zeynep", "zeynep@example.com")

    assert 'data-testid="signup-sent"' in response.content.decode()
    assert (
        log_in(client, "zeynep", SIGNUP["password1"]).status_code == 200
    )  # not before the address is confirmed
    wait_for(lambda: len(inbox) > before, "the confirmation email")
    assert inbox[-1].recipients == ["zeynep@example.com"]
    link = re.search(rb"http://testserver(/signup/confirm/\S+/)", inbox[-1].content)
    assert link is not None
    assert 'data-testid="confirm-signup"' in client.get(link[1].decode()).content.decode()
    assert not User.objects.get(username="zeynep").is_active  # opening the link changes nothing
    assert client.post(link[1].decode()).status_code == 302
    assert User.objects.get(username="zeynep").email == "zeynep@example.com"
    assert log_in(client, "zeynep", SIGNUP["password1"]).status_code == 302
    client.post("/logout/")
    assert client.post(link[1].decode()).status_code == 400  # a link confirms once


@pytest.mark.django_db(transaction=True)
@pytest.mark.mailservers
def test_a_sign_up_with_an_address_in_use_makes_no_account_and_tells_its_owner_by_mail(
    client: Client,
    celery_worker: WorkerProcess,
    smtp_servers: dict[str, SmtpServer],
    signup_on: None,
    alice: Persona,
) -> None:
    inbox = smtp_servers["plain"].handler.received
    before = len(inbox)

    sign_up(client, "mallory", "ALICE@example.com")

    wait_for(lambda: len(inbox) > before, "the note to the address's owner")
    assert inbox[-1].recipients == ["alice@example.com"]
    assert b"already uses" in inbox[-1].content
    assert b"/signup/confirm/" not in inbox[-1].content
    assert not User.objects.filter(username="mallory").exists()


def test_sign_up_answers_the_same_for_a_taken_user_name_a_used_address_and_a_new_one(
    client: Client, alice: Persona, signup_on: None
) -> None:
    def answer(username: str, email: str) -> str:
        page = sign_up(Client(), username, email).content.decode()
        return re.sub(r'(value|nonce)="[^"]*"', "", page).replace(email, "EMAIL")

    taken_name = answer("Alice", "new-person@example.com")
    used_address = answer("someone", "alice@example.com")
    new = answer("cem", "cem@example.com")

    assert taken_name == used_address == new
    assert "Check your email" in new
    assert set(User.objects.values_list("username", flat=True)) == {"alice", "cem"}
    assert not User.objects.get(username="cem").is_active


def test_sign_ups_are_throttled_per_address_and_per_recipient(client: Client, signup_on: None) -> None:
    for n in range(5):
        sign_up(client, f"user{n}", f"user{n}@example.com")
    sixth = sign_up(client, "user5", "user5@example.com").content.decode()
    for n in range(6):  # another client, the same recipient
        last = sign_up(Client(REMOTE_ADDR="203.0.113.9"), f"other{n}", "victim@example.com")

    assert "Too many sign-ups" in sixth
    assert "Too many sign-ups" in last.content.decode()
    assert User.objects.filter(email="victim@example.com").count() == 5  # pending, each mailed once
    assert User.objects.count() == 10


def test_sign_up_needs_the_sites_own_mail_server(client: Client, settings: Any) -> None:
    settings.ALLOW_SIGNUP = True
    settings.WEBMAIL_PASSWORD_RESET_BY_EMAIL = False

    assert client.get("/signup/").status_code == 404
    assert "Create an account" not in client.get("/login/").content.decode()


def test_a_forged_confirmation_link_activates_nothing(client: Client, signup_on: None) -> None:
    sign_up(client, "cem", "cem@example.com")
    pending = User.objects.get(username="cem")
    uid = urlsafe_base64_encode(force_bytes(pending.pk))

    assert client.post(f"/signup/confirm/{uid}/forged-token/").status_code == 400
    assert client.post("/signup/confirm/!!/x/").status_code == 400
    assert not User.objects.get(username="cem").is_active


def test_an_idle_session_expires(client: Client, alice: Persona, settings: Any) -> None:
    log_in(client, "alice", PASSWORD)
    session = Session.objects.get()
    idle = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs(session.expire_date - (timezone.now() + idle)) < timedelta(minutes=1)

    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    cache.clear()

    assert client.get("/").status_code == 302


def test_every_request_pushes_the_idle_expiry_forward(client: Client, alice: Persona) -> None:
    log_in(client, "alice", PASSWORD)
    Session.objects.update(expire_date=timezone.now() + timedelta(minutes=5))
    cache.clear()

    client.get("/")

    assert Session.objects.get().expire_date > timezone.now() + timedelta(hours=1)


def test_a_session_pushed_forward_within_the_last_minute_is_not_written_again(
    client: Client, alice: Persona
) -> None:
    log_in(client, "alice", PASSWORD)
    client.get("/")
    with CaptureQueriesContext(connection) as paging:
        client.get("/")
    assert not [q for q in paging.captured_queries if "UPDATE" in q["sql"] and "django_session" in q["sql"]]

    pushed = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE) - timedelta(minutes=2)
    Session.objects.update(expire_date=pushed)
    client.get("/")
    assert Session.objects.get().expire_date > pushed + timedelta(minutes=1)


def test_the_admin_shows_mailboxes_with_their_health_and_never_a_password(
    client: Client,
    alice: Persona,
    charlie: Persona,
) -> None:
    mailbox = Mailbox(
        owner=alice.user, name="Work", email_address="alice@example.com", incoming_host="mail.example.com"
    )
    mailbox.incoming_port, mailbox.incoming_login, mailbox.smtp_host = 995, "alice", "mail.example.com"
    mailbox.set_incoming_password("the-secret-pop-password")
    mailbox.save()
    MailboxSync.objects.filter(mailbox=mailbox).update(last_error_message="The server refused the login.")
    client.force_login(charlie.user)

    listing = client.get("/admin/accounts/mailbox/").content.decode()
    change = client.get(f"/admin/accounts/mailbox/{mailbox.id}/change/").content.decode()
    user_page = client.get(f"/admin/accounts/user/{alice.user.pk}/change/").content.decode()

    assert "alice@example.com" in listing
    assert "The server refused the login." in listing
    for page in (listing, change, user_page):
        assert "the-secret-pop-password" not in page
        assert mailbox.incoming_password_encrypted not in page
        assert "password_encrypted" not in page


def test_the_admin_cannot_point_a_mailbox_and_its_stored_password_at_another_server(
    client: Client,
    alice: Persona,
    charlie: Persona,
) -> None:
    mailbox = account_mailbox(
        ("a", "unused"), 995, owner=alice.user, name="Work", incoming_host="h", smtp_host="h"
    )
    client.force_login(charlie.user)
    url = f"/admin/accounts/mailbox/{mailbox.id}/change/"

    page = client.get(url).content.decode()
    client.post(url, {"incoming_host": "evil.example", "smtp_host": "evil.example", "name": "Work"})

    assert 'name="incoming_host"' not in page
    assert 'name="smtp_fingerprint"' not in page
    assert Mailbox.objects.get().incoming_host == "h"


def test_the_admin_disables_and_enables_mailboxes(client: Client, alice: Persona, charlie: Persona) -> None:
    mailbox = account_mailbox(
        ("a", "unused"), 995, owner=alice.user, name="Work", incoming_host="h", smtp_host="h"
    )
    client.force_login(charlie.user)

    client.post("/admin/accounts/mailbox/", {"action": "disable", "_selected_action": [mailbox.id]})
    assert Mailbox.objects.get().enabled is False
    client.post("/admin/accounts/mailbox/", {"action": "enable", "_selected_action": [mailbox.id]})
    assert Mailbox.objects.get().enabled is True


def test_a_user_who_is_not_staff_cannot_reach_the_admin(client: Client, alice: Persona) -> None:
    client.force_login(alice.user)

    assert client.get("/admin/accounts/mailbox/").status_code == 302
