"""What a channel is to the rest of the system: one typed description per channel.

Each channel package ``bot.channels.<name>`` has a module ``adapter`` with one
``ADAPTER = ChannelAdapter(...)``. The runtime (``bot.runtime``) reads only
this description, so a channel cannot half-implement a hook by a typo, and the
API, the workers and the console never look inside a channel's package.

A channel's hooks receive ``ChannelServices``, the part of the runtime a
channel may use, as a protocol: channels sit above the core and below the
runtime, and never import the runtime itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fastapi import APIRouter
    from sqlalchemy.orm import Session, sessionmaker

    from bot.core.conversation import Conversation
    from bot.outbox.delivery import DeliveryService, Preparer
    from bot.outbox.outbound import ChannelSender
    from bot.settings import Settings


class ChannelServices(Protocol):
    """The services a channel's router or worker is given (``bot.runtime.Runtime`` provides them)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def conversation(self) -> Conversation: ...

    @property
    def delivery(self) -> DeliveryService: ...

    def delivery_service(
        self,
        senders: Mapping[str, ChannelSender] | None = None,
        *,
        preparers: Mapping[str, Preparer] | None = None,
        lease: timedelta | None = None,
    ) -> DeliveryService: ...

    def other_senders(self, channel: str) -> list[str]: ...


def _never(_settings: Settings) -> bool:
    return False


@dataclass(frozen=True)
class ChannelAdapter:
    """One channel's contribution; every hook is optional except the name.

    - ``build_sender``: delivers outbound messages from the outbox;
    - ``build_preparer``: looks at the store before a message goes out (WhatsApp's 24-hour window);
    - ``build_router``: webhook endpoints served by the API (WhatsApp, Telegram in webhook mode); None: none now;
    - ``run_worker``: a long-running process of its own (Telegram long polling, the IMAP reader), started
      by ``python -m bot channel <name>`` when ``needs_worker`` says so for these settings.
    """

    name: str
    build_sender: Callable[[Settings], ChannelSender] | None = None
    build_preparer: Callable[[ChannelServices], Preparer] | None = None
    build_router: Callable[[ChannelServices], APIRouter | None] | None = None
    run_worker: Callable[[ChannelServices], int] | None = None
    needs_worker: Callable[[Settings], bool] = _never

    def __post_init__(self) -> None:
        if self.run_worker is None and self.needs_worker is not _never:
            raise ValueError(f"channel {self.name!r} says it needs a worker but has none")

    def wants_worker(self, settings: Settings) -> bool:
        return self.run_worker is not None and self.needs_worker(settings)
