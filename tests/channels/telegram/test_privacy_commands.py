"""/privacy, /stop and /notify on Telegram reach the core's privacy commands (bot.privacy.notice),
through the stand-in for the Bot API; the assistant never reads them."""

from __future__ import annotations

from sqlalchemy import select

from bot.identity.models import Consent
from bot.privacy.notice import notice_text
from bot.store.db import session_factory
from tests.channels.telegram.support import FakeRasa, PollingBot, telegram_settings


def test_privacy_stop_and_notify_commands(db_url, standin):
    rasa = FakeRasa(db_url)
    settings = telegram_settings(db_url, standin, privacy_notice_channels="telegram")
    with PollingBot(settings, rasa, standin):
        standin.push(standin.updates.text(21, "/stop"))
        (unknown,) = standin.wait_for_sent(21)
        standin.push(standin.updates.text(21, "/privacy"), standin.updates.text(21, "/notify"),
                     standin.updates.text(21, "/stop"))
        sent = standin.wait_for_sent(21, 4)
    assert rasa.seen == []
    # First contact: the "nothing to stop" answer carries the notice; /privacy repeats it alone.
    assert unknown.text.startswith("You do not receive notifications") and unknown.text.endswith(notice_text(settings))
    assert sent[1].text == notice_text(settings)
    assert sent[2].text.startswith("Done: we will tell you here") and sent[3].text.startswith("Done: we will send you no more")
    with session_factory(db_url)() as session:
        (consent,) = session.scalars(select(Consent)).all()
        assert (consent.channel, consent.source, consent.withdrawn_source) == ("telegram", "command:/notify", "command:/stop")
