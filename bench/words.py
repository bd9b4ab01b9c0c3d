"""The benchmarks' words: Turkish and English, drawn from a Zipf distribution over 5,000 words.

Shared by the reading benchmark's two mailboxes (bench/reading.py, bench/person.py), so that
their searches find the same share of mail.
"""

from __future__ import annotations

import itertools
import random

# Words as mail uses them: a few very common ones, the content words rarer (a Zipf
# distribution over 5,000 words), so that a search for a content word matches a few per cent of
# the mailbox, as in real mail, and a common one much more.
STOPWORDS = [
    "ve",
    "bir",
    "bu",
    "da",
    "de",
    "için",
    "ile",
    "çok",
    "daha",
    "gibi",
    "olarak",
    "ama",
    "the",
    "and",
    "to",
    "of",
    "a",
    "in",
    "is",
    "for",
    "on",
    "with",
]
CONTENT = [
    "toplantı",
    "rapor",
    "bütçe",
    "proje",
    "teklif",
    "fatura",
    "sözleşme",
    "ışık",
    "istanbul",
    "ankara",
    "izmir",
    "görüşme",
    "takvim",
    "plan",
    "müşteri",
    "sipariş",
    "kargo",
    "teslimat",
    "ödeme",
    "hesap",
    "banka",
    "kredi",
    "yazılım",
    "sunucu",
    "güncelleme",
    "yedek",
    "güvenlik",
    "meeting",
    "report",
    "budget",
    "project",
    "invoice",
    "contract",
    "delivery",
    "payment",
    "server",
    "update",
    "backup",
    "security",
    "çalışma",
    "grubu",
    "öneri",
    "karar",
]
SYLLABLES = [
    "ka",
    "le",
    "mi",
    "na",
    "sa",
    "ta",
    "ro",
    "du",
    "be",
    "ye",
    "zi",
    "lu",
    "çe",
    "şa",
    "ğı",
    "öz",
    "ün",
    "ay",
    "ev",
    "ık",
    "ol",
    "ar",
    "en",
]


def vocabulary(size: int = 5000) -> list[str]:
    rng = random.Random(5)  # noqa: S311 -- the same made-up words on every run
    words = list(STOPWORDS)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in words:
            words.append(word)
    for position, word in enumerate(CONTENT):  # content words from rank 200 on, one every 40
        words[200 + 40 * position] = word
    return words


WORDS = vocabulary()
WEIGHTS = list(itertools.accumulate(1 / rank for rank in range(1, len(WORDS) + 1)))


def text(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(WORDS, cum_weights=WEIGHTS, k=count))
