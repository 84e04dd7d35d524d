"""Running the Telegram channel in a test: the real Application, Conversation and
delivery queue against the Bot API stand-in, in a thread of its own."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from sqlalchemy.exc import OperationalError

from bot.channels.telegram.application import build_application, poll
from bot.channels.telegram.handlers import TelegramHandlers
from bot.channels.telegram.sender import TelegramSender
from bot.core.conversation import Conversation
from bot.core.turns import METADATA_KEY
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store.db import session_factory
from bot.store.messages import record_handling
from bot.store.models import Message
from tools.standins.telegram import BotApiStandIn

TOKEN = "123456:TEST-token-for-the-stand-in"


def telegram_settings(db_url: str, standin: BotApiStandIn, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_keys": "test-key-" + "x" * 16,
        "database_url": db_url,
        "telegram_bot_token": TOKEN,
        "telegram_base_url": standin.base_url,
        "network_timeout_seconds": 5.0,
        "delivery_backoff_seconds": 0.2,
        "delivery_backoff_max_seconds": 5.0,
        "privacy_notice_channels": "",  # the first-contact notice has its own tests (tests/privacy)
    }
    values.update(overrides)
    return Settings(**values)


class FakeRasa:
    """Stands in for Rasa + the action server: records what it read, in order, and answers
    "echo: <text>" (recording the turn as small talk, as an action would). ``delays`` makes
    chosen texts slow, to test ordering."""

    def __init__(self, db_url: str, delays: dict[str, float] | None = None) -> None:
        self.sessions = session_factory(db_url)
        self.delays = delays or {}
        self.seen: list[tuple[str, str]] = []  # (stored message's channel address, text read)
        self._lock = threading.Lock()

    def texts(self) -> list[str]:
        with self._lock:
            return [text for _sender, text in self.seen]

    def send(self, *, sender: str, text: str, metadata: dict) -> list[dict]:
        with self.sessions.begin() as session:
            message = session.get(Message, metadata[METADATA_KEY])
            address = message.identity.address
        with self._lock:
            self.seen.append((address, text))
        time.sleep(self.delays.get(text, 0.0))
        with self.sessions.begin() as session:
            record_handling(session.get(Message, metadata[METADATA_KEY]), intent="greet", confidence=1.0,
                            handling="small_talk")
        return [{"text": f"echo: {text}"}]

    def close(self) -> None:
        pass


class PollingBot:
    """``with PollingBot(settings, rasa):`` the channel polls the stand-in until the block ends."""

    def __init__(self, settings: Settings, rasa: Any, standin: BotApiStandIn) -> None:
        self.settings = settings
        self.rasa = rasa
        self.standin = standin
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.conversation: Conversation | None = None

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            sessions = session_factory(self.settings.database_url)
            application = build_application(self.settings, polling=True)
            delivery = Runtime(self.settings).delivery_service({"telegram": TelegramSender(application.bot)})
            self.conversation = Conversation(self.settings, sessions, self.rasa)
            TelegramHandlers(self.conversation, delivery, sessions, retry_pause=0.05).install(application)
            await poll(application, self._stop, poll_interval=self.settings.telegram_poll_interval_seconds,
                       retry_unstored_seconds=self.settings.telegram_retry_unstored_seconds)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by __exit__
            self._error = exc

    def __enter__(self) -> "PollingBot":
        already = len(self.standin.calls_of("getUpdates"))
        self._thread = threading.Thread(target=self._run, name="telegram-bot", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while len(self.standin.calls_of("getUpdates")) <= already:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError("the bot did not start") from self._error
            if time.monotonic() > deadline:
                raise TimeoutError("the bot never polled")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "the bot did not stop"
        if self._error is not None:
            raise self._error

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def store_fails(monkeypatch: Any, *, times: int | None = None, text: str | None = None) -> dict[str, int]:
    """Make storing a message fail as it does while the database is down: the first ``times``
    attempts, or every attempt at a message with this ``text``. Returns the attempt count."""
    real = Conversation.handle_inbound
    attempts = {"n": 0}

    def handle_inbound(self: Conversation, inbound: Any, **options: Any) -> Any:
        attempts["n"] += 1
        if (times is not None and attempts["n"] <= times) or (text is not None and inbound.text == text):
            raise OperationalError("INSERT INTO messages ...", {}, ConnectionError("the database is down"))
        return real(self, inbound, **options)

    monkeypatch.setattr(Conversation, "handle_inbound", handle_inbound)
    return attempts
