"""The language of a message: the text when it can tell, else the citizen's previous language,
the channel's hint, the main language (bot.nlu.language)."""

from __future__ import annotations

import pytest

from bot.core.languages import shared_language_services
from bot.nlu.language import LanguageDetector, served_languages
from bot.settings import Settings


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return shared_language_services(Settings(api_keys="k" * 24)).detector


@pytest.mark.parametrize(("text", "language"), [
    ("¿Cuándo recogen la basura en mi calle?", "es"),
    ("When is the bin collected on my street?", "en"),
    ("hola", "es"),
    ("basura", "es"),
    ("pothole", "en"),
    ("gracias", "es"),
    ("thanks", "en"),
    ("bache en mi calle", "es"),  # lingua alone says English
    ("where is the ayuntamiento", "en"),  # lingua alone says Spanish
    ("hola, my bin was not collected", "en"),
])
def test_the_text_decides_when_it_can_tell(detector: LanguageDetector, text: str, language: str) -> None:
    choice = detector.choose(text, previous="en" if language == "es" else "es", hint=None)
    assert (choice.language, choice.source) == (language, "text")


@pytest.mark.parametrize("text", ["ok", "2", "K7M-39Q-XD2", "", "👍", "no"])
def test_a_message_that_cannot_tell_keeps_the_citizens_language(detector: LanguageDetector, text: str) -> None:
    assert detector.choose(text, previous="es", hint="en").language == "es"
    assert detector.choose(text, previous=None, hint="es").source == "channel"
    assert detector.choose(text, previous=None, hint=None).language == "en"


def test_unknown_hints_and_previous_languages_are_ignored(detector: LanguageDetector) -> None:
    assert detector.choose("ok", previous="fr", hint="de").language == "en"


def test_one_language_never_consults_a_detector(tmp_path) -> None:
    single = LanguageDetector.build(["en"], "en")
    assert single.choose("¿Cuándo recogen la basura?").language == "en"


def test_served_languages_default_to_the_kbs_language_files(tmp_path) -> None:
    (tmp_path / "languages").mkdir()
    (tmp_path / "languages" / "es.yml").write_text("language: es\n", "utf-8")
    assert served_languages([], tmp_path, "en") == ["en", "es"]
    assert served_languages(["es", "en"], tmp_path, "en") == ["en", "es"]


def test_a_language_lingua_does_not_know_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match="xx"):
        LanguageDetector.build(["en", "xx"], "en")


def test_a_configured_language_without_an_intents_file_fails_at_start_up(tmp_path) -> None:
    from bot.core.languages import LanguageServices
    from bot.kb.languages import LanguageFileError

    with pytest.raises(LanguageFileError, match="fr.yml"):
        LanguageServices.build(Settings(api_keys="k" * 24, languages="en,fr"))


def test_crm_languages_takes_two_letter_codes() -> None:
    with pytest.raises(ValueError, match="ISO 639-1"):
        Settings(api_keys="k" * 24, languages="en,spanish")
