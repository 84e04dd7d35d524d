"""Folding commands: one word list per parser serves every language, accents and case aside."""

from __future__ import annotations

import pytest

from bot.core.clarification import NONE_WORDS
from bot.feedback.service import NO_WORDS, NUMBER_WORDS, SKIP_WORDS, YES_WORDS
from bot.identity.commands import LINK_WORDS
from bot.notices.commands import CONNECTORS, VERBS
from bot.privacy.commands import PHRASES
from bot.privacy.notice import WORDS
from bot.texts.words import fold, fold_table, fold_words, strip_accents


@pytest.mark.parametrize(("typed", "folded"), [
    ("Sí", "si"), ("  ¡BAJA!  ", "baja"), ("¿Privacidad?", "privacidad?"), ("Notifícame.", "notificame"),
    ("darme   de\tbaja", "darme de baja"), ("STOP", "stop"), ("no entiendo nada", "no entiendo nada"),
])
def test_fold(typed: str, folded: str) -> None:
    assert fold(typed) == folded


def test_strip_accents_keeps_the_letters() -> None:
    assert strip_accents("Él pidió información de tráfico, año") == "El pidio informacion de trafico, ano"


def test_a_word_meaning_two_things_is_refused() -> None:
    with pytest.raises(ValueError, match="means both"):
        fold_table({"en": {"baja": "stop"}, "es": {"Bája": "give"}})
    assert fold_table({"en": {"no": "x"}, "es": {"No": "x"}}) == {"no": "x"}


def test_every_parser_has_english_and_spanish_words() -> None:
    for table in (WORDS, PHRASES, VERBS, CONNECTORS, LINK_WORDS, YES_WORDS, NO_WORDS, SKIP_WORDS, NUMBER_WORDS,
                  NONE_WORDS):
        assert {"en", "es"} <= set(table)
    # The tables load: no word means two things.
    fold_table(WORDS), fold_table(PHRASES), fold_table(VERBS)
    assert not fold_words(YES_WORDS) & fold_words(NO_WORDS)
