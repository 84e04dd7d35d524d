"""A stand-in for Rasa that asks "Do you mean ...?", for the web chat's tests.

It runs the real outcome functions the thin actions call (bot.core.turn_outcomes), so the
offer, the stored choices and the settlement of a pick are the real ones; only the NLU is
scripted: a question about an old sofa is unsure between two KB entries, a payload from a
pick ("/choose_kb_entry{...}") settles it. The outcomes read ``get_settings()``, so the
caller points the settings at the test store (``asking_environment``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from bot.core.turn_outcomes import Turn, escalate_turn, offer_kb_choices, settle_kb_choice
from bot.runtime import Runtime
from bot.settings import PROJECT_ROOT, get_settings

BULKY, GARDEN = "waste-bulky-items", "waste-garden-waste"
UNSURE = "how do I get rid of an old sofa"
_RESPONSES = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())["responses"]


def answer_text(entry: str) -> str:
    return f"ANSWER {entry}"


class AskingRasa:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        self.calls.append(text)
        payload = re.fullmatch(r"/(\w+)(\{.*\})?", text)
        if payload:
            intent = payload.group(1)
            entities = [{"entity": k, "value": v} for k, v in json.loads(payload.group(2) or "{}").items()]
            kb_match: dict = {}
            action = settle_kb_choice
        elif UNSURE.lower() in text.lower():
            intent, entities, action = "faq_unsure", [], offer_kb_choices
            kb_match = {"offer": [BULKY, GARDEN], "ranking": [
                {"entry": BULKY, "similarity": 0.45}, {"entry": GARDEN, "similarity": 0.40}]}
        else:
            intent, entities, kb_match, action = "nlu_fallback", [], {"ranking": []}, escalate_turn
        turn = Turn(sender_id=sender, text=text, intent=intent, confidence=0.5, metadata=metadata,
                    kb_match=kb_match, entities=entities)
        return [{"recipient_id": sender, "text": _render(reply.response, reply.variables)} for reply in action(turn, Runtime(get_settings()))]

    def close(self) -> None:
        pass


def _render(response: str, variables: dict) -> str:
    if response.startswith("utter_faq/"):
        return answer_text(response.split("/", 1)[1])
    return _RESPONSES[response][0]["text"].format(**variables)


@contextmanager
def asking_environment(db_url: str, kb_dir: Path, api_key: str) -> Iterator[None]:
    """``get_settings()`` on the test store while inside; the process's own settings after."""
    values = {"CRM_DATABASE_URL": db_url, "CRM_KB_DIR": str(kb_dir), "CRM_API_KEYS": api_key}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
