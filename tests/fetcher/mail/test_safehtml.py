"""The sanitiser on its own: what it keeps, what it drops, and that a second pass changes nothing."""

from __future__ import annotations

import pytest

from fetcher.mail.safehtml import linkify, sanitise
from tests.hostile_html import HOSTILE

EVIL = "http://127.0.0.2:9"
OWN = "/mail/m/1/part/"
FORBIDDEN = (
    *(
        "<script",
        "<base",
        "<meta",
        "<form",
        "<iframe",
        "<object",
        "<embed",
        "<svg",
        "<math",
        "<style",
        "<link",
    ),
    *("onerror", "onload", "javascript:", "vbscript:", "data:", "position"),
)


def clean(html: str, *, images: bool = False) -> str:
    return sanitise(html, cid_url=lambda cid: f"{OWN}{cid}/", own_prefix=OWN, remote_images=images).html


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_html_keeps_no_script_and_no_remote_fetch(name: str) -> None:
    cleaned = clean(HOSTILE[name].format(evil=EVIL))

    lowered = cleaned.lower()
    for forbidden in FORBIDDEN:
        assert forbidden not in lowered, (name, cleaned)
    if name != "ordinary link":
        assert "127.0.0.2" not in cleaned, (name, cleaned)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_sanitising_twice_gives_the_same_result_as_once(name: str) -> None:
    once = clean(HOSTILE[name].format(evil=EVIL))

    assert clean(once) == once


def test_formatting_survives_and_links_open_apart() -> None:
    cleaned = clean(
        '<p style="color: red; font-weight: bold">Merhaba <b>dünya</b></p>'
        '<table><tr><td colspan="2">hücre</td></tr></table><a href="https://example.com/a">bağlantı</a>'
    )

    assert '<p style="color:red;font-weight:bold">Merhaba <b>dünya</b></p>' in cleaned
    assert '<td colspan="2">hücre</td>' in cleaned
    assert '<a href="https://example.com/a" target="_blank" rel="noopener noreferrer">bağlantı</a>' in cleaned


def test_remote_images_stay_out_until_asked_and_cid_images_point_at_our_parts() -> None:
    html = '<img src="https://images.example/logo.png"><img src="cid:logo@example.com">'

    blocked = sanitise(html, cid_url=lambda cid: f"{OWN}3/", own_prefix=OWN, remote_images=False)
    shown = clean(html, images=True)

    assert blocked.blocked_images == 1
    assert blocked.html == f'<img><img src="{OWN}3/">'
    assert 'src="https://images.example/logo.png"' in shown


def test_plain_text_is_escaped_and_its_links_made_clickable() -> None:
    text = "Bkz. https://örnek.com.tr/yol?a=1&b=2. <script>alert(1)</script> yaz: ali@example.com"

    html = linkify(text)

    assert "<script>" not in html
    assert '<a href="https://örnek.com.tr/yol?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">' in html
    assert '<a href="mailto:ali@example.com"' in html
    assert html.endswith("ali@example.com</a>")
