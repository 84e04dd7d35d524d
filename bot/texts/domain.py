"""Rasa's responses in ``domain.yml``, generated from the catalogue's ``rasa`` section.

``domain.yml`` stays a complete, committed Rasa file that people read and Rasa loads as is;
its ``responses:`` block and the ``language`` slot's values are the generated parts. The
catalogue is the single source: ``python -m bot kb compile`` and ``python -m bot train``
(the step that also generates the FAQ data from the knowledge base) rewrite those parts, and
a test fails when the committed file differs from what the catalogue gives.

Each response has the default language's text unconditionally, then one variation per other
domain language, conditioned on the ``language`` slot, as the FAQ answers are. The domain
languages are ``DOMAIN_LANGUAGES``, not every catalogue: a catalogue can be complete (and used
by the application's own replies) before Rasa is trained with it. Texts are
written as YAML double-quoted strings (JSON string syntax, which YAML accepts), one per line,
so the output is deterministic and an unchanged catalogue leaves the file byte-for-byte
unchanged: Rasa's training fingerprint then sees no change and no retraining happens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from bot.texts import DEFAULT_LANGUAGE, catalogue, languages

SECTION = "rasa"
LANGUAGE_SLOT = "language"
# The catalogued languages written into domain.yml: the default only. Rasa reads the KB's main
# language only; a message in another language never reaches it, and its replies are worded from
# the same catalogue keys by bot.core.languages. A variation per language here would change the
# domain (a retraining) for responses Rasa never sends.
DOMAIN_LANGUAGES: tuple[str, ...] = (DEFAULT_LANGUAGE,)

_RESPONSES = re.compile(r"^responses:\n(?:(?: .*)?\n)*", re.MULTILINE)
_SLOT_VALUES = re.compile(rf"^(  {LANGUAGE_SLOT}:\n(?:    .*\n)*?    values: )\[[^\]\n]*\]", re.MULTILINE)


class DomainLayoutError(ValueError):
    """``domain.yml`` lacks the parts that are generated (a ``responses:`` block, the language slot)."""


def domain_languages(wanted: Sequence[str] | None = None) -> tuple[str, ...]:
    """The catalogued languages among ``wanted`` (default ``DOMAIN_LANGUAGES``), in catalogue order."""
    chosen = set(DOMAIN_LANGUAGES if wanted is None else wanted) | {DEFAULT_LANGUAGE}
    return tuple(lang for lang in languages() if lang in chosen)


def responses(langs: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
    """Each response name with its text per domain language, default language first."""
    found: dict[str, dict[str, str]] = {}
    prefix = f"{SECTION}."
    for lang in domain_languages(langs):
        for key, value in catalogue(lang).items():
            if key.startswith(prefix):
                found.setdefault(key[len(prefix):], {})[lang] = value
    return {name: texts for name, texts in found.items() if DEFAULT_LANGUAGE in texts}


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_responses(langs: Sequence[str] | None = None) -> str:
    """The ``responses:`` block of ``domain.yml``."""
    lines = ["responses:"]
    for name, texts in responses(langs).items():
        lines.append(f"  {name}:")
        lines.append(f"    - text: {_quoted(texts[DEFAULT_LANGUAGE])}")
        for lang, value in texts.items():
            if lang == DEFAULT_LANGUAGE:
                continue
            lines += [
                f"    - text: {_quoted(value)}",
                "      condition:",
                "        - type: slot",
                f"          name: {LANGUAGE_SLOT}",
                f"          value: {lang}",
            ]
    return "\n".join(lines) + "\n\n"


def render_domain(domain_text: str, langs: Sequence[str] | None = None) -> str:
    """``domain_text`` with its generated parts replaced by what the catalogue gives in the
    domain languages (``langs``, default ``DOMAIN_LANGUAGES``)."""
    if not _RESPONSES.search(domain_text):
        raise DomainLayoutError("domain.yml has no top-level `responses:` block")
    if not _SLOT_VALUES.search(domain_text):
        raise DomainLayoutError(f"domain.yml has no `{LANGUAGE_SLOT}` slot with `values: [...]`")
    chosen = domain_languages(langs)
    text = _SLOT_VALUES.sub(lambda m: f"{m.group(1)}[{', '.join(chosen)}]", domain_text, count=1)
    return _RESPONSES.sub(lambda _m: render_responses(chosen), text, count=1)


def sync_domain(path: str | Path) -> bool:
    """Rewrite the generated parts of the domain file at ``path``; ``True`` if it changed."""
    path = Path(path)
    current = path.read_text("utf-8")
    wanted = render_domain(current)
    if wanted == current:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(wanted, "utf-8")
    tmp.replace(path)
    return True
