"""A channel adapter for tests: "sends" by HTTP POST to a local stand-in at FAKE_CHANNEL_URL.

Registered in place of a real channel's adapter (``bot.channels.registry.adapter``)
so the delivery worker can be run as the real process it is.
"""

from __future__ import annotations

import os

import httpx

from bot.channels.contract import ChannelAdapter
from bot.outbox.outbound import DeliveryError, OutboundMessage, SendResult


class HttpSender:
    channel = "telegram"

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    async def send(self, message: OutboundMessage) -> SendResult:
        payload = {"id": message.message_id, "address": message.address, "text": message.text, "attempt": message.attempt}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise DeliveryError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise DeliveryError(f"HTTP {response.status_code}", retryable=False)
        return SendResult(external_id=response.json()["external_id"])


def build_sender(settings) -> HttpSender:
    return HttpSender(os.environ["FAKE_CHANNEL_URL"], settings.network_timeout_seconds)


def needs_worker(_settings) -> bool:
    return True


def run_worker(_services) -> int:
    return 0


ADAPTER = ChannelAdapter(name="telegram", build_sender=build_sender, run_worker=run_worker, needs_worker=needs_worker)
