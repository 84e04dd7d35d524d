"""How long Telegram is asked again for an update that could not be stored."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from bot.channels.telegram import unstored
from bot.channels.telegram.unstored import RetryWindow


def test_an_update_is_kept_within_the_window_then_given_up_once_and_logged(monkeypatch, caplog):
    now = [100.0]
    monkeypatch.setattr(unstored.time, "monotonic", lambda: now[0])
    window = RetryWindow(60.0)
    assert window.keep(7)
    now[0] += 59.0
    assert window.keep(7)  # the window counts from the first failure, not the latest
    now[0] += 1.0
    with caplog.at_level(logging.ERROR, logger="bot.channels.telegram.unstored"):
        assert not window.keep(7)
    assert "update 7 could not be stored for 60 s" in caplog.text and "lost" in caplog.text
    assert window.keep(7)  # failing again later starts a new window


def test_an_update_stored_in_the_end_starts_afresh_if_it_fails_again(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(unstored.time, "monotonic", lambda: now[0])
    window = RetryWindow(30.0)
    assert window.keep(9)
    now[0] += 29.0
    window.done([9])  # stored at last
    now[0] += 2.0
    assert window.keep(9)
    now[0] += 29.0
    assert window.keep(9)  # 60 s after the first failure, but 29 s into the new window
    assert not RetryWindow(0.0).keep(10)  # no window: given up at once


def test_failures_are_reported_once_and_only_for_the_updates_asked_about():
    app = SimpleNamespace(bot_data={})
    unstored.mark_unstored(app, 3)
    unstored.mark_unstored(app, 5)
    assert unstored.unstored_updates(app, [5, 4]) == [5]
    assert unstored.unstored_updates(app, [5]) == []
    assert unstored.unstored_updates(app, [1, 2, 3]) == [3]
