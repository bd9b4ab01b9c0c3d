"""From and Subject read from a header block alone, for a message stage two has not parsed yet."""

from __future__ import annotations

import pytest

from fetcher.mail.header_scan import SHOWN_HEAD, Shown, shown_headers


def test_encoded_words_are_decoded() -> None:
    head = (
        b"Received: from mx by example.com\r\n"
        b"From: =?utf-8?q?Ay=C5=9Fe_Y=C4=B1lmaz?= <ayse@example.com>\r\n"
        b"Subject: =?utf-8?b?VG9wbGFudMSxIG5vdGxhcsSx?=\r\n"
        b"\r\n"
        b"G\xc3\xb6vde"
    )

    assert shown_headers(head) == Shown("Ayşe Yılmaz", "ayse@example.com", "Toplantı notları")


def test_a_folded_subject_and_raw_utf8_are_read() -> None:
    head = "From: Çağrı Öztürk <cagri@example.com>\nSubject: İlk satır\n\tikinci satır\n\nbody".encode()

    assert shown_headers(head) == Shown("Çağrı Öztürk", "cagri@example.com", "İlk satır ikinci satır")


def test_missing_headers_give_empty_values() -> None:
    assert shown_headers(b"Date: Fri, 27 Nov 2026 10:00:00 +0300\r\n\r\nbody") == Shown()


def test_an_address_without_a_name() -> None:
    assert shown_headers(b"From: bob@example.net\r\n\r\n") == Shown("", "bob@example.net", "")


def test_a_header_cut_by_the_database_is_not_read_half() -> None:
    head = b"From: Ayse <ayse@example.com>\r\nX-Filler: " + b"x" * SHOWN_HEAD
    head = head[: SHOWN_HEAD - 20] + b"\r\nSubject: Yar"

    assert shown_headers(head[:SHOWN_HEAD] + b"x" * (SHOWN_HEAD - len(head))) == Shown(
        "Ayse", "ayse@example.com", ""
    )


@pytest.mark.parametrize(
    "head",
    [
        b"From: =?utf-8?q?bozuk\r\nSubject: =?x-unknown?q?abc?=\r\n\r\n",
        b"From: <<<@>>>\r\nSubject: \xff\xfe\r\n\r\n",
        b"From: undisclosed-recipients:;\r\n\r\n",
        b"",
        b"\xff" * 100,
    ],
)
def test_broken_headers_never_raise(head: bytes) -> None:
    shown = shown_headers(head)

    assert isinstance(shown.subject, str)


def test_raw_bytes_not_in_utf8_are_read_as_turkish_windows() -> None:
    assert shown_headers(b"Subject: \xdd\xfeletim\r\n\r\n").subject == "İşletim"
