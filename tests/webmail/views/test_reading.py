"""Reading mail over HTTP: lists, the message, its parts, search, actions; alice's mail is never bob's."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from fetcher.models import Folder, ImageSender, Message
from tests.factories import account_mailbox, mail, stored
from tests.personas import Persona
from webmail.views import message as message_views

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def page(client: Client, url: str, **params: Any) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_the_unified_inbox_lists_only_the_users_own_mail_newest_first(alice: Persona, bob: Persona) -> None:
    stored(alice.mailbox, mail("Eski", date="Thu, 26 Nov 2026 09:00:00 +0300"), mail("Yeni"))
    stored(bob.mailbox, mail("Bob'un gizli mektubu"))

    html = page(alice.client, reverse("home"))

    assert html.index("Yeni") < html.index("Eski")
    assert "gizli" not in html
    assert 'data-testid="unread-inbox">2<' in html


def test_someone_elses_message_folder_and_parts_answer_404_on_every_url(alice: Persona, bob: Persona) -> None:
    secret = stored(bob.mailbox, mail("Gizli", attachments=[("a.pdf", "application/pdf", b"%PDF")]))[0]
    folder = Folder.objects.get(mailbox=bob.mailbox, name="INBOX")
    client = alice.client
    gets = [
        reverse("message", args=[secret.public_id]),
        reverse("message_body", args=[secret.public_id]),
        reverse("message_source", args=[secret.public_id]),
        reverse("message_part", args=[secret.public_id, 1]),
        reverse("message_parts_zip", args=[secret.public_id]),
        reverse("folder", args=[folder.public_id]),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("message_images", args=[secret.public_id])).status_code == 404
    action = {"action": "delete", "message": [str(secret.public_id)]}
    assert client.post(reverse("messages_action"), action).status_code == 404
    assert "Gizli" not in page(client, reverse("search"), q="gizli")
    assert Message.objects.filter(pk=secret.pk, folder=folder).exists()  # nothing happened to it
    assert bob.client.get(reverse("message", args=[secret.public_id])).status_code == 200


def test_lists_cost_the_same_number_of_queries_for_five_or_sixty_messages(
    alice: Persona, django_assert_max_num_queries: Any
) -> None:
    stored(alice.mailbox, *[mail(f"Konu {n}") for n in range(5)])
    client = alice.client  # signed in before counting
    # 14 on the first page only: it also records the reader's language (RememberLanguageMiddleware);
    # inside the test's transaction the list's planner settings are handed back afterwards (one more).
    with django_assert_max_num_queries(14) as few:
        page(client, reverse("home"))
    stored(alice.mailbox, *[mail(f"Konu {n}") for n in range(55)])

    with django_assert_max_num_queries(len(few.captured_queries)):
        html = page(client, reverse("home"))

    assert html.count('data-testid="message-row"') == 50
    assert 'data-testid="older"' in html


def test_older_pages_follow_on_without_repeats_while_new_mail_arrives(alice: Persona) -> None:
    stored(
        alice.mailbox,
        *[mail(f"Konu {n:02d}", date=f"Fri, 27 Nov 2026 10:{n:02d}:00 +0300") for n in range(60)],
    )
    first = page(alice.client, reverse("home"))
    after = re.search(r"after=([0-9.]+)", first)
    assert after is not None
    stored(alice.mailbox, mail("Yepyeni", date="Fri, 27 Nov 2026 11:00:00 +0300"))

    second = page(alice.client, reverse("home"), after=after[1])

    subjects = re.findall(r"Konu (\d\d)", first + second)
    assert sorted(subjects) == [f"{n:02d}" for n in range(60)]
    assert "Yepyeni" not in second


def test_the_html_body_is_sanitised_and_framed_with_a_strict_policy(alice: Persona) -> None:
    html = (
        '<p onclick="steal()">Merhaba</p><script>alert(1)</script>'
        '<img src="https://tracker.example/pixel.gif"><a href="javascript:alert(1)">tıkla</a>'
    )
    message = stored(alice.mailbox, mail("HTML", html=html))[0]

    view = page(alice.client, reverse("message", args=[message.public_id]))
    body = alice.client.get(reverse("message_body", args=[message.public_id]))

    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in view
    assert 'data-testid="images-blocked"' in view
    text = body.content.decode()
    assert "Merhaba" in text
    for dangerous in ("script", "onclick", "javascript"):
        assert dangerous not in text
    assert "tracker.example" not in text
    policy = body["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "sandbox" in policy
    assert "https:" not in policy
    assert body["X-Frame-Options"] == "SAMEORIGIN"


def test_show_images_for_this_message_or_always_for_the_sender(alice: Persona) -> None:
    html = '<img src="https://images.example/logo.png">'
    first, second = stored(alice.mailbox, mail("Bir", html=html), mail("İki", html=html))
    client = alice.client

    client.post(reverse("message_images", args=[first.public_id]), {"always": "0"})
    assert "images.example" in client.get(reverse("message_body", args=[first.public_id])).content.decode()
    assert (
        "images.example" not in client.get(reverse("message_body", args=[second.public_id])).content.decode()
    )

    client.post(reverse("message_images", args=[second.public_id]), {"always": "1"})
    assert ImageSender.objects.filter(owner=alice.user, address="ayse@example.com").exists()
    body = client.get(reverse("message_body", args=[second.public_id]))
    assert "images.example" in body.content.decode()
    assert "https:" in body["Content-Security-Policy"]


def test_attachments_download_with_a_safe_name_our_type_and_nosniff(alice: Persona) -> None:
    files = [
        ("../../etc/passwd", "text/html", b"<script>alert(1)</script>"),
        ("resim.png", "image/png", PNG),
        ("Çalışma planı.pdf", "application/pdf", b"%PDF-1.4 test"),
    ]
    message = stored(alice.mailbox, mail("Ekler", attachments=files))[0]
    parts = {a.filename: a.part for a in message.attachments.all()}
    client = alice.client

    hostile = client.get(reverse("message_part", args=[message.public_id, parts["../../etc/passwd"]]))
    assert hostile["Content-Type"] == "application/octet-stream"
    assert hostile["Content-Disposition"].startswith("attachment;")
    assert "/" not in hostile["Content-Disposition"].partition("filename")[2]
    assert hostile["X-Content-Type-Options"] == "nosniff"
    preview = client.get(
        reverse("message_part", args=[message.public_id, parts["resim.png"]]), {"inline": "1"}
    )
    assert (preview["Content-Type"], preview.content) == ("image/png", PNG)
    assert preview["Content-Disposition"].startswith("inline")
    pdf = client.get(reverse("message_part", args=[message.public_id, parts["Çalışma planı.pdf"]]))
    assert "%C3%87al%C4%B1%C5%9Fma" in pdf["Content-Disposition"]
    archive = zipfile.ZipFile(
        io.BytesIO(client.get(reverse("message_parts_zip", args=[message.public_id])).content)
    )
    assert sorted(archive.namelist()) == sorted(["passwd", "resim.png", "Çalışma planı.pdf"])
    assert archive.read("resim.png") == PNG


def many_parts(count: int) -> bytes:
    """A message of `count` tiny attachments, as anyone may send (each a few bytes, base64)."""
    parts = [
        f"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="p{n}.bin"\r\n\r\n'
        f"{base64.b64encode(f'part {n}'.encode()).decode()}\r\n"
        for n in range(count)
    ]
    head = 'From: x@example.com\r\nSubject: Many\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    return (head + "".join(parts) + "--b--\r\n").encode()


def test_download_all_walks_a_message_of_thousands_of_parts_once_and_packs_up_to_the_cap(
    alice: Persona,
) -> None:
    message = stored(alice.mailbox, many_parts(3000))[0]
    attachments = list(message.attachments.order_by("part"))
    assert len(attachments) > message_views.ZIP_MAX_PARTS

    response = alice.client.get(reverse("message_parts_zip", args=[message.public_id]))

    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert len(names) == message_views.ZIP_MAX_PARTS + 1
    cap = message_views.ZIP_MAX_PARTS
    assert names[:cap] == [a.filename for a in attachments[:cap]]
    assert [archive.read(f"p{n}.bin") for n in (0, 1, 249)] == [b"part 0", b"part 1", b"part 249"]
    note = archive.read(names[-1]).decode()
    assert names[-1] == "NOT-INCLUDED.txt"
    assert f"the first {message_views.ZIP_MAX_PARTS} of the {len(attachments)} attachments" in note


def test_download_all_stops_at_the_byte_cap_with_a_note(
    alice: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [(f"f{n}.bin", "application/octet-stream", bytes([n]) * 1000) for n in range(5)]
    message = stored(alice.mailbox, mail("Büyük", attachments=files))[0]
    monkeypatch.setattr(message_views, "ZIP_MAX_BYTES", 2500)

    response = alice.client.get(reverse("message_parts_zip", args=[message.public_id]))

    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.namelist() == ["f0.bin", "f1.bin", "NOT-INCLUDED.txt"]
    assert archive.read("f1.bin") == bytes([1]) * 1000


def test_download_all_of_a_large_message_reads_its_parts_by_their_boundaries(alice: Persona) -> None:
    big = [(f"b{n}.bin", "application/octet-stream", bytes([65 + n]) * (1536 * 1024)) for n in range(3)]
    message = stored(alice.mailbox, mail("Büyük", attachments=big))[0]

    archive = zipfile.ZipFile(
        io.BytesIO(alice.client.get(reverse("message_parts_zip", args=[message.public_id])).content)
    )

    assert archive.namelist() == ["b0.bin", "b1.bin", "b2.bin"]
    assert archive.read("b2.bin") == bytes([67]) * (1536 * 1024)


BIDI_NAMES = {
    "fatura\u202efdp.exe": "faturafdp.exe",  # RIGHT-TO-LEFT OVERRIDE: shown as "faturaexe.pdf"
    "rapor\u2067gpj.bat\u2069.txt": "raporgpj.bat.txt",  # an isolate
    "x\u200fy\u061cz\u200b.png": "xyz.png",  # marks and a zero-width space
}


def test_bidi_and_other_format_characters_never_show_in_attachment_names(alice: Persona) -> None:
    files = [(name, "application/octet-stream", b"MZ") for name in BIDI_NAMES]
    message = stored(alice.mailbox, mail("Fatura", attachments=files))[0]
    client = alice.client

    html = page(client, reverse("message", args=[message.public_id]))
    downloads = [
        client.get(reverse("message_part", args=[message.public_id, a.part]))["Content-Disposition"]
        for a in message.attachments.all()
    ]
    archive = zipfile.ZipFile(
        io.BytesIO(client.get(reverse("message_parts_zip", args=[message.public_id])).content)
    )

    for shown in BIDI_NAMES.values():
        assert f">{shown}</a>" in html
    for character in ("\u202e", "\u2067", "\u2069", "\u200f", "\u061c", "\u200b"):
        assert character not in html
    for header in downloads:
        assert not any(code in header for code in ("%E2%80%AE", "%E2%81%A7", "%E2%80%8F")), header
    assert sorted(archive.namelist()) == sorted(BIDI_NAMES.values())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ışık", {"Işık raporu"}),
        ("ISIK", {"Işık raporu"}),
        ("from:mehmet", {"Bütçe"}),
        ("from:ayşe toplantı", {"Toplantı notları"}),
        ('subject:"toplantı not"', {"Toplantı notları"}),
        ("has:attachment", {"Bütçe"}),
        ("is:starred", {"Işık raporu"}),
        ("is:unread", {"Toplantı notları", "Bütçe"}),
        ("to:ekip", {"Bütçe"}),
        ("before:2026-11-01", {"Toplantı notları"}),
        ("after:2026-11-01 in:inbox", {"Işık raporu", "Bütçe"}),
        ("kitap", set()),
    ],
)
def test_search_with_words_and_operators(alice: Persona, query: str, expected: set[str]) -> None:
    _notes, light, _budget = stored(
        alice.mailbox,
        mail("Toplantı notları", body="Toplantı yarın", date="Fri, 30 Oct 2026 10:00:00 +0300"),
        mail("Işık raporu", body="IŞIK ölçümleri"),
        mail(
            "Bütçe",
            sender="Mehmet Öz <mehmet@example.com>",
            to="Ekip <ekip@example.com>",
            attachments=[("b.pdf", "application/pdf", b"%PDF")],
        ),
    )
    Message.objects.filter(pk=light.pk).update(seen=True, flagged=True)

    html = page(alice.client, reverse("search"), q=query)

    assert _subjects(html) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("subject:ışık", {"IŞIK ölçümü"}),
        ("subject:ISIK", {"IŞIK ölçümü"}),
        ("subject:bült", {"Haftalık bülten"}),  # a prefix
        ("subject:bültenler", {"Haftalık bülten"}),  # stemmed like a free word
        ("subject:rapor", set()),  # "rapor" is only in a body
        ("rapor", {"Haftalık bülten"}),
        ("subject:gövde", set()),
        ("from:ayse", {"IŞIK ölçümü", "Haftalık bülten"}),
        ("from:AYŞE from:yılmaz", {"IŞIK ölçümü", "Haftalık bülten"}),
        ("from:mehmet", {"Fatura"}),
        ("from:example.org", {"Fatura"}),  # the address too
        ("from:zeynep", set()),  # only a recipient
        ("to:zeynep", {"IŞIK ölçümü"}),  # on Cc
        ("to:kaya", {"IŞIK ölçümü"}),
        ("to:ekip@example.com", {"Fatura"}),
        ("to:ayse", set()),  # only a sender
        ("subject:bülten from:ayşe", {"Haftalık bülten"}),
        ("subject:bülten from:mehmet", set()),
        ("from:mehmet has:attachment is:unread", {"Fatura"}),
        ("ölçüm to:zeynep in:inbox", {"IŞIK ölçümü"}),
        ("subject:ışık is:starred", set()),
        ("is:read", {"Haftalık bülten"}),
        ("is:okunmamış", {"IŞIK ölçümü", "Fatura"}),
        ("in:gelen before:2026-11-26", {"IŞIK ölçümü"}),
        ("subject:!!!", {"IŞIK ölçümü", "Haftalık bülten", "Fatura"}),  # no word: no condition
    ],
)
def test_subject_from_and_to_search_their_own_field_with_turkish_folding_and_prefixes(
    alice: Persona, query: str, expected: set[str]
) -> None:
    _light, newsletter, _invoice = stored(
        alice.mailbox,
        mail(
            "IŞIK ölçümü",
            body="Ölçümler ekte",
            headers="Cc: Zeynep Kaya <zeynep@example.net>",
            date="Wed, 25 Nov 2026 10:00:00 +0300",
        ),
        mail("Haftalık bülten", body="Bu haftanın raporu"),
        mail(
            "Fatura",
            sender="Mehmet Öz <mehmet@example.org>",
            to="Ekip <ekip@example.com>",
            attachments=[("f.pdf", "application/pdf", b"%PDF")],
        ),
    )
    Message.objects.filter(pk=newsletter.pk).update(seen=True)

    assert _subjects(page(alice.client, reverse("search"), q=query)) == expected


def test_a_search_never_finds_someone_elses_mail_by_any_operator(alice: Persona, bob: Persona) -> None:
    stored(bob.mailbox, mail("Gizli bülten", attachments=[("g.pdf", "application/pdf", b"%PDF")]))
    stored(alice.mailbox, mail("Açık mektup"))

    for query in (
        "bülten",
        "subject:bülten",
        "from:ayse",
        "to:alice",
        "has:attachment",
        "is:unread",
        "in:inbox",
    ):
        assert "Gizli" not in page(alice.client, reverse("search"), q=query), query


def _subjects(html: str) -> set[str]:
    return {re.sub(r"</?mark>", "", s) for s in re.findall(r'<span class="subject"[^>]*>(.*?)</span>', html)}


def test_actions_are_post_only_and_change_the_message(alice: Persona) -> None:
    message = stored(alice.mailbox, mail("Eylem"))[0]
    client = alice.client
    url = reverse("messages_action")

    assert client.get(url, {"action": "read", "message": str(message.public_id)}).status_code == 405
    client.post(url, {"action": "read", "message": [str(message.public_id)]})
    client.post(url, {"action": "star", "message": [str(message.public_id)]})
    message.refresh_from_db()
    assert (message.seen, message.flagged) == (True, True)

    client.post(url, {"action": "delete", "message": [str(message.public_id)]})
    message.refresh_from_db()
    assert message.folder.role == "trash"
    assert "Eylem" in page(client, reverse("mail_view", args=["trash"]))

    client.post(reverse("trash_empty"))
    assert not Message.objects.filter(pk=message.pk).exists()


def test_a_conversation_groups_replies_across_folders_and_the_list_counts_them(alice: Persona) -> None:
    first = stored(alice.mailbox, mail("Proje", headers="Message-ID: <kok@example.com>"))[0]
    stored(
        alice.mailbox,
        mail("YNT: Proje", headers="In-Reply-To: <kok@example.com>\nReferences: <kok@example.com>"),
        mail("Re: Proje", date="Fri, 27 Nov 2026 12:00:00 +0300"),  # no headers: joined by its subject
    )
    client = alice.client

    html = page(client, reverse("home"))
    view = page(client, reverse("message", args=[first.public_id]))

    assert html.count('data-testid="message-row"') == 1
    assert '<span class="thread-count">3</span>' in html
    assert view.count('data-testid="mail"') == 3
    client.post(reverse("conversations_setting"), {"conversations": "0", "back": "/"})
    assert page(client, reverse("home")).count('data-testid="message-row"') == 3


def test_show_original_displays_the_raw_source_escaped(alice: Persona) -> None:
    message = stored(alice.mailbox, mail("<b>Kaynak</b>", body="<script>x</script>"))[0]

    html = page(alice.client, reverse("message_source", args=[message.public_id]))

    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x" not in html
    raw = alice.client.get(reverse("message_source", args=[message.public_id]), {"download": "1"})
    assert raw.content == bytes(Message.objects.get(pk=message.pk).raw)


def test_a_long_conversation_takes_one_row_however_many_pages_its_messages_span(alice: Persona) -> None:
    root = "References: <kok@example.com>\nIn-Reply-To: <kok@example.com>"
    replies = [
        mail(f"Re: Uzun {n}", date=f"Fri, 27 Nov 2026 10:{n:02d}:00 +0300", headers=root) for n in range(55)
    ]
    singles = [mail(f"Tek {n}", date=f"Thu, 26 Nov 2026 10:{n:02d}:00 +0300") for n in range(5)]
    stored(
        alice.mailbox,
        mail("Uzun", headers="Message-ID: <kok@example.com>", date="Wed, 25 Nov 2026 10:00:00 +0300"),
    )
    stored(alice.mailbox, *replies, *singles)

    html = page(alice.client, reverse("home"))

    assert html.count('data-testid="message-row"') == 6
    assert '<span class="thread-count">56</span>' in html
    assert 'data-testid="older"' not in html


def test_the_sidebar_shows_imap_folders_as_a_tree_without_the_namespace_and_roles_by_name(
    alice: Persona,
) -> None:
    user, client = alice.user, alice.client
    assert alice.mailbox  # her POP3 mailbox sits beside the IMAP one
    box = account_mailbox(("alice-imap", "unused"), 993, owner=user, protocol="imap", name="Courier")
    for name, role in [
        ("INBOX", "inbox"),
        ("INBOX.Sent", "sent"),
        ("INBOX.Trash", "trash"),
        ("INBOX.Work.2024", ""),
        ("INBOX.Work.2023", ""),
        ("INBOX.Ödemeler", ""),
    ]:
        Folder.objects.create(mailbox=box, name=name, role=role, delimiter=".")

    html = page(client, reverse("home"))
    sidebar = html[html.index('class="folders mailboxes"') :]
    imap_lines = sidebar[sidebar.index("Courier") :]
    labels = re.findall(r'data-testid="folder(?:-level)?">([^<]+)<', imap_lines)

    assert labels == ["Inbox", "Sent", "Trash", "Ödemeler", "Work", "2023", "2024"]
    assert "INBOX." not in sidebar
    assert 'class="folder sub depth-1' in sidebar  # 2023 and 2024 sit under Work
    assert "Work › 2024" in html  # the move menu names the path


def test_the_sidebar_names_role_folders_in_the_readers_language(alice: Persona) -> None:
    user, client = alice.user, alice.client
    assert alice.mailbox  # her POP3 mailbox sits beside the IMAP one
    box = account_mailbox(("alice-imap", "unused"), 993, owner=user, protocol="imap", name="Courier")
    Folder.objects.create(mailbox=box, name="INBOX.Trash", role="trash", delimiter=".")

    client.cookies["postane_language"] = "tr"

    html = page(client, reverse("home"))

    sidebar = html[html.index('class="folders mailboxes"') :]
    assert 'data-testid="folder">Çöp<' in sidebar
    assert 'data-testid="folder">Gelen kutusu<' not in sidebar  # no INBOX row here: none was made


def test_list_rows_escape_every_value_the_sender_chose(alice: Persona) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    stored(
        alice.mailbox,
        mail(f"Konu {hostile}", sender=f'"Kötü {hostile}" <kotu@example.com>', body=f"Gövde {hostile}"),
    )
    for html in (page(alice.client, reverse("home")), page(alice.client, reverse("search"), q="kötü")):
        rows = html[html.index('data-testid="messages"') :]
        assert "<img" not in rows
        assert rows.count("&lt;img src=x onerror=") == 3  # sender, subject, snippet


def test_mail_sent_from_the_mailbox_names_whom_it_went_to_in_the_list(alice: Persona) -> None:
    stored(
        alice.mailbox,
        mail(
            "Teklif", sender="Alice <alice@example.com>", to="Bob Öztürk <bob@example.net>, cem@example.net"
        ),
        mail("Soru", sender="Ayşe Yılmaz <ayse@example.com>"),
    )

    rows = page(alice.client, reverse("home"))

    assert "To: Bob Öztürk, cem@example.net" in rows
    assert "Ayşe Yılmaz" in rows  # received mail names its sender
    assert "Alice</span>" not in rows  # not the person's own name
