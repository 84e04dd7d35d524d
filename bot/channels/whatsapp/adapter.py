"""The WhatsApp channel as the runtime sees it (``bot.channels.contract.ChannelAdapter``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.channels.contract import ChannelAdapter

if TYPE_CHECKING:
    from fastapi import APIRouter

    from bot.channels.contract import ChannelServices
    from bot.channels.whatsapp.graph import GraphSender
    from bot.channels.whatsapp.window import WindowPolicy
    from bot.settings import Settings


def build_sender(settings: Settings) -> GraphSender:
    from bot.channels.whatsapp.graph import GraphSender

    return GraphSender(
        graph_url=settings.whatsapp_graph_url,
        phone_number_id=settings.whatsapp_phone_number_id,
        access_token=settings.whatsapp_access_token.get_secret_value(),
        timeout_seconds=settings.network_timeout_seconds,
    )


def build_preparer(services: ChannelServices) -> WindowPolicy:
    from bot.channels.whatsapp.window import WindowPolicy

    settings = services.settings
    # Channels that can carry a reply the 24-hour window keeps off WhatsApp.
    others = services.other_senders("whatsapp")
    return WindowPolicy(
        template_name=settings.whatsapp_template_name,
        template_language=settings.whatsapp_template_language,
        template_parameters=[p.strip() for p in settings.whatsapp_template_parameters.split(",") if p.strip()],
        other_channels=others,
    )


def build_router(services: ChannelServices) -> APIRouter:
    from bot.channels.whatsapp.processing import WebhookProcessor
    from bot.channels.whatsapp.webhook import make_router

    settings = services.settings
    processor = WebhookProcessor(
        phone_number_id=settings.whatsapp_phone_number_id,
        sessions=services.sessions,
        conversation=services.conversation,
        delivery=services.delivery,
    )
    return make_router(
        processor=processor,
        app_secret=settings.whatsapp_app_secret.get_secret_value(),
        verify_token=settings.whatsapp_verify_token.get_secret_value(),
        max_body_bytes=settings.max_body_bytes,
    )


ADAPTER = ChannelAdapter(
    name="whatsapp",
    build_sender=build_sender,
    build_preparer=build_preparer,
    build_router=build_router,
)
