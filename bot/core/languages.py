"""Serving a citizen in a language other than the KB's main language.

The Rasa model understands the KB's main language only (its encoders are English). A message
in another served language is understood by that language's lexical model (bot.nlu.lexical)
and then takes exactly the path a Rasa turn takes: the same outcome functions
(bot.core.turn_outcomes: answer, ask "Do you mean ...?", hand over, small talk, ticket
status) record it and return the same responses, which are worded here from the language's
catalogue (``rasa.<response>``) and the KB's answer in that language, as Rasa words them from
domain.yml for the main language. So a Spanish complaint opens the same ticket, in the same
queue, under the same commitment, as an English one.

An entry without an answer in the citizen's language (``CRM_UNTRANSLATED_ANSWER``): the
citizen is told so in their language and gets the main language's answer, or the question is
handed over.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core import clarification
from bot.core import turn_outcomes as outcomes
from bot.core.inbound import KbChoice
from bot.core.turns import METADATA_KEY, REQUEST_ID_KEY
from bot.kb.compile import response_text
from bot.kb.languages import LanguageIntents, load_language, rasa_intents
from bot.kb.loader import load_kb
from bot.kb.schema import KnowledgeBase
from bot.nlu.language import LanguageDetector, served_languages, vocabulary
from bot.nlu.lexical import LexicalDecision, LexicalUnderstanding, from_kb_dir
from bot.settings import PROJECT_ROOT, Settings
from bot.texts import catalogue, text
from bot.texts import languages as catalogue_languages

logger = logging.getLogger(__name__)

FAQ_PREFIX = "utter_faq/"
# The reason of a ticket opened because the entry has no answer in the citizen's language.
NOT_TRANSLATED = "not_translated"


@dataclass(frozen=True)
class LanguageServices:
    """What start-up builds for the languages: the detector and one lexical model per language
    besides the main one. Built once (``build``); messages only read it."""

    default: str
    detector: LanguageDetector
    understanding: Mapping[str, LexicalUnderstanding]
    kb: KnowledgeBase

    @classmethod
    def build(cls, settings: Settings) -> LanguageServices:
        """Fails fast, naming the file or the setting to fix: a configured language without an
        intents file or a lexical model would answer nobody in it."""
        kb, _problems = load_kb(settings.kb_dir)
        default = kb.default_language
        languages = served_languages(settings.language_list, settings.kb_dir, default)
        understanding = {}
        vocabularies = {}
        for language in languages:
            if language == default:
                nlu_file = PROJECT_ROOT / "data" / "nlu" / "intents.yml"
                intents = rasa_intents(nlu_file, language) if nlu_file.is_file() else None
            else:
                intents = load_language(settings.kb_dir, language)  # raises LanguageFileError, with the file
                understanding[language] = from_kb_dir(kb, settings.kb_dir, language, intents)
            vocabularies[language] = _vocabulary(kb, language, intents)
        detector = LanguageDetector.build(languages, default, vocabularies)
        return cls(default, detector, understanding, kb)

    @property
    def languages(self) -> tuple[str, ...]:
        return self.detector.languages

    def lexical(self, language: str | None) -> LexicalUnderstanding | None:
        """The model that reads ``language``, or None: the main language goes to Rasa."""
        return self.understanding.get(language) if language is not None else None


def _vocabulary(kb: KnowledgeBase, language: str, intents: LanguageIntents | None) -> frozenset[str]:
    """Every word the city writes or expects in ``language``: the KB's questions and answers,
    the intent examples and the system texts (the language detector's short-message vote)."""
    texts: list[str] = []
    for entry in kb.entries:
        texts += entry.questions.get(language, [])
        texts += [entry.answer[language]] if language in entry.answer else []
    if intents is not None:
        texts += [example for examples in intents.intents.values() for example in examples]
    if language in catalogue_languages():
        texts += [re.sub(r"\{\w+\}", " ", value) for value in catalogue(language).values()]
    return vocabulary(texts)


class LazyLanguageServices:
    """Built on first use, for a Conversation assembled without them (a test, a tool); the
    runtime builds them at start-up instead (bot.runtime)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: LanguageServices | None = None
        self._lock = threading.Lock()

    def get(self) -> LanguageServices:
        with self._lock:
            if self._built is None:
                self._built = shared_language_services(self._settings)
            return self._built


_SHARED: dict[tuple, LanguageServices] = {}
_SHARED_LOCK = threading.Lock()


def shared_language_services(settings: Settings) -> LanguageServices:
    """One build per KB state and language setting in a process (building takes about a second:
    tests and tools assemble many conversations over the same KB)."""
    kb_dir = Path(settings.kb_dir)
    state = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(kb_dir.rglob("*")) if p.is_file())
    key = (str(kb_dir), tuple(settings.language_list), state)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED.clear()  # the KB changed: the old build serves nobody any more
            _SHARED[key] = LanguageServices.build(settings)
        return _SHARED[key]


def lexical_turn(
    services: outcomes.StoreServices,
    languages: LanguageServices,
    language: str,
    *,
    sender_id: str,
    message_id: int,
    text_understood: str,
    choice: KbChoice | None,
    request_id: str | None,
) -> list[str]:
    """Understand, act and word one turn in ``language``; returns the replies to send.

    ``choice``: a pick of a "Do you mean ...?" question (settled against its stored offer, as
    Rasa's rule does). Every outcome records the message's handling, as Rasa's actions do."""
    metadata = {METADATA_KEY: message_id, REQUEST_ID_KEY: request_id}
    if choice is not None:
        intent = clarification.NONE_INTENT if choice.option == 0 else clarification.PICK_INTENT
        turn = outcomes.Turn(sender_id, text_understood, intent, 1.0, metadata, {},
                             [{"entity": clarification.CHOICE_ENTITY, "value": f"{choice.offer}:{choice.option}"}])
        return _messages(outcomes.settle_kb_choice(turn, services), language, languages, services.settings)
    understanding = languages.lexical(language)
    decision = understanding.understand(text_understood)
    turn = _turn(decision, sender_id, text_understood, metadata)
    if decision.outcome == "answer":
        entry = _entry(languages.kb, decision.entry_id)
        if entry is not None and language not in entry.answer and services.settings.untranslated_answer == "hand_over":
            replies = outcomes.escalate_turn(turn, services, reason=NOT_TRANSLATED)
        else:
            replies = outcomes.answer_faq(turn, services)
    elif decision.outcome == "ask":
        replies = outcomes.offer_kb_choices(turn, services)
    elif decision.outcome == "small_talk":
        replies = outcomes.small_talk(turn, services)
    elif decision.outcome == "ticket_status":
        replies = outcomes.ticket_status(turn, services)
    else:
        replies = outcomes.escalate_turn(turn, services)
    return _messages(replies, language, languages, services.settings)


def _messages(replies: list[outcomes.Reply], language: str, languages: LanguageServices, settings: Settings) -> list[str]:
    """The chat messages, as Rasa sends them: each paragraph of a response a message of its own
    (Rasa's output channels split texts at blank lines), so an answer and its links arrive alike
    in every language."""
    return [part.strip() for reply in replies for part in render(reply, language, languages, settings).strip().split("\n\n")
            if part.strip()]


def _turn(decision: LexicalDecision, sender_id: str, text_understood: str, metadata: dict[str, Any]) -> outcomes.Turn:
    ranking = [{"entry": entry, "similarity": round(score, 4)} for entry, score in decision.scores.items()]
    kb_match = {"entry": decision.entry_id, "ranking": ranking, "offer": list(decision.offered_entry_ids)}
    return outcomes.Turn(sender_id, text_understood, decision.intent, round(decision.confidence, 4), metadata, kb_match, [])


def _entry(kb: KnowledgeBase, entry_id: str | None):
    return next((e for e in kb.entries if e.id == entry_id), None)


def render(reply: outcomes.Reply, language: str, languages: LanguageServices, settings: Settings) -> str:
    """A response as Rasa would word it from domain.yml, in ``language``."""
    if reply.response.startswith(FAQ_PREFIX):
        entry = _entry(languages.kb, reply.response[len(FAQ_PREFIX):])
        if entry is None:  # removed from the KB since the offer was made
            return text("rasa.utter_kb_choice_invalid", language)
        if language in entry.answer:
            return response_text(entry, language)
        main = languages.default
        note = text("language.untranslated_answer", language, language_name=text(f"language.names.{main}", language))
        return f"{note}\n\n{response_text(entry, main)}"
    return text(f"rasa.{reply.response}", language, **reply.variables)
