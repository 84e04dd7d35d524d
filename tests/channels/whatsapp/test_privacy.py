"""\"my data\" and \"erase my data\" on WhatsApp: signed webhooks in, the code and the link out through
the Graph API stand-in, never through Rasa; after erasure the number is nowhere in the store."""

from __future__ import annotations

import re

from bot.privacy.jobs import job
from bot.settings import Settings
from bot.store.db import session_factory
from tests.channels.whatsapp.conftest import message, webhook
from tests.privacy.helpers import find_in_database

WA = "34600555123"


def _code(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text)[1]


def test_my_data_then_erase_on_whatsapp(wa, graph, rasa, db_url) -> None:
    assert wa.post(webhook([message(WA, text="my data")])).status_code == 200
    (asked,) = graph.wait_for(WA)
    assert wa.post(webhook([message(WA, text=_code(asked.text))])).status_code == 200
    _, link = graph.wait_for(WA, 2)
    assert "/privacy/download/" in link.text
    assert wa.post(webhook([message(WA, text="Erase my data.")])).status_code == 200
    asked = graph.wait_for(WA, 3)[-1]
    assert wa.post(webhook([message(WA, text=_code(asked.text))])).status_code == 200
    done = graph.wait_for(WA, 4)[-1]
    assert done.text.startswith("Done: your data has been erased")
    assert rasa.seen == []
    job(session_factory(db_url), Settings(_env_file=None, api_keys="whatsapp-tests-key-0123456789", database_url=db_url))
    assert find_in_database(db_url, (WA,)) == []
