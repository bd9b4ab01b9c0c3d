"""The search document built at parse time: Turkish folding and stems, matched by PostgreSQL."""

from __future__ import annotations

import importlib
import uuid
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from accounts.models import User
from fetcher import folders, selectors
from fetcher.ingest import parsing, storing
from fetcher.mail import search
from fetcher.models import Message
from tests.factories import account_mailbox


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("ışık", "IŞIK"),
        ("ISIK", "ışık"),
        ("isik", "Işıklar"),
        ("İstanbul", "ISTANBUL'da"),
        ("istanbul", "İstanbul"),
        ("kitap", "kitapları"),
        ("kitaplar", "kitabı"),
        ("ozet", "Özet"),
        ("Çalışma", "calisma"),
    ],
)
def test_a_query_word_matches_the_turkish_forms_of_a_word(query: str, text: str) -> None:
    lexemes = set(search.lexemes([text]))

    assert all(
        any(lexeme.startswith(prefix) for lexeme in lexemes for prefix in prefixes)
        for prefixes in search.query_terms(query)
    )


# Turkish word forms that must find each other both ways (query in one column, text in the
# other, then swapped), matched by PostgreSQL itself: a word written with or without Turkish
# letters, in any case, and its forms with suffixes (buffer letters, softened consonants).
FORMS = [
    ("igdir", "Iğdır"),
    ("Igdir", "IĞDIR"),
    ("ığdır", "igdir"),
    ("IGDIR", "ığdır"),
    ("sözleşmesi", "sözleşmeler"),
    ("sozlesmesi", "SÖZLEŞMELERİ"),
    ("SÖZLEŞMESİ", "sözleşme"),
    ("faturası", "faturaları"),
    ("toplantısı", "Toplantılar"),
    ("arabayı", "araba"),
    ("kitabı", "kitaplar"),
    ("kitaplarımız", "kitabı"),
    ("ırmağı", "Irmak"),
    ("İzmir", "IZMIR"),
    ("izmirde", "İzmir"),
    ("izmir", "İzmir"),
    ("ılık", "ILIK"),
    ("öğrencilerin", "ÖĞRENCİ"),
    ("ogrenci", "Öğrencilerimiz"),
    ("ödemesi", "ödemeler"),
]


def _matches(query: str, text: str) -> bool:
    with connection.cursor() as cursor:
        document = search.document([text], {}, MAILBOX)
        cursor.execute("SELECT %s::tsvector @@ %s::tsquery", [document, search.tsquery(query)])
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db
@pytest.mark.parametrize(("one", "other"), FORMS)
def test_turkish_word_forms_find_each_other_both_ways(one: str, other: str) -> None:
    assert _matches(one, other), (one, search.tsquery(one), search.document([other], {}, MAILBOX))
    assert _matches(other, one), (other, search.tsquery(other), search.document([one], {}, MAILBOX))


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "text"), [("igdir", "iğne"), ("sözleşmesi", "sözlük"), ("ışık", "kış")])
def test_turkish_word_forms_do_not_find_other_words(query: str, text: str) -> None:
    assert not _matches(query, text)


@pytest.mark.parametrize(("query", "text"), [("kitap", "kalem"), ("ışık", "kış"), ("Ayşe", "Ali")])
def test_a_query_word_does_not_match_other_words(query: str, text: str) -> None:
    lexemes = set(search.lexemes([text]))

    assert not any(lexeme.startswith(term) for lexeme in lexemes for term in search.query_words(query))


def test_a_word_cut_to_a_letter_by_the_stemmer_is_searched_whole() -> None:
    assert search.query_words("Ayşe") == ["ayse"]


def test_junk_runs_and_repeated_words_do_not_swell_the_document() -> None:
    text = "toplantı " * 1000 + "A" * 500

    assert search.lexemes([text]) == ["toplanti", "topla"]


MAILBOX = uuid.UUID(int=7)


def test_the_document_and_the_query_are_valid_postgresql_literals() -> None:
    assert search.document(["O'Brien \\ Işık"], {}, MAILBOX) == f"'~m:{MAILBOX.hex}' 'o' 'brien' 'isik'"
    assert search.tsquery("O'Brien işığı") == "'o':* & 'brien':* & ('isik':* | 'isigi':*)"
    assert search.document([""], {}, MAILBOX) == f"'~m:{MAILBOX.hex}'"
    assert search.tsquery("   ,") == ""


def test_subject_sender_and_recipients_are_in_the_document_twice_once_tagged() -> None:
    fields = search.fields("Bülten", [("Ayşe Yılmaz", "ayse@example.com")], [("", "ekip@example.net")])
    lexemes = search.document(["Gövde metni"], fields, MAILBOX).strip("'").split("' '")

    assert {"~s:bulten", "~f:ayse", "~f:yilmaz", "~t:ekip", "bulten", "ayse", "ekip", "govde"} <= set(lexemes)
    assert not {"~s:govde", "~s:ayse", "~f:bulten", "~t:ayse"} & set(lexemes)
    assert len(lexemes) == len(set(lexemes))
    assert search.tsquery("bült", "subject") == "'~s:bult':*"
    assert search.tsquery("Ayşe", "from") == "'~f:ayse':*"


