"""Every text a citizen reads from the system, by key, in one catalogue per language.

The catalogues are ``catalogue/<language>.yml`` next to this file: nested YAML maps whose
leaves are the texts, addressed by their dotted path (``ticket.saved``, ``rasa.utter_greet``).
Texts take named placeholders in ``str.format`` syntax (``{ticket_id}``), nothing else: no
positional fields, no format specs, so the same template is valid in Rasa's ``domain.yml``.

``text(key, language, **values)`` is the one way in. A language without a catalogue, or a key
missing from a language's catalogue, falls back to the default language; a key missing from
the default catalogue, a placeholder without a value or a value without a placeholder raises
``TextError``, so a typo fails the first test that reaches it instead of reaching a citizen.

The ``rasa`` section holds Rasa's responses: ``domain.yml`` carries them as generated text
(``bot.texts.domain``), kept equal to the catalogue by ``python -m bot kb compile`` and by
training, and checked by a test. Catalogues are read on first use, not at import, and cached.

The language of a text asked for without one is the active language: ``override(language)``
sets it for a block (the conversation core sets the citizen's language for a whole turn, so
every module that words a reply on its way speaks it without passing it along), as Django's
``translation.override`` does; outside any block it is the default language.

Adding a language: copy ``en.yml`` to ``<code>.yml`` and translate the values, keeping every key
and every placeholder (tests/texts checks both), then run ``python -m bot kb compile``.
"""

from __future__ import annotations

import functools
import logging
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import yaml

DEFAULT_LANGUAGE = "en"
CATALOGUE_DIR = Path(__file__).with_name("catalogue")

logger = logging.getLogger(__name__)

_ACTIVE: ContextVar[str | None] = ContextVar("bot_texts_language", default=None)


class TextError(LookupError):
    """A key missing from the default catalogue, or values that do not fit its placeholders."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; in a catalogue that hides a text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise TextError(f"line {key_node.start_mark.line + 1}: {key!r} appears twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _flatten(tree: Mapping, prefix: str, out: dict[str, str], source: Path) -> None:
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            _flatten(value, f"{key}.", out, source)
        elif isinstance(value, str):
            out[key] = value
        else:
            raise TextError(f"{source.name}: {key} is {type(value).__name__}, not a text")


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages with a catalogue, the default language first, then alphabetical."""
    found = sorted(path.stem for path in CATALOGUE_DIR.glob("*.yml"))
    if DEFAULT_LANGUAGE not in found:
        raise TextError(f"no catalogue for the default language {DEFAULT_LANGUAGE!r}")
    return (DEFAULT_LANGUAGE, *(lang for lang in found if lang != DEFAULT_LANGUAGE))


@functools.cache
def catalogue(language: str = DEFAULT_LANGUAGE) -> Mapping[str, str]:
    """The texts of ``language``'s catalogue by dotted key (only its own, no fallback)."""
    if language not in languages():
        raise TextError(f"no catalogue for language {language!r}; known: {', '.join(languages())}")
    path = CATALOGUE_DIR / f"{language}.yml"
    try:
        tree = yaml.load(path.read_text("utf-8"), Loader=_UniqueKeyLoader) or {}  # a SafeLoader
    except TextError as exc:
        raise TextError(f"{path.name}: {exc}") from None
    texts: dict[str, str] = {}
    _flatten(tree, "", texts, path)
    return texts


def placeholders(template: str) -> frozenset[str]:
    """The named placeholders of a template; raises ``TextError`` on any other field."""
    names = set()
    for _literal, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise TextError(f"only named placeholders like {{ticket_id}} are allowed, not {{{field}...}}")
        names.add(field)
    return frozenset(names)


def active_language() -> str:
    """The language texts are worded in when no language is given (see ``override``)."""
    return resolve_language(_ACTIVE.get())


@contextmanager
def override(language: str | None) -> Iterator[None]:
    """Word texts asked for without a language in ``language`` inside the block (``None``: the
    default language); the previous language is back afterwards, also on an exception."""
    token = _ACTIVE.set(language)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def activate(language: str | None) -> None:
    """Set the active language until the enclosing ``override`` block ends.

    For the conversation core, which learns the language only after it has stored the message,
    inside a block its entry point opened; never call it outside such a block."""
    _ACTIVE.set(language)


def resolve_language(language: str | None) -> str:
    """``language`` if it has a catalogue; the active language for ``None``; else the default."""
    if language is None:
        language = _ACTIVE.get()
    return language if language in languages() else DEFAULT_LANGUAGE


def template(key: str, language: str | None = None) -> str:
    """The unformatted text of ``key`` in ``language``, falling back to the default language."""
    lang = resolve_language(language)
    found = catalogue(lang).get(key)
    if found is not None:
        return found
    if lang != DEFAULT_LANGUAGE:
        logger.warning("text %r missing in the %r catalogue; using %r", key, lang, DEFAULT_LANGUAGE)
    found = catalogue(DEFAULT_LANGUAGE).get(key)
    if found is None:
        raise TextError(f"no text {key!r} in the {DEFAULT_LANGUAGE!r} catalogue")
    return found


def text(key: str, /, language: str | None = None, **values: object) -> str:
    """The text of ``key`` in ``language`` (default language when ``None`` or not catalogued)
    with its placeholders filled from ``values``; every placeholder needs a value and every
    value a placeholder (so no placeholder may be called ``language``)."""
    raw = template(key, language)
    wanted = placeholders(raw)
    if wanted != values.keys():
        missing, extra = sorted(wanted - values.keys()), sorted(values.keys() - wanted)
        raise TextError(f"text {key!r}: missing values {missing}, unexpected values {extra}")
    return raw.format(**values) if wanted else raw
