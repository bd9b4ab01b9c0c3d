"""Inline images over HTTP: the body's `cid:` images point at signed, short-lived part links that
need no session (the sandboxed frame sends none), serve images only, and open nothing else."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from fetcher.models import Message
from tests.factories import related_mail, stored
from tests.personas import Persona
from webmail import part_links

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24  # what the test compares is bytes, not a picture
GIF = b"GIF89a" + b"\x00" * 20


def logo_mail(owner: Persona) -> Message:
    html = '<p>Logo:</p><img src="cid:logo@example.com" alt="logo"><img src="cid:icon@example.com">'
    parts = [("logo@example.com", "image/png", PNG), ("icon@example.com", "image/gif", GIF)]
    message: Message = stored(owner.mailbox, related_mail("Logolu", html, parts))[0]
    return message


def image_links(owner: Persona, message: Message) -> list[str]:
    """The image links of the message's body document as its owner's frame receives it."""
    body = owner.client.get(reverse("message_body", args=[message.public_id])).content.decode()
    return re.findall(r'<img src="([^"]+)"', body)


def part_of(message: Message, content_type: str) -> int:
    return int(message.attachments.get(content_type=content_type).part)


def test_the_frame_gets_its_inline_image_by_a_signed_link_without_any_session(alice: Persona) -> None:
    message = logo_mail(alice)
    logo, _icon = image_links(alice, message)

    response = Client().get(logo)  # no cookie, as from the sandboxed frame

    assert response.status_code == 200
    assert (response["Content-Type"], response.content) == ("image/png", PNG)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
    assert "Set-Cookie" not in response
    assert f"/mail/m/{message.public_id}/inline/{part_of(message, 'image/png')}/" in logo


def test_another_persons_link_and_a_link_moved_to_their_message_are_404(alice: Persona, bob: Persona) -> None:
    mine = logo_mail(alice)
    theirs = logo_mail(bob)
    bobs_logo, _icon = image_links(bob, theirs)
    moved = bobs_logo.replace(str(theirs.public_id), str(mine.public_id))  # bob's proof, alice's message

    assert Client().get(bobs_logo).status_code == 200
    assert Client().get(moved).status_code == 404
    assert bob.client.get(moved).status_code == 404  # his session is no proof for her part either


def test_a_link_whose_owner_was_swapped_is_404(alice: Persona, bob: Persona) -> None:
    message = logo_mail(alice)
    logo, _icon = image_links(alice, message)
    prefix, token = logo.rstrip("/").rsplit("/", 1)
    swapped = f"{prefix}/{bob.user.pk}:{token.partition(':')[2]}/"

    assert Client().get(swapped).status_code == 404


def test_an_unsigned_altered_or_borrowed_link_is_404(alice: Persona) -> None:
    message = logo_mail(alice)
    logo, icon = image_links(alice, message)
    prefix, token = logo.rstrip("/").rsplit("/", 1)
    last = token[-1]
    altered = f"{prefix}/{token[:-1]}{'A' if last != 'A' else 'B'}/"
    icon_part = part_of(message, "image/gif")
    borrowed = logo.replace(f"/inline/{part_of(message, 'image/png')}/", f"/inline/{icon_part}/")

    assert Client().get(f"{prefix}/").status_code == 404
    assert Client().get(f"{prefix}/{alice.user.pk}/").status_code == 404
    assert Client().get(f"{prefix}/{alice.user.pk}:x:y/").status_code == 404
    assert Client().get(altered).status_code == 404
    assert Client().get(borrowed).status_code == 404  # the logo's proof does not open the icon
    assert Client().get(icon).status_code == 200


def test_a_link_lives_for_its_lifetime_and_no_longer(alice: Persona, monkeypatch: pytest.MonkeyPatch) -> None:
    message = Message.objects.select_related("mailbox").get(pk=logo_mail(alice).pk)
    part, now = part_of(message, "image/png"), time.time()

    def signed_ago(seconds: float) -> str:
        with monkeypatch.context() as past:  # the link as the body document gave it `seconds` ago
            past.setattr(time, "time", lambda: now - seconds)
            return part_links.inline_url(message, part)

    assert Client().get(signed_ago(part_links.LIFETIME_SECONDS - 60)).status_code == 200
    assert Client().get(signed_ago(part_links.LIFETIME_SECONDS + 60)).status_code == 404


def test_a_part_that_is_no_image_is_never_served_by_a_link(alice: Persona) -> None:
    html = "".join(f'<img src="cid:{name}@example.com">' for name in ("page", "vector", "logo"))
    parts = [
        ("page@example.com", "text/html", b"<script>alert(document.cookie)</script>"),
        ("vector@example.com", "image/svg+xml", b'<svg onload="alert(1)"/>'),
        ("logo@example.com", "image/png", PNG),
    ]
    message = Message.objects.select_related("mailbox").get(
        pk=stored(alice.mailbox, related_mail("Karışık", html, parts))[0].pk
    )

    assert len(image_links(alice, message)) == 1  # only the PNG is linked; the others lose their src
    for content_type in ("text/html", "image/svg+xml"):
        link = part_links.inline_url(message, part_of(message, content_type))  # a valid signature even
        assert Client().get(link).status_code == 404
        assert alice.client.get(link).status_code == 404
