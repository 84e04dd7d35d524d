from __future__ import annotations

import pytest

from bot.tickets.priority import (
    HIGH,
    HIGH_KEYWORDS,
    NORMAL,
    PRIORITIES,
    URGENT,
    URGENT_KEYWORDS,
    detect_priority,
    priority_rank,
    vulnerability_rule,
)


def test_rank_orders_priorities() -> None:
    assert [priority_rank(p) for p in PRIORITIES] == [0, 1, 2, 3]
    assert priority_rank("urgent") > priority_rank("high") > priority_rank("normal") > priority_rank("low")
    with pytest.raises(ValueError, match="unknown priority"):
        priority_rank("critical")


@pytest.mark.parametrize(
    "text",
    [
        "There is a GAS LEAK on Elm street",
        "exposed wires hanging from the lamp post",
        "the underpass is flooding",
        "My mother is elderly and we have had no heating for 3 days",
        "no heat and my husband is disabled",
        "I am homeless tonight",
        "I received an eviction notice",
        "my neighbour is a victim of domestic violence",
        "I think a child at risk lives next door",
    ],
)
def test_urgent(text: str) -> None:
    assert detect_priority(text) == "urgent"


@pytest.mark.parametrize(
    "text",
    [
        "I use a wheelchair and the ramp is blocked",
        "my elderly father needs a parking permit",
        "I am pregnant, can I get a priority appointment?",
    ],
)
def test_high(text: str) -> None:
    assert detect_priority(text) == "high"


@pytest.mark.parametrize(
    "text",
    [
        "When is the bulky waste pickup?",
        "no heating in the town hall meeting room",  # no vulnerable person mentioned
        "the gasket leaked",  # whole words only
        "",
    ],
)
def test_normal(text: str) -> None:
    assert detect_priority(text) == "normal"


def test_every_listed_keyword_works() -> None:
    for phrase in URGENT_KEYWORDS:
        assert detect_priority(f"Hello, {phrase.upper()}!") == "urgent", phrase
    for word in HIGH_KEYWORDS:
        assert detect_priority(f"I am {word}.") in ("high", "urgent"), word


@pytest.mark.parametrize("text", [
    "Hay una fuga de gas en el portal",
    "huele a gas en toda la escalera",
    "Estamos sin calefaccion y mi padre es anciano",
    "Me desahucian mañana y no tengo adónde ir",
])
def test_urgent_in_spanish(text: str) -> None:
    assert detect_priority(text) == URGENT


@pytest.mark.parametrize(("text", "rule"), [
    ("Mi madre tiene 87 años y vive sola", "age 80 or over"),
    ("Soy usuaria de silla de ruedas y la rampa está rota", "mentions a wheelchair"),
    ("Estoy embarazada y necesito cita", "mentions a pregnancy"),
])
def test_vulnerable_in_spanish(text: str, rule: str) -> None:
    assert vulnerability_rule(text) == rule and detect_priority(text) == HIGH


def test_a_spanish_question_without_those_words_is_normal() -> None:
    assert detect_priority("¿Cuándo recogen la basura en mi calle?") == NORMAL
