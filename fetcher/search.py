"""Search terms, Turkish first: one folding for the index and the queries. Plain Python.

A message's search document is the set of its words, each folded (lower case the Turkish way,
then I/ı/İ/i and the Turkish letters ç ğ ö ş ü to their ASCII forms, so "ISIK", "ışık" and
"Işık" are one word), plus each word's Turkish stem (Snowball, through PyStemmer). A query
term is stemmed and folded the same way and matched as a prefix, so "kitaplar" finds "kitap",
"kitabı" and "kitapları", and a user who types without Turkish letters still finds them.

The document is written as a tsvector literal: building it here, in the parse worker, costs a
fraction of PostgreSQL's `to_tsvector` and scales with the number of worker processes.
Mail search is ordered by date, not rank, so lexemes carry no positions or weights.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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


def document(texts: Iterable[str]) -> str:
    """A tsvector literal for these texts. Lexemes are \\w runs, so they hold no quote or backslash."""
    found = lexemes(texts)
    return "'" + "' '".join(found) + "'" if found else ""


def query_lexeme(term: str) -> str:
    """The folded stem of one query word, to be matched as a prefix."""
    word = turkish_lower(term)
    stem = _stemmer.stemWord(word)
    return _ascii_fold(stem if len(stem) >= MIN_STEM_LENGTH else word)


def query_words(text: str) -> list[str]:
    """The prefix lexemes of a free-text query, each once."""
    return list(dict.fromkeys(query_lexeme(word) for word in words(text) if len(word) <= MAX_WORD_LENGTH))


def tsquery(text: str) -> str:
    """A tsquery literal matching messages that hold every word of `text` (as prefixes); '' for none."""
    return " & ".join(f"'{lexeme}':*" for lexeme in query_words(text))


def fold(text: str) -> str:
    """Text folded as the index folds it, for substring matches (from:, to:, subject:)."""
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
