"""What the WhatsApp channel contributes to the running system (see bot.channels.registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter

    from bot.outbox.delivery import DeliveryService
    from bot.channels.whatsapp.graph import GraphSender
    from bot.channels.whatsapp.window import WindowPolicy
    from bot.core.conversation import Conversation
    from bot.settings import Settings


def build_sender(settings: Settings) -> GraphSender:
    from bot.channels.whatsapp.graph import GraphSender

    return GraphSender(
        graph_url=settings.whatsapp_graph_url,
        phone_number_id=settings.whatsapp_phone_number_id,
        access_token=settings.whatsapp_access_token.get_secret_value(),
        timeout_seconds=settings.network_timeout_seconds,
    )


def build_preparer(settings: Settings) -> WindowPolicy:
    from bot.channels import registry
    from bot.channels.whatsapp.window import WindowPolicy

    # Channels that can carry a reply the 24-hour window keeps off WhatsApp.
    others = [
        name for name in registry.enabled_channels(settings)
        if name != "whatsapp" and hasattr(registry.adapter(name), "build_sender")
    ]
    return WindowPolicy(
        template_name=settings.whatsapp_template_name,
        template_language=settings.whatsapp_template_language,
        template_parameters=[p.strip() for p in settings.whatsapp_template_parameters.split(",") if p.strip()],
        other_channels=others,
    )


def build_router(settings: Settings, conversation: Conversation, delivery: DeliveryService) -> APIRouter:
    from bot.channels.whatsapp.processing import WebhookProcessor
    from bot.channels.whatsapp.webhook import make_router
    from bot.store.db import session_factory

    processor = WebhookProcessor(
        phone_number_id=settings.whatsapp_phone_number_id,
        sessions=session_factory(settings.database_url),
        conversation=conversation,
        delivery=delivery,
    )
    return make_router(
        processor=processor,
        app_secret=settings.whatsapp_app_secret.get_secret_value(),
        verify_token=settings.whatsapp_verify_token.get_secret_value(),
        max_body_bytes=settings.max_body_bytes,
    )
