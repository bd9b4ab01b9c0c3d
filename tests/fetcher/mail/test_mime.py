"""Where other parsers' test suites found text, names and letters that Postane missed (issue #10, point 4).

Each class has a fixture of our own in tests/fixtures/mime/ named after what it exercises, and where the
shared corpus has a real-world case, that file is read in place too (skipped when the corpus is absent).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from fetcher.mail import mime
from tests.corpus import CORPUS, needs_corpus
from tests.factories import account_mailbox, stored
from tests.paths import TESTS
from tests.personas import Persona

FIXTURES = TESTS / "fixtures" / "mime"


def fixture(name: str, language: str = "") -> mime.Parsed:
    return mime.parse((FIXTURES / name).read_bytes(), language=language)


def corpus(prefix: str) -> mime.Parsed:
    return mime.parse(next(CORPUS.glob(f"{prefix}_*.eml")).read_bytes())


# --- the text body, wherever a part offers one ---------------------------------------------------------


def test_a_digest_shows_the_text_of_its_implicit_rfc822_parts() -> None:
    parsed = fixture("digest-implicit-rfc822.eml")

    assert parsed.text == "First digested text.\n\nSecond digested text."
    assert parsed.text_source == mime.TEXT_FROM_ATTACHED
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822", "message/rfc822"]


def test_a_forwarded_message_that_is_the_whole_body_shows_its_text() -> None:
    parsed = fixture("forwarded-rfc822-only-body.eml")

    assert parsed.text == "İletilen metin burada.\n"
    assert parsed.text_source == mime.TEXT_FROM_ATTACHED


def test_a_base64_encoded_rfc822_message_is_decoded_and_its_text_shown() -> None:
    parsed = fixture("base64-encoded-rfc822.eml")

    assert parsed.text == "İletilen metin burada.\r\n"
    assert parsed.text_source == mime.TEXT_FROM_ATTACHED


def test_a_koi8r_body_without_a_charset_is_read_in_the_charset_its_russian_headers_use() -> None:
    parsed = fixture("koi8r-body-under-russian-headers.eml", language="tr")

    assert parsed.subject == "Привет из Москвы"
    assert parsed.text == "Здравствуйте! Встречаемся завтра в десять.\r\n"
    assert "text/plain body: decoded as koi8-r (declared)" in parsed.problems


def test_a_multipart_without_a_boundary_parameter_is_split_by_its_own_delimiter_lines() -> None:
    parsed = fixture("multipart-without-boundary-parameter.eml")

    assert parsed.text == "The plain part."
    assert parsed.html == "<p>The HTML part.</p>"
    assert parsed.text_source == ""


def test_a_multipart_whose_lines_use_another_boundary_is_split_by_those_lines() -> None:
    parsed = fixture("multipart-boundary-not-the-declared-one.eml")

    assert parsed.text == "Text behind another boundary."
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [("r.pdf", "application/pdf")]
    assert (
        mime.part_content((FIXTURES / "multipart-boundary-not-the-declared-one.eml").read_bytes(), 2)
        == b"%PDF-"
    )


def test_a_multipart_with_no_part_at_all_shows_its_content_as_text_and_says_so() -> None:
    parsed = fixture("multipart-without-any-delimiter.eml")

    assert parsed.text == "Just a line of text, no parts at all.\r\n"
    assert parsed.text_source == mime.TEXT_UNSPLIT


def test_a_boundary_line_followed_by_trailing_text_still_separates_the_parts() -> None:
    raw = (FIXTURES / "boundary-line-with-trailing-text.eml").read_bytes()
    parsed = mime.parse(raw)

    assert parsed.text == "The real body."
    assert [(a.index, a.filename) for a in parsed.attachments] == [(2, "notes.txt")]
    assert mime.part_content(raw, 2) == b"notes"


@needs_corpus
@pytest.mark.parametrize(
    ("prefix", "start"),
    [
        ("r046", "Testing email forwarding with Groupwise"),  # message/rfc822 as the whole body
        ("r050", "Text body"),  # base64 message/rfc822 inside another
        ("r070", "The original message was received at Fri, 6 Apr 2001"),  # boundary cut off
        ("r071", "Blah blah blah"),  # multipart with no boundary
        ("r075", "AAA"),  # boundary never used
        ("r081", "Hello\r\nThis is an outlook test"),  # unquoted boundary with "=" read short
    ],
)
def test_corpus_messages_python_finds_no_text_in_get_the_text_other_parsers_find(
    prefix: str, start: str
) -> None:
    assert corpus(prefix).text.startswith(start)


@needs_corpus
def test_a_corpus_message_with_a_foreign_boundary_gets_its_html() -> None:
    assert "Problemas para visualizar" in corpus("r086").html


# --- raw 8-bit header bytes ----------------------------------------------------------------------------


def test_a_latin1_subject_is_read_in_the_charset_a_part_declares() -> None:
    parsed = fixture("latin1-8bit-subject-charset-in-part.eml")

    assert parsed.subject == "Die Hasen und die Frösche"
    assert "subject: 8-bit bytes read as iso8859-1 (declared)" in parsed.problems


def test_an_undeclared_8bit_subject_is_read_in_the_readers_language() -> None:
    parsed = fixture("windows1254-8bit-subject-no-charset.eml", language="tr")

    assert parsed.subject == "Toplantı notları"
    assert parsed.from_[0].name == "Ayşe"
    assert "subject: 8-bit bytes read as cp1254 (language)" in parsed.problems


def test_without_a_language_charset_the_detector_reads_raw_header_bytes() -> None:
    raw = b"Subject: \xcf\xf0\xe8\xe2\xe5\xf2 \xe8\xe7 \xcc\xee\xf1\xea\xe2\xfb\r\n\r\nx\r\n"  # cp1251

    parsed = mime.parse(raw, language="en")

    assert parsed.subject == "Привет из Москвы"
    assert "subject: 8-bit bytes read as cp1251 (detected)" in parsed.problems


def test_raw_utf8_headers_stay_utf8_whatever_the_declared_charset() -> None:
    parsed = fixture("utf8-8bit-subject.eml", language="tr")

    assert parsed.subject == "Toplantı notları ✓"
    assert not [problem for problem in parsed.problems if "8-bit" in problem]


def test_an_encoded_word_in_a_charset_python_does_not_know_is_read_by_its_alias() -> None:
    assert fixture("encoded-word-in-charset-alias-iso-8859-8-i.eml").subject == "שלום עולם 2026"


@needs_corpus
@pytest.mark.parametrize(
    ("prefix", "subject"),
    [
        ("r022", "Die Hasen und   die Frösche (Microsoft Outlook 00)"),  # folded as Python unfolds
        ("r098", "Die Hasen und die Frösche (Microsoft Outlook 00)"),
        ("r006", "Formação FrenetikPolis: Mega Campanha Final Verão | Cursos de Setembro"),
        ("r011", "Узнай как зарабатывать от 1000$ в неделю!"),
        ("r012", "מענה 'אני לא נמצא': Invoice 02722027"),  # iso-8859-8-i in an encoded word
        ("r017", "我把镜头拉近些，你们看看这个是什么屄，这种场合自然少不了内射"),  # gb2312 read as gb18030
    ],
)
def test_corpus_subjects_in_raw_legacy_charsets_have_no_replacement_characters(
    prefix: str, subject: str
) -> None:
    assert corpus(prefix).subject == subject


# --- attachments named only by the Content-Type ------------------------------------------------------


def test_an_old_part_named_only_by_content_type_without_a_semicolon_is_listed() -> None:
    parsed = fixture("content-type-name-without-semicolon.eml")

    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        ("rapor.xls", "application/octet-stream", 3)
    ]
    assert parsed.text == "See the file."


# --- a Maildir file with CRLF served as CR CR LF (point 14) --------------------------------------------


def test_cr_cr_lf_line_ends_are_read_as_one_line_end_each() -> None:
    parsed = fixture("maildir-crlf-served-as-cr-cr-lf.eml")

    assert parsed.subject == "Sunucudan gelen"
    assert [a.address for a in parsed.to] == ["bob@example.com"]
    assert parsed.text == "İlk satır.\r\nİkinci satır.\r\n"


# --- stored and shown ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_text_from_an_attached_message_is_stored_with_its_source_and_the_page_says_so(alice: Persona) -> None:
    raw = (FIXTURES / "forwarded-rfc822-only-body.eml").read_bytes()
    message = stored(alice.mailbox, raw)[0]
    client = alice.client

    page = client.get(reverse("message", args=[message.public_id])).content.decode()

    assert bytes(message.raw) == raw  # the raw bytes never change
    assert message.text_body == "İletilen metin burada.\n"
    assert message.body_source == mime.TEXT_FROM_ATTACHED
    assert 'data-testid="body-source">Text from the attached message<' in page
    assert "İletilen metin burada." in page


@pytest.mark.django_db
def test_cr_cr_lf_mail_is_stored_as_it_came_and_read_as_the_server_meant(settings: object) -> None:
    raw = (FIXTURES / "maildir-crlf-served-as-cr-cr-lf.eml").read_bytes()

    message = stored(account_mailbox(("crlf", "unused"), 995, name="C"), raw)[0]

    assert bytes(message.raw) == raw
    assert message.subject == "Sunucudan gelen"
    assert message.text_body == "İlk satır.\r\nİkinci satır.\r\n"


# --- the same above 4 MB, where parts are found by scanning for boundaries -------------------------------


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("*.eml")))
def test_boundary_scanning_finds_the_same_text_names_and_letters(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = fixture(name, language="tr")

    monkeypatch.setattr(mime, "PARSED_BY_BOUNDARIES", 0)
    scanned = fixture(name, language="tr")

    assert (scanned.subject, scanned.from_, scanned.to) == (full.subject, full.from_, full.to)
    assert (scanned.text.strip(), scanned.html.strip(), scanned.text_source) == (
        full.text.strip(),
        full.html.strip(),
        full.text_source,
    )
    assert [(a.index, a.filename, a.content_type) for a in scanned.attachments] == [
        (a.index, a.filename, a.content_type) for a in full.attachments
    ]
