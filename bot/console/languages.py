"""Languages as staff read them: "Spanish (es)" for a ticket opened in Spanish.

The console speaks English, so these are English names, for the languages a city is likely to
serve; any other code is shown as it is.
"""

from __future__ import annotations

LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "cy": "Welsh", "da": "Danish",
    "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician", "he": "Hebrew",
    "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish", "tr": "Turkish",
    "uk": "Ukrainian", "ur": "Urdu", "zh": "Chinese",
}


def language_name(code: str | None) -> str:
    """ "Spanish" for "es" (and for "es-mx"); an unknown code as it is."""
    if not code:
        return ""
    return LANGUAGE_NAMES.get(code.lower().split("-")[0], code)


def language_label(code: str | None) -> str:
    """ "Spanish (es)", compact enough for the ticket's facts; an unknown code alone."""
    name = language_name(code)
    return f"{name} ({code})" if name and name != code else (code or "")
