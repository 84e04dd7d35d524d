"""Languages as staff read them: "Spanish (es)" for a ticket opened in Spanish.

The console speaks English, so these are English names: lingua-language-detector's, which the
language detection uses already (bot.nlu.language) and which knows 75 languages; any other code
is shown as it is.
"""

from __future__ import annotations

from functools import lru_cache

from lingua import IsoCode639_1, Language


@lru_cache(maxsize=128)
def language_name(code: str | None) -> str:
    """ "Spanish" for "es" (and for "es-mx"); an unknown code as it is."""
    if not code:
        return ""
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code.lower().split("-")[0])).name.capitalize()
    except ValueError:
        return code


def language_label(code: str | None) -> str:
    """ "Spanish (es)", compact enough for the ticket's facts; an unknown code alone."""
    name = language_name(code)
    return f"{name} ({code})" if name and name != code else (code or "")
