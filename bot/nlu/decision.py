"""The answer-or-escalate decision, as a pure function of the NLU scores.

Kept free of Rasa imports so the threshold tuner can replay the exact rule on
recorded scores without a Rasa environment. A wrong answer costs a government
more than an escalation, so every uncertain path ends in ``nlu_fallback``,
which the dialogue turns into a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

FAQ_INTENT = "faq"
FALLBACK_INTENT = "nlu_fallback"


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


@dataclass(frozen=True)
class Decision:
    intent: str
    confidence: float
    kb_entry: Optional[str]
    reason: str


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
        return Decision(FALLBACK_INTENT, diet_confidence, None, "intent_unsure")

    if kb_confident:
        return Decision(FAQ_INTENT, top_sim, top_entry, "kb_match")
    if top_entry is not None and top_sim >= thresholds.kb_threshold:
        return Decision(FALLBACK_INTENT, top_sim, None, "kb_ambiguous")
    return Decision(FALLBACK_INTENT, top_sim, None, "kb_no_match")


# Requests that must reach a person or the ticket system whatever the KB says.
_NEVER_OVERRIDDEN = frozenset({"request_human", "ticket_status"})
