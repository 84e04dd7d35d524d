"""The one place where the application is assembled from its settings.

In the spirit of python-telegram-bot's ``ApplicationBuilder``: a single
configuration point, resources created once and closed at shutdown. The API,
every worker, the console and the CLI receive a ``Runtime``; nothing else
constructs the session factory, the Rasa client, the outbox's delivery service
or the channels' senders, so a new setting (a second database, a Redis lock, a
metrics registry) is wired in here once and reaches every process.

Resources are created on first use rather than in ``__init__``: a CLI command
that only writes the store never opens an HTTP client. ``close()`` (or leaving
the ``with`` block) releases what was created.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from bot.alerts.mail import Mailer, SmtpMailer
from bot.channels import registry
from bot.core.conversation import Conversation
from bot.core.languages import LanguageServices
from bot.core.rasa_client import RasaClient
from bot.identity.consent import consent_guard
from bot.modelbuilds.rasa_api import RasaModels
from bot.modelbuilds.trainer import ModelLoop
from bot.outbox.delivery import LEASE, DeliveryService, Preparer
from bot.scheduler.runner import Scheduler
from bot.store.db import session_factory
from bot.store.schema import load_models

if TYPE_CHECKING:
    from fastapi import APIRouter
    from sqlalchemy.orm import Session, sessionmaker

    from bot.channels.contract import ChannelAdapter
    from bot.outbox.outbound import ChannelSender
    from bot.settings import Settings


class Runtime:
    """Settings plus the services built from them; implements ``bot.channels.contract.ChannelServices``."""

    def __init__(
        self,
        settings: Settings,
        *,
        rasa: RasaClient | None = None,
        senders: Mapping[str, ChannelSender] | None = None,
    ) -> None:
        """``rasa`` and ``senders`` replace the real ones (tests, stand-ins); they are not closed here."""
        self._settings = settings
        self._given_senders = dict(senders) if senders is not None else None
        # Every table on the metadata, whichever feature this process uses (foreign keys cross packages).
        load_models()
        self._given_rasa = rasa
        self._closed = False

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def settings(self) -> Settings:
        return self._settings

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self._settings.database_url)

    @cached_property
    def rasa(self) -> RasaClient:
        if self._given_rasa is not None:
            return self._given_rasa
        return RasaClient(self._settings.rasa_url_list, self._settings.rasa_timeout_seconds)

    @cached_property
    def shared_redis(self):
        """The Redis the API workers share limits through (``CRM_REDIS_URL``), or None: one process."""
        if not self._settings.redis_url:
            return None
        import redis

        return redis.Redis.from_url(self._settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    @cached_property
    def languages(self) -> LanguageServices:
        """The language detector and the other languages' models (bot.core.languages)."""
        return LanguageServices.build(self._settings)

    @cached_property
    def conversation(self) -> Conversation:
        return Conversation(self._settings, self.sessions, self.rasa, self.languages)

    @cached_property
    def channels(self) -> list[ChannelAdapter]:
        """The adapters of the channels that are on."""
        return registry.enabled_adapters(self._settings)

    @cached_property
    def senders(self) -> dict[str, ChannelSender]:
        if self._given_senders is not None:
            return self._given_senders
        return {a.name: a.build_sender(self._settings) for a in self.channels if a.build_sender is not None}

    @cached_property
    def preparers(self) -> dict[str, Preparer]:
        return {a.name: a.build_preparer(self) for a in self.channels if a.build_preparer is not None}

    @cached_property
    def delivery(self) -> DeliveryService:
        """The outbox's delivery through every channel that is on."""
        return self.delivery_service()

    def delivery_service(
        self,
        senders: Mapping[str, ChannelSender] | None = None,
        *,
        preparers: Mapping[str, Preparer] | None = None,
        lease: timedelta | None = None,
    ) -> DeliveryService:
        """A delivery service; a channel's own worker passes the senders it owns (an initialised bot)."""
        settings = self._settings
        if senders is None:
            senders = self.senders
            preparers = self.preparers if preparers is None else preparers
        return DeliveryService(
            self.sessions,
            senders,
            max_attempts=settings.delivery_max_attempts,
            backoff_seconds=settings.delivery_backoff_seconds,
            backoff_max_seconds=settings.delivery_backoff_max_seconds,
            preparers=preparers or {},
            lease=lease or LEASE,
            # Every channel: a notice or announcement whose consent was withdrawn is not sent.
            guards=(consent_guard,),
        )

    @cached_property
    def staff_mailer(self) -> Mailer | None:
        """SMTP for staff alerts; None when CRM_SMTP_HOST or a sender address is not set."""
        return SmtpMailer(self._settings) if self._settings.alert_sender else None

    @cached_property
    def scheduler(self) -> Scheduler:
        """The periodic jobs (commitment alerts, staff e-mail) of `python -m bot scheduler`."""
        return Scheduler(self._settings, self.sessions, self.staff_mailer)

    def other_senders(self, channel: str) -> list[str]:
        """Channels other than ``channel`` that can carry a message (WhatsApp's window hands over to them)."""
        return [name for name in registry.sending_channels(self._settings) if name != channel]

    def routers(self) -> list[APIRouter]:
        """Webhook endpoints of the channels that are on."""
        built = []
        for channel in self.channels:
            if channel.build_router is not None:
                router = channel.build_router(self)
                if router is not None:
                    built.append(router)
        return built

    # --- The KB learning loop (bot/modelbuilds) ---
    @cached_property
    def rasa_models(self) -> RasaModels:
        """Rasa's model API in every Rasa process (the trainer, ``bot model``)."""
        settings = self._settings
        token = settings.rasa_token.get_secret_value() if settings.rasa_token is not None else None
        return RasaModels(settings.rasa_url_list, token, timeout_seconds=settings.rasa_timeout_seconds,
                          load_timeout_seconds=settings.model_load_timeout_seconds)

    @cached_property
    def model_loop(self) -> ModelLoop:
        return ModelLoop(self.sessions, self.rasa_models, kb_dir=self._settings.kb_dir,
                         models_dir=self._settings.models_dir)
    # --- end of the KB learning loop ---

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if "rasa" in self.__dict__ and self._given_rasa is None:
            self.rasa.close()
        if "rasa_models" in self.__dict__:
            self.rasa_models.close()
        if self.__dict__.get("shared_redis") is not None:
            self.shared_redis.close()


def build_runtime(settings: Settings | None = None, *, rasa: RasaClient | None = None) -> Runtime:
    """The runtime for this process, from the environment's settings unless given (tests pass theirs)."""
    if settings is None:
        from bot.settings import get_settings

        settings = get_settings()
    return Runtime(settings, rasa=rasa)
