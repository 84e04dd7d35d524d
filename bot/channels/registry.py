"""Which channels are on, and what each contributes to the running system.

A channel package ``bot.channels.<name>`` has a module ``adapter`` with any of:

- ``build_sender(settings) -> ChannelSender``: delivers outbound messages;
- ``build_router(settings, conversation, delivery) -> fastapi.APIRouter``: webhook
  endpoints served by the API (WhatsApp, Telegram in webhook mode);
- ``build_preparer(settings) -> Preparer``: looks at the store before a message goes
  out (``bot.outbox.delivery.Preparer``; WhatsApp's 24-hour window);
- ``needs_worker(settings) -> bool`` and ``run_worker(settings) -> int``: a
  long-running process of its own (Telegram long polling, the IMAP reader),
  started by ``python -m bot channel <name>``.

A channel is on when its settings are given (``Settings.<name>_enabled``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.outbox.outbound import ChannelSender
    from bot.settings import Settings

CHANNELS: tuple[str, ...] = ("telegram", "whatsapp", "email")


def enabled_channels(settings: Settings) -> list[str]:
    return [name for name in CHANNELS if getattr(settings, f"{name}_enabled", False)]


def adapter(name: str) -> ModuleType:
    return importlib.import_module(f"bot.channels.{name}.adapter")


def senders(settings: Settings) -> dict[str, ChannelSender]:
    built: dict[str, ChannelSender] = {}
    for name in enabled_channels(settings):
        module = adapter(name)
        if hasattr(module, "build_sender"):
            built[name] = module.build_sender(settings)
    return built


def preparers(settings: Settings) -> dict[str, Any]:
    built: dict[str, Any] = {}
    for name in enabled_channels(settings):
        module = adapter(name)
        if hasattr(module, "build_preparer"):
            built[name] = module.build_preparer(settings)
    return built


def routers(settings: Settings, conversation: Any, delivery: Any) -> list[Any]:
    built = []
    for name in enabled_channels(settings):
        module = adapter(name)
        if hasattr(module, "build_router"):
            router = module.build_router(settings, conversation, delivery)
            if router is not None:
                built.append(router)
    return built


def worker_channels(settings: Settings) -> list[str]:
    names = []
    for name in enabled_channels(settings):
        module = adapter(name)
        if hasattr(module, "run_worker") and getattr(module, "needs_worker", lambda _s: True)(settings):
            names.append(name)
    return names
