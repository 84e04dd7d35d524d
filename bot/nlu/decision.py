"""The answer, ask or hand-over decision, as a pure function of the NLU scores.

Kept free of Rasa imports so the threshold tuner can replay the exact rule on
recorded scores without a Rasa environment. A wrong answer costs a government
more than an escalation, so an uncertain path never answers: when the KB has
plausible entries it ends in ``faq_unsure`` (the dialogue asks the citizen which
question they mean, with "none of these" always offered), otherwise in
``nlu_fallback``, which the dialogue turns into a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

FAQ_INTENT = "faq"
FALLBACK_INTENT = "nlu_fallback"
# Unsure, but the KB has plausible entries: ask the citizen which one they mean.
ASK_INTENT = "faq_unsure"
# At most this many KB questions are offered in one "Do you mean ...?" turn.
MAX_OFFERED = 3


@dataclass(frozen=True)
class Thresholds:
    # DIET confidence needed to accept a non-FAQ intent (complaint, greet, ...).
    meta_threshold: float = 0.6
    # Cosine similarity between the message and the closest phrasing of a KB entry.
    kb_threshold: float = 0.6
    # How far the best entry must lead the runner-up; close calls are ambiguous.
    kb_margin: float = 0.02
    # A KB match this strong is answered even when DIET leans to another intent
    # (DIET sees few phrasings per entry and can mistake a question for a case).
    kb_override: float = 0.85
    # DIET sees few phrasings per KB entry and often takes a general question written in
    # the first person ("does housing benefit get paid from the date I apply?") for a
    # personal case. When the message is closer to a KB phrasing than to any training
    # example of DIET's intent by at least this much, it is treated as a question.
    knn_veto_margin: float = 1.0
    # Subtracted from the KB score per content word of the message that appears nowhere in
    # the KB: "apostille" or "photo booth" next to the birth-certificate entry means the
    # citizen asks about something the KB does not cover.
    unknown_word_penalty: float = 0.0
    # Below kb_threshold but at least this: the entry is plausible enough to offer the
    # citizen as a question to pick. Above 1.0 nothing is ever offered (answer or ticket only).
    ask_threshold: float = 1.01
    # An entry is offered next to the best one only when it scores within this of it.
    ask_window: float = 0.1


@dataclass(frozen=True)
class Decision:
    intent: str
    confidence: float
    kb_entry: Optional[str]
    reason: str
    # ASK_INTENT only: the KB entries to offer, best first (one to MAX_OFFERED).
    offer: Tuple[str, ...] = ()


def decide(
    diet_intent: Optional[str],
    diet_confidence: float,
    kb_ranking: Sequence[Tuple[str, float]],
    thresholds: Thresholds,
    faq_similarity: float = 0.0,
    intent_similarity: Optional[Mapping[str, float]] = None,
    unknown_words: int = 0,
) -> Decision:
    """Pick the final intent.

    ``kb_ranking`` is (entry id, score) for the best entries, best first.
    ``faq_similarity`` is the message's similarity to the closest KB phrasing and
    ``intent_similarity`` its similarity to the closest training example of each
    other intent.
    """
    top_entry, top_sim = kb_ranking[0] if kb_ranking else (None, 0.0)
    second_sim = kb_ranking[1][1] if len(kb_ranking) > 1 else 0.0
    kb_confident = (
        top_entry is not None
        and top_sim - thresholds.unknown_word_penalty * unknown_words >= thresholds.kb_threshold
        and top_sim - second_sim >= thresholds.kb_margin
    )

    vetoed = (
        diet_intent is not None
        and diet_intent not in _NEVER_OVERRIDDEN
        and intent_similarity is not None
        and faq_similarity - intent_similarity.get(diet_intent, 0.0) >= thresholds.knn_veto_margin
    )
    if diet_intent and diet_intent not in (FAQ_INTENT, FALLBACK_INTENT) and not vetoed:
        if diet_confidence >= thresholds.meta_threshold:
            if kb_confident and top_sim >= thresholds.kb_override and diet_intent not in _NEVER_OVERRIDDEN:
                return Decision(FAQ_INTENT, top_sim, top_entry, "kb_override")
            return Decision(diet_intent, diet_confidence, None, "intent")
        if kb_confident and top_sim >= thresholds.kb_override:
            return Decision(FAQ_INTENT, top_sim, top_entry, "kb_override")
        offer = _offer(kb_ranking, thresholds) if diet_intent in _MAY_ASK_WHEN_UNSURE else ()
        if offer:
            return Decision(ASK_INTENT, top_sim, None, "intent_unsure_ask", offer)
        return Decision(FALLBACK_INTENT, diet_confidence, None, "intent_unsure")

    if kb_confident:
        return Decision(FAQ_INTENT, top_sim, top_entry, "kb_match")
    offer = _offer(kb_ranking, thresholds)
    if offer:
        return Decision(ASK_INTENT, top_sim, None, "kb_unsure", offer)
    if top_entry is not None and top_sim >= thresholds.kb_threshold:
        return Decision(FALLBACK_INTENT, top_sim, None, "kb_ambiguous")
    return Decision(FALLBACK_INTENT, top_sim, None, "kb_no_match")


def _offer(kb_ranking: Sequence[Tuple[str, float]], thresholds: Thresholds) -> Tuple[str, ...]:
    """The plausible entries to ask about: at least ask_threshold, close to the best one."""
    if not kb_ranking or kb_ranking[0][1] < thresholds.ask_threshold:
        return ()
    floor = max(thresholds.ask_threshold, kb_ranking[0][1] - thresholds.ask_window)
    return tuple(entry for entry, score in kb_ranking[:MAX_OFFERED] if score >= floor)


# Requests that must reach a person or the ticket system whatever the KB says.
_NEVER_OVERRIDDEN = frozenset({"request_human", "ticket_status"})
# When DIET leans, unsure (below meta_threshold), to one of these, a plausible KB entry may
# still be asked about: the offer always ends with "None of these / talk to a person", so a
# citizen who did mean a personal case or a person gets there in one tap, and the question
# DIET mistook ("how many weeks until a new passport is ready?" for a personal case) is
# answered. A message that leans to a complaint is never asked about: "Do you mean ...?" in
# reply to a complaint reads as not listening. One DIET is sure of is handed over at once.
_MAY_ASK_WHEN_UNSURE = frozenset({"out_of_scope", "greet", "goodbye", "thanks",
                                  "personal_case", "report_problem", "request_human"})
