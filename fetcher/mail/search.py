"""Search terms, Turkish first: one folding for the index and the queries. Plain Python.

A message's search document is the set of its words, each folded (lower case the Turkish way,
then I/ı/İ/i and the Turkish letters ç ğ ö ş ü to their ASCII forms, so "ISIK", "ışık" and
"Işık" are one word), plus each word's Turkish stem (Snowball, through PyStemmer). A query
word is matched as a prefix by any of a few forms folded the same way (`query_prefixes`): the
word itself, so that "igdir" finds "Iğdır" although Snowball stems the two spellings apart; its
stem, so "kitaplar" finds "kitap", "kitabı" and "kitapları"; and its stem without the buffer
letter Snowball leaves, so "sözleşmesi" finds "sözleşmeler". The documents need nothing new.

The subject's words, the sender's (name and address) and the recipients' (To and Cc) are in the
document a second time behind a field tag: "~s:" subject, "~f:" from, "~t:" to, so
`subject:bülten` is the prefix query '~s:bulten':* and uses the same GIN index as free words,
exactly (a prefix needs no recheck, a weight would). The document also holds its mailbox,
"~m:<id>", so that a search names the person's mailboxes in its tsquery and the GIN index alone
finds their matches and no one else's. A tag starts with "~", which no word holds (words are \\w
runs), so a free word never matches a tagged lexeme by prefix.

Tags, not tsvector weights: a weight sits on a position, so every lexeme would need one (about
5 bytes more each, the body's too), and PostgreSQL matches a lexeme stored without positions
against a weight-restricted query whatever its field, so vectors stored before would have
answered `subject:` from their bodies. A tagged query finds nothing in such a vector instead, and
migration 0018 adds the tags to every vector stored before them.

The document is written as a tsvector literal: building it here, in the parse worker, costs a
fraction of PostgreSQL's `to_tsvector` and scales with the number of worker processes.
Mail search is ordered by date, not rank, so lexemes carry no positions or weights.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import Stemmer

MAX_WORD_LENGTH = 60  # longer runs are base64, hashes or junk: nobody searches for them
MAX_LEXEMES = 20_000  # a tsvector holds at most 1 MB
# Snowball cuts some words to one letter ("Ayşe" to "a"), and such a prefix matches everything.
MIN_STEM_LENGTH = 3
_WORD = re.compile(r"\w+")
_ASCII_FOLDS = tuple(zip("ıçğöşüâîû", "icgosuaiu", strict=True))
_stemmer = Stemmer.Stemmer("turkish")


def turkish_lower(text: str) -> str:
    """Lower case with Turkish rules: I is ı and İ is i (plain lower() makes İ into i + a combining dot)."""
    return text.replace("I", "ı").replace("İ", "i").lower()


def _ascii_fold(text: str) -> str:
    if text.isascii():
        return text
    for letter, plain in _ASCII_FOLDS:
        text = text.replace(letter, plain)
    return text


def words(text: str) -> list[str]:
    """The distinct words of a text, Turkish-lower-cased, in order of first appearance."""
    return list(dict.fromkeys(_WORD.findall(turkish_lower(text))))


def lexemes(texts: Iterable[str]) -> list[str]:
    """Folded words and folded stems of these texts, each once."""
    found = words(" ".join(texts))
    stems = [stem for stem in _stemmer.stemWords(found) if len(stem) >= MIN_STEM_LENGTH]
    folded = _ascii_fold(" ".join(found) + " " + " ".join(stems)).split()
    return [word for word in dict.fromkeys(folded) if len(word) <= MAX_WORD_LENGTH][:MAX_LEXEMES]


# The fields that operators search, and the tag their lexemes carry in the document.
FIELD_TAGS = {"subject": "~s:", "from": "~f:", "to": "~t:"}
# Every document also holds its mailbox, so that the GIN index alone finds one person's matches.
MAILBOX_TAG = "~m:"


def fields(
    subject: str, senders: Iterable[tuple[str, str]], recipients: Iterable[tuple[str, str]]
) -> dict[str, list[str]]:
    """The texts `subject:` `from:` `to:` search, from (name, address) pairs: of the parsed message,
    or of the stored columns when migration 0018 adds the tags to vectors written without them.
    """
    return {
        "subject": [subject],
        "from": [text for pair in senders for text in pair],
        "to": [text for pair in recipients for text in pair],
    }


def document(texts: Iterable[str], fields: Mapping[str, Iterable[str]], mailbox: uuid.UUID) -> str:
    """A tsvector literal: the lexemes of `texts` and of `fields` (keys of FIELD_TAGS), those of
    `fields` once more with their tag, and the mailbox. Free words match every field; operators
    only their own.

    Lexemes are \\w runs and tags hold no quote or backslash, so nothing needs escaping.
    """
    tagged = [MAILBOX_TAG + mailbox.hex]
    free: list[str] = []
    for name, texts_of_field in fields.items():
        found = lexemes(texts_of_field)
        tagged.extend(FIELD_TAGS[name] + lexeme for lexeme in found)
        free.extend(found)
    return _literal(tagged + list(dict.fromkeys([*free, *lexemes(texts)])))


def tags_document(fields: Mapping[str, Iterable[str]], mailbox: uuid.UUID) -> str:
    """The tagged lexemes of `document` alone, for a vector written before there were tags."""
    tagged = [FIELD_TAGS[name] + lexeme for name, texts in fields.items() for lexeme in lexemes(texts)]
    return _literal([MAILBOX_TAG + mailbox.hex, *tagged])


def _literal(found: list[str]) -> str:
    return "'" + "' '".join(found[:MAX_LEXEMES]) + "'" if found else ""


# Turkish joins a suffix that starts with a vowel to a stem ending in one through a buffer letter:
# sözleşme-s-i, araba-y-ı, kapı-n-ı. Snowball leaves the buffer on the stem (sözleşmes), which
# then is no prefix of the other forms (sözleşmeler, sözleşme).
_VOWELS = frozenset("aeıioöuü")
_BUFFERS = frozenset("syn")


def query_prefixes(term: str) -> tuple[str, ...]:
    """The prefixes one query word matches by, any one of them enough: the folded word itself (so
    a word finds itself however it is written: igdir, Igdir, Iğdır, IĞDIR), its folded stem (its
    other forms: kitabı finds kitaplar), and the stem without a buffer letter where the stemmer
    cut one vowel after it (sözleşmesi finds sözleşmeler). A prefix that starts with another of
    them adds nothing and is left out.
    """
    word = turkish_lower(term)
    stem = _stemmer.stemWord(word)
    found = [word]
    if len(stem) >= MIN_STEM_LENGTH:
        found.append(stem)
        cut = word.removeprefix(stem)
        if (
            len(cut) == 1
            and cut in _VOWELS
            and len(stem) > MIN_STEM_LENGTH
            and stem[-1] in _BUFFERS
            and stem[-2] in _VOWELS
        ):
            found.append(stem[:-1])
    folded = sorted({_ascii_fold(prefix) for prefix in found}, key=len)
    kept: list[str] = []
    for prefix in folded:
        if not any(prefix.startswith(shorter) for shorter in kept):
            kept.append(prefix)
    return tuple(kept)


def query_terms(text: str) -> list[tuple[str, ...]]:
    """Each word of a free-text query as its prefixes (query_prefixes), each word once."""
    return list(dict.fromkeys(query_prefixes(word) for word in words(text) if len(word) <= MAX_WORD_LENGTH))


def query_words(text: str) -> list[str]:
    """Every prefix a free-text query matches by, each once (what a page highlights)."""
    return list(dict.fromkeys(prefix for prefixes in query_terms(text) for prefix in prefixes))


def tsquery(text: str, field: str = "") -> str:
    """A tsquery literal matching messages that hold every word of `text` (each by one of its
    prefixes); '' for none. With a `field` (a key of FIELD_TAGS), the words must be in that field.
    """
    tag = FIELD_TAGS[field] if field else ""
    return " & ".join(
        _any_of([f"'{tag}{prefix}':*" for prefix in prefixes]) for prefixes in query_terms(text)
    )


def _any_of(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else "(" + " | ".join(terms) + ")"


def in_mailboxes(text_query: str, mailboxes: Iterable[uuid.UUID]) -> str:
    """A tsquery: `text_query` (a tsquery literal, not empty) in one of these mailboxes."""
    scope = " | ".join(f"'{MAILBOX_TAG}{mailbox.hex}'" for mailbox in mailboxes)
    return f"({scope}) & ({text_query})" if scope else ""


def fold(text: str) -> str:
    """Text folded as the index folds it, for comparing names (in:<folder>)."""
    return _ascii_fold(turkish_lower(text))


# What PostgreSQL must do to a column to compare it with fold(): translate() after lower().
# lower() already makes I into i (and İ into i under the C.UTF-8 and ICU rules), so the
# Turkish letters are all that is left.
FOLD_FROM, FOLD_TO = "ıçğöşüâîûİI", "icgosuaiuii"

_TOKEN = re.compile(
    r'(?P<op>[a-zA-Zİı]+):(?:"(?P<quoted>[^"]*)"|(?P<value>\S+))|"(?P<phrase>[^"]*)"|(?P<word>\S+)'
)
OPERATORS = frozenset({"from", "to", "subject", "has", "is", "in", "before", "after"})


@dataclass
class Query:
    """A search box's text: free words and operators (from: to: subject: has: is: in: before: after:)."""

    words: list[str] = field(default_factory=list)
    operators: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.words)


def parse_query(text: str) -> Query:
    query = Query()
    for match in _TOKEN.finditer(text.replace("\0", "")):  # PostgreSQL text cannot hold a NUL
        operator = (match["op"] or "").lower()
        if operator in OPERATORS:
            query.operators.append(
                (operator, match["quoted"] if match["quoted"] is not None else match["value"])
            )
        elif match["op"]:  # "word:thing" that is no operator is just words
            query.words.append(match.group())
        else:
            query.words.append(match["phrase"] if match["phrase"] is not None else match["word"])
    return query