def test_a_free_word_is_no_prefix_of_a_tagged_lexeme() -> None:
    # A tag starts with "~", which \\w never matches: no query word can begin with it.
    for query in ("s", "f", "t", "m", "~", "~s", "_s"):
        assert all(not lexeme.startswith("~") for lexeme in search.query_words(query))


def turkish_message(subject: str, body: str, charset: str = "windows-1254") -> bytes:
    head = (
        "From: =?iso-8859-9?q?Ay=FEe_Y=FDlmaz?= <ayse@example.com>\r\nTo: bob@example.net\r\n"
        f"Subject: =?utf-8?b?{__import__('base64').b64encode(subject.encode()).decode()}?=\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode()
    attachment = (
        b"\r\n--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''%C3%87al%C4%B1%C5%9Fma-plan%C4%B1.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    )
    return head + body.encode(charset) + attachment


def found(mailbox_id: uuid.UUID, query: str) -> set[str]:
    match = RawSQL("search_vector @@ %s::tsquery", [search.tsquery(query)], output_field=BooleanField())
    matches = Message.objects.filter(match, mailbox_id=mailbox_id)
    return set(matches.values_list("subject", flat=True))


@pytest.mark.django_db
def test_parsed_turkish_mail_is_found_by_subject_sender_body_and_attachment_name() -> None:
    mailbox = account_mailbox(("search", "unused"), 995)
    batch = [
        storing.Fetched("1", turkish_message("Toplantı notları", "IŞIK ve İSTANBUL, kitapları getirin.")),
        storing.Fetched("2", turkish_message("Bütçe", "Şubat ödemeleri", charset="iso-8859-9")),
    ]
    ids = storing.store_pop3_batch(mailbox=mailbox, folder=folders.inbox_of(mailbox), batch=batch)
    parsing.parse_messages(ids)

    assert found(mailbox.id, "toplantı") == {"Toplantı notları"}
    assert found(mailbox.id, "ışık istanbul") == {"Toplantı notları"}
    assert found(mailbox.id, "kitap") == {"Toplantı notları"}
    assert found(mailbox.id, "subat odeme") == {"Bütçe"}
    assert found(mailbox.id, "Ayşe Yılmaz") == {"Toplantı notları", "Bütçe"}
    assert found(mailbox.id, "ayse@example.com") == {"Toplantı notları", "Bütçe"}
    assert found(mailbox.id, "çalışma planı") == {"Toplantı notları", "Bütçe"}
    assert found(mailbox.id, "toplantı şubat") == set()


def _without_tags(ids: list[int]) -> None:
    """The vectors as Postane wrote them before there were tagged lexemes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE fetcher_message SET search_vector = array_to_tsvector(ARRAY(SELECT lexeme"
            " FROM unnest(tsvector_to_array(search_vector)) AS lexeme WHERE lexeme NOT LIKE '~%%'))"
            " WHERE id = ANY(%s)",
            [ids],
        )


def _vectors(ids: list[int]) -> list[str]:
    return [
        str(v)
        for v in Message.objects.filter(id__in=ids).order_by("id").values_list("search_vector", flat=True)
    ]


@pytest.mark.django_db
def test_the_migration_gives_vectors_written_before_the_tags_the_same_tags_as_a_parse() -> None:
    mailbox = account_mailbox(("tags", "unused"), 995)
    batch = [storing.Fetched("1", turkish_message("Haftalık bülten", "Şubat ödemeleri"))]
    ids = storing.store_pop3_batch(mailbox=mailbox, folder=folders.inbox_of(mailbox), batch=batch)
    parsing.parse_messages(ids)
    parsed = _vectors(ids)
    _without_tags(ids)
    user = mailbox.owner
    assert _searched(user, "subject:bülten") == _searched(user, "şubat") == set()

    migration = importlib.import_module("fetcher.migrations.0020_search_field_tags")
    migration.add_field_tags(None, SimpleNamespace(connection=connection))
    once = _vectors(ids)
    migration.add_field_tags(None, SimpleNamespace(connection=connection))

    assert once == parsed == _vectors(ids)  # the same lexemes as a parse; a second run changes nothing
    for query in ("subject:bült", "from:ayşe", "from:example.com", "to:bob", "şubat"):
        assert _searched(user, query) == {"Haftalık bülten"}, query


def _searched(user: User, query: str) -> set[str]:
    page = selectors.page_of_search(user, search.parse_query(query), None)
    return {message.subject for message in page.messages}
