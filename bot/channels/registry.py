"""Which channels exist and which are on; each one's contribution is its ``ChannelAdapter``.

A channel is on when its settings are given (``Settings.<name>_enabled``). The
adapter modules are imported only when a channel is on, so a city without
Telegram never loads python-telegram-bot.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.channels.contract import ChannelAdapter
    from bot.settings import Settings

CHANNELS: tuple[str, ...] = ("telegram", "whatsapp", "email")


def enabled_channels(settings: Settings) -> list[str]:
    return [name for name in CHANNELS if getattr(settings, f"{name}_enabled", False)]


def adapter(name: str) -> ChannelAdapter:
    from bot.channels.contract import ChannelAdapter

    found = getattr(importlib.import_module(f"bot.channels.{name}.adapter"), "ADAPTER", None)
    if not isinstance(found, ChannelAdapter):
        raise TypeError(f"bot.channels.{name}.adapter must define ADAPTER = ChannelAdapter(...)")
    return found


def enabled_adapters(settings: Settings) -> list[ChannelAdapter]:
    return [adapter(name) for name in enabled_channels(settings)]


def worker_channels(settings: Settings) -> list[str]:
    return [a.name for a in enabled_adapters(settings) if a.wants_worker(settings)]


def sending_channels(settings: Settings) -> list[str]:
    return [a.name for a in enabled_adapters(settings) if a.build_sender is not None]
