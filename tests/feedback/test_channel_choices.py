"""The survey's questions in each channel's buttons: no "None of these", titles without numbers."""

from __future__ import annotations

from bot.channels.choices import offered_choices
from bot.channels.telegram.choices import keyboard
from bot.channels.web.chat import chat_choices
from bot.channels.whatsapp.graph import interactive_payload
from bot.feedback import service
from bot.feedback.models import STEP_COMMENT, STEP_RATING, STEP_SOLVED
from tests.channels.whatsapp.graph_standin import limit_problem

TOKEN = "f23456789abcd"


def _meta(step: str) -> dict:
    return {service.CHOICES_KEY: service.choices(TOKEN, step)}


def test_the_shared_reading_has_no_none_and_no_numbers() -> None:
    solved = offered_choices(_meta(STEP_SOLVED))
    assert solved.none is None and not solved.numbered
    assert [(o.n, o.title) for o in solved.all] == [(service.YES, "Yes"), (service.NO, "No")]
    assert len(offered_choices(_meta(STEP_RATING)).all) == 5
    assert service.choices(TOKEN, STEP_COMMENT) is None


def test_telegram_shows_yes_no_side_by_side() -> None:
    rows = keyboard(_meta(STEP_SOLVED)).to_dict()["inline_keyboard"]
    assert [[(b["text"], b["callback_data"]) for b in row] for row in rows] == [
        [("Yes", f"kb:{TOKEN}:11"), ("No", f"kb:{TOKEN}:10")]]


def test_whatsapp_reply_buttons_and_a_list_for_the_rating() -> None:
    solved = interactive_payload("4915100000000", "Was it solved?", offered_choices(_meta(STEP_SOLVED)))
    assert solved["interactive"]["type"] == "button" and limit_problem(solved) is None
    assert [b["reply"] for b in solved["interactive"]["action"]["buttons"]] == [
        {"id": f"kb:{TOKEN}:11", "title": "Yes"}, {"id": f"kb:{TOKEN}:10", "title": "No"}]
    rating = interactive_payload("4915100000000", "How would you rate?", offered_choices(_meta(STEP_RATING)))
    assert rating["interactive"]["type"] == "list" and limit_problem(rating) is None
    rows = rating["interactive"]["action"]["sections"][0]["rows"]
    assert rows == [{"id": f"kb:{TOKEN}:{n}", "title": str(n)} for n in range(1, 6)]


def test_web_chat_buttons() -> None:
    parsed = chat_choices(service.choices(TOKEN, STEP_SOLVED))
    assert parsed.as_json()["options"] == [{"n": 11, "title": "Yes", "choice": f"kb:{TOKEN}:11"},
                                           {"n": 10, "title": "No", "choice": f"kb:{TOKEN}:10"}]
