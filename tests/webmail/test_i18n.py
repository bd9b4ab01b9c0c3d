"""English and Turkish ship complete: every string translatable, every one translated."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polib
import pytest
from django.test import Client
from django.utils.formats import date_format, number_format
from django.utils.translation import override

from tests.conftest import BASE_DIR
from tests.personas import Persona

CATALOGUE = BASE_DIR / "locale" / "tr" / "LC_MESSAGES" / "django.po"
SOURCES = ["accounts", "fetcher", "webmail", "templates", "manage.py"]


def test_every_turkish_entry_is_translated_and_none_is_fuzzy() -> None:
    catalogue = polib.pofile(str(CATALOGUE))

    assert catalogue.untranslated_entries() == []
    assert catalogue.fuzzy_entries() == []
    assert catalogue.obsolete_entries() == []


def test_the_compiled_catalogue_matches_its_source() -> None:
    def translations(catalogue: polib._BaseFile) -> dict[str, object]:
        return {entry.msgid: (entry.msgstr, dict(entry.msgstr_plural)) for entry in catalogue}

    source = translations(polib.pofile(str(CATALOGUE)))
    compiled = translations(polib.mofile(str(CATALOGUE.with_suffix(".mo"))))

    assert compiled == source


def test_the_catalogue_holds_every_string_the_code_marks_for_translation(tmp_path: Path) -> None:
    if shutil.which("xgettext") is None:
        pytest.fail("gettext is not installed (apt-get install gettext); .ci/run installs it")
    for name in SOURCES:
        source = BASE_DIR / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, tmp_path / name)
    (tmp_path / "locale" / "tr" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy(CATALOGUE, tmp_path / "locale" / "tr" / "LC_MESSAGES" / "django.po")
    env = {**os.environ, "DEBUG": "true"}

    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "--locale", "tr", "--no-location"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )

    refreshed = polib.pofile(str(tmp_path / "locale" / "tr" / "LC_MESSAGES" / "django.po"))
    missing = [entry.msgid for entry in refreshed.untranslated_entries() + refreshed.fuzzy_entries()]
    assert missing == [], "run ./postane messages and translate these"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [("tr-TR,tr;q=0.9,en;q=0.5", "Giriş yap"), ("en-US,en;q=0.9", "Log in"), ("de-DE", "Log in")],
)
def test_the_login_page_follows_the_browser_language(
    client: Client, accept_language: str, expected: str
) -> None:
    response = client.get("/login/", headers={"accept-language": accept_language})

    assert response.status_code == 200
    assert f"<h1>{expected}</h1>" in response.content.decode()


@pytest.mark.django_db
def test_a_chosen_language_overrides_the_browser(client: Client) -> None:
    response = client.post("/i18n/setlang/", {"language": "tr", "next": "/login/"}, follow=True)

    assert "<h1>Giriş yap</h1>" in response.content.decode()
    again = client.get("/login/", headers={"accept-language": "en"})
    assert "<h1>Giriş yap</h1>" in again.content.decode()


@pytest.mark.django_db
def test_dates_and_numbers_are_localised_for_turkish(client: Client, alice: Persona) -> None:
    alice.user.date_joined = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    alice.user.save()
    client.force_login(alice.user)

    page = client.get("/", headers={"accept-language": "tr"}).content.decode()

    assert "Mart 2026" in page
    with override("tr"):
        assert date_format(alice.user.date_joined, "DATE_FORMAT") == "05 Mart 2026"
        assert number_format(1234567.5, 1, use_l10n=True, force_grouping=True) == "1.234.567,5"


def test_turkish_labels_that_begin_with_i_are_written_with_the_dotted_capital() -> None:
    # Django capitalises labels with str.upper, which turns "imza" into "Imza": the catalogue
    # therefore carries the capital itself, İ or I as Turkish needs.
    for entry in polib.pofile(str(CATALOGUE)):
        text = entry.msgstr or next(iter(entry.msgstr_plural.values()), "")
        assert not text.startswith(("i", "ı")), (entry.msgid, text)
