"""The answer, ask or hand-over rule: every uncertain path asks or escalates, never answers."""

from bot.nlu.decision import ASK_INTENT, FALLBACK_INTENT, MAX_OFFERED, Thresholds, decide

T = Thresholds(meta_threshold=0.8, kb_threshold=0.5, kb_margin=0.05, kb_override=0.9, knn_veto_margin=0.1)


def test_confident_kb_match_is_answered():
    d = decide("faq", 0.99, [("a", 0.7), ("b", 0.5)], T)
    assert (d.intent, d.kb_entry) == ("faq", "a")


def test_weak_kb_match_escalates():
    assert decide("faq", 0.99, [("a", 0.45), ("b", 0.2)], T).intent == FALLBACK_INTENT


def test_ambiguous_kb_match_escalates():
    d = decide("faq", 0.99, [("a", 0.7), ("b", 0.68)], T)
    assert d.intent == FALLBACK_INTENT and d.reason == "kb_ambiguous"


def test_empty_kb_escalates():
    assert decide("faq", 0.99, [], T).intent == FALLBACK_INTENT


def test_confident_meta_intent_wins_over_ordinary_kb_match():
    assert decide("complaint", 0.95, [("a", 0.7), ("b", 0.3)], T).intent == "complaint"


def test_unsure_meta_intent_escalates():
    d = decide("greet", 0.5, [("a", 0.3), ("b", 0.2)], T)
    assert d.intent == FALLBACK_INTENT and d.reason == "intent_unsure"


def test_very_strong_kb_match_overrides_diet():
    d = decide("out_of_scope", 0.95, [("a", 0.95), ("b", 0.3)], T)
    assert (d.intent, d.kb_entry, d.reason) == ("faq", "a", "kb_override")


def test_request_for_a_person_is_never_overridden():
    assert decide("request_human", 0.95, [("a", 0.99), ("b", 0.1)], T, 0.99, {"request_human": 0.2}).intent == "request_human"


def test_knn_veto_sends_a_question_mistaken_for_a_case_to_the_kb():
    d = decide("personal_case", 1.0, [("a", 0.7), ("b", 0.3)], T, faq_similarity=0.8, intent_similarity={"personal_case": 0.6})
    assert (d.intent, d.kb_entry) == ("faq", "a")


def test_knn_veto_still_escalates_when_the_kb_is_not_confident():
    d = decide("personal_case", 1.0, [("a", 0.4), ("b", 0.3)], T, faq_similarity=0.8, intent_similarity={"personal_case": 0.6})
    assert d.intent == FALLBACK_INTENT


# -- the third outcome: ask "Do you mean ...?" ------------------------------------

ASK = Thresholds(meta_threshold=0.8, kb_threshold=0.5, kb_margin=0.05, kb_override=0.9, knn_veto_margin=0.1,
                 ask_threshold=0.35, ask_window=0.1)


def test_unsure_kb_match_with_plausible_entries_asks_about_those_close_to_the_best():
    d = decide("faq", 0.99, [("a", 0.45), ("b", 0.40), ("c", 0.37), ("d", 0.34)], ASK)
    assert (d.intent, d.kb_entry, d.offer) == (ASK_INTENT, None, ("a", "b", "c"))


def test_ambiguous_kb_match_above_the_answer_threshold_asks_instead_of_guessing():
    d = decide("faq", 0.99, [("a", 0.7), ("b", 0.68), ("c", 0.3)], ASK)
    assert (d.intent, d.offer) == (ASK_INTENT, ("a", "b"))


def test_at_most_three_entries_are_offered():
    ranking = [(name, 0.45 - i * 0.01) for i, name in enumerate("abcde")]
    assert len(decide("faq", 0.99, ranking, ASK).offer) == MAX_OFFERED == 3


def test_nothing_plausible_hands_over():
    d = decide("faq", 0.99, [("a", 0.3), ("b", 0.2)], ASK)
    assert d.intent == FALLBACK_INTENT and d.offer == ()


def test_unsure_lean_to_a_personal_case_is_asked_about_none_of_these_is_always_offered():
    d = decide("personal_case", 0.6, [("a", 0.45), ("b", 0.2)], ASK)
    assert (d.intent, d.offer) == (ASK_INTENT, ("a",))


def test_a_lean_to_a_complaint_is_never_asked_about():
    assert decide("complaint", 0.6, [("a", 0.45), ("b", 0.2)], ASK).intent == FALLBACK_INTENT
    assert decide("complaint", 0.95, [("a", 0.45), ("b", 0.2)], ASK).intent == "complaint"


def test_a_confident_request_for_a_person_is_handed_over_at_once():
    assert decide("request_human", 0.95, [("a", 0.6), ("b", 0.2)], ASK).intent == "request_human"


def test_asking_is_off_by_default():
    assert decide("faq", 0.99, [("a", 0.45), ("b", 0.40)], Thresholds()).intent == FALLBACK_INTENT
