"""Subscribing to the city's news by topic: "subscribe waste", "news waste", "unsubscribe waste",
"suscribirme a residuos", "darme de baja de basura".

Recognised before the assistant, like "stop" and "notify me" (bot.privacy.notice), and only as
the whole message, so "how do I subscribe to the waste calendar app?" still goes to the
assistant. "subscribe" alone lists the topics (knowledge_base/topics.yml, bot.kb.topics);
"subscribe all" is every topic (the consent ``announcements``); "unsubscribe" alone and "stop"
stay the privacy commands that withdraw everything.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.identity.consent import cancel_without_consent, current_consents, give_consent, withdraw_consent
from bot.kb.topics import RESERVED, Topic, find_topic, topics
from bot.settings import Settings
from bot.store.models import Message
from bot.texts import text as catalogue_text
from bot.texts.words import fold, fold_table, fold_words

ANNOUNCEMENTS = "announcements"
# The verbs per language, as the start of the whole message, then the topic, maybe after a
# connecting word ("suscribirme a residuos", "darme de baja de basura"); every language is
# read whatever the message's, accents and case do not matter, a leading "/" and Telegram's
# "/subscribe@CityBot" in a group are accepted. Adding a language is adding its words here
# (and its words for the topics to knowledge_base/topics.yml).
VERBS: dict[str, dict[str, str]] = {
    "en": {"subscribe": "subscribe", "news": "subscribe", "unsubscribe": "unsubscribe"},
    "es": {
        "suscribir": "subscribe", "suscribirme": "subscribe", "suscribirse": "subscribe",
        "noticias": "subscribe", "avisos": "subscribe",
        # Not "baja" with a topic: "baja tension en mi calle" is a report; "baja" alone is "stop".
        "desuscribir": "unsubscribe", "desuscribirme": "unsubscribe",
        "darme de baja": "unsubscribe", "dame de baja": "unsubscribe",
    },
}
# Then, one of each at most, before the topic: "subscribe to the roadworks", "noticias de la cultura".
CONNECTORS: dict[str, tuple[str, ...]] = {
    "en": ("to", "from", "about"),
    "es": ("a", "al", "de", "del", "sobre", "en"),
}
ARTICLES: dict[str, tuple[str, ...]] = {
    "en": ("the",),
    "es": ("el", "la", "los", "las"),
}
_SLASH = re.compile(r"^/(\w+)(?:@\w+)?")
MAX_LENGTH = 60


@dataclass(frozen=True)
class SubscriptionCommand:
    kind: str  # "usage", "subscribe" or "unsubscribe"
    word: str  # the topic as typed, normalised ("" for usage)


def parse_subscription_command(text: str) -> SubscriptionCommand | None:
    """The subscription command a whole message is, or None."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH or "?" in text:
        # A question ("news about the water cut?") is for the assistant.
        return None
    normal = _SLASH.sub(r"\1", fold(text))
    found = _verb(normal)
    if found is None:
        return None
    kind, word = found
    if kind == "unsubscribe":
        # "unsubscribe" alone is the privacy command "stop" (parsed before this one).
        return SubscriptionCommand("unsubscribe", word) if word else None
    return SubscriptionCommand("subscribe", word) if word else SubscriptionCommand("usage", "")


@functools.cache
def _tables() -> tuple[dict[str, str], frozenset[str], frozenset[str]]:
    return fold_table(VERBS), fold_words(CONNECTORS), fold_words(ARTICLES)


def _verb(normal: str) -> tuple[str, str] | None:
    """(the kind, the topic as typed) when the folded message opens with a verb; the longest verb wins."""
    verbs, connectors, articles = _tables()
    words = normal.split()
    for n in range(len(words), 0, -1):
        kind = verbs.get(" ".join(words[:n]))
        if kind is not None:
            rest = words[n:]
            for leading in (connectors, articles):
                if len(rest) > 1 and rest[0] in leading:
                    rest = rest[1:]
            return kind, " ".join(rest)
    return None


def purpose_of(topic: Topic | None) -> str:
    """The consent a subscription is: to one topic, or (None) to every announcement."""
    return f"{ANNOUNCEMENTS}:{topic.id}" if topic is not None else ANNOUNCEMENTS


def _topic_list(found: list[Topic]) -> str:
    return ", ".join(f"{t.name} (\"{t.id}\")" for t in found)


def answer_subscription(
    session: Session, message: Message, command: SubscriptionCommand, settings: Settings, now: datetime
) -> tuple[str, str]:
    """(the reply, the message's handling); consent changes in ``session``."""
    known = topics(settings.kb_dir)
    if command.kind == "usage":
        if not known:
            return catalogue_text("notices.subscribe.usage_no_topics"), "subscription_usage"
        return catalogue_text("notices.subscribe.usage", topics=_topic_list(known), example=known[0].id), \
            "subscription_usage"
    every = command.word in RESERVED
    topic = None if every else find_topic(settings.kb_dir, command.word)
    if topic is None and not every:
        shown = command.word[:30]
        return catalogue_text("notices.subscribe.unknown", word=shown, topics=_topic_list(known) or "-"), \
            "subscription_unknown"
    name = catalogue_text("notices.all_topics") if every else topic.name
    word = "all" if every else topic.id
    source = f"command:{command.kind} {word}"
    if command.kind == "subscribe":
        _consent, given = give_consent(session, message.citizen_id, purpose_of(topic), channel=message.channel,
                                       source=source, now=now)
        if given:
            return catalogue_text("notices.subscribe.given", topic=name, word=word), "consent_given"
        return catalogue_text("notices.subscribe.already_given", topic=name), "consent_unchanged"
    held = current_consents(session, message.citizen_id)
    if not every and ANNOUNCEMENTS in held:
        # A topic cannot be left out of "every topic": say so rather than claim it stopped.
        return catalogue_text("notices.unsubscribe.has_all", topic=name), "consent_unchanged"
    # Unsubscribing from "all" ends every subscription to news, not the ticket notices.
    purposes = [p for p in held
                if (p == ANNOUNCEMENTS or p.startswith(f"{ANNOUNCEMENTS}:"))] if every else [purpose_of(topic)]
    withdrawn = False
    for purpose in purposes:
        withdrawn = withdraw_consent(session, message.citizen_id, purpose, channel=message.channel,
                                     source=source, now=now) or withdrawn
    if not withdrawn:
        return catalogue_text("notices.unsubscribe.not_subscribed", topic=name), "consent_unchanged"
    cancel_without_consent(session, message.citizen_id)
    return catalogue_text("notices.unsubscribe.withdrawn", topic=name), "consent_withdrawn"
