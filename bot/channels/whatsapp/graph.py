"""Sending through the Graph API: ``POST {graph_url}/{phone_number_id}/messages``.

Which failures are worth retrying follows Meta's error reference: server errors,
HTTP 429 and the throttling codes are temporary; anything else (bad number,
expired token, a template that does not exist) will fail again the same way, so
the message is failed at once with Meta's explanation for the agent.
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import httpx

from bot.channels.outbound import DeliveryError, OutboundMessage, SendResult

logger = logging.getLogger(__name__)

# A text message's body may hold at most this many characters.
TEXT_LIMIT = 4096
# Where the window policy (window.py) puts the template to send instead of the text.
TEMPLATE_META_KEY = "whatsapp_template"

# Graph error codes that mean "later", even when they come with HTTP 400:
# 1/2 temporary API problems, 4/80007/130429/131056 rate limits, 131000/133004 Meta-side
# failures, 131047 "more than 24 hours since the customer last replied" (the next attempt
# runs the window policy again and sends a template or uses another channel).
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131047, 131056, 133004})


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Cut a long reply into messages, preferring paragraph, line and word boundaries."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def text_payload(to: str, body: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": body},
    }


def template_payload(to: str, *, name: str, language: str, parameters: list[str]) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parameters:
        template["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": value} for value in parameters]}
        ]
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "template",
            "template": template}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the other form HTTP allows: a date
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _graph_error(response: httpx.Response) -> tuple[int | None, str]:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    message = "; ".join(str(part) for part in (error.get("message"), details) if part) or response.text[:300]
    return code, message


class GraphSender:
    """The WhatsApp ``ChannelSender``; talks to the Graph API only, never to the database."""

    channel = "whatsapp"

    def __init__(
        self,
        *,
        graph_url: str,
        phone_number_id: str,
        access_token: str,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = f"{graph_url.rstrip('/')}/{phone_number_id}/messages"
        self._token = access_token
        self._timeout = httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds))
        self._transport = transport

    def payloads(self, message: OutboundMessage) -> list[dict[str, Any]]:
        template = message.meta.get(TEMPLATE_META_KEY)
        if isinstance(template, dict):
            return [template_payload(message.address, **template)]
        return [text_payload(message.address, part) for part in split_text(message.text)]

    async def send(self, message: OutboundMessage) -> SendResult:
        payloads = self.payloads(message)
        wamids: list[str | None] = []
        # A client per message: the delivery worker and the API call us from different event
        # loops over their lifetime, and a client must not outlive its loop.
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
            for payload in payloads:
                wamids.append(await self._post(client, payload))
        return SendResult(external_id=wamids[0], part_ids=[w for w in wamids[1:] if w])

    async def _post(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> str | None:
        try:
            response = await client.post(self._url, json=payload, headers={"Authorization": f"Bearer {self._token}"})
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"Graph API timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Graph API unreachable ({type(exc).__name__})") from exc
        if response.status_code == 429 or response.status_code >= 500:
            _code, text = _graph_error(response)
            raise DeliveryError(
                f"Graph API answered HTTP {response.status_code}: {text}", retry_after=_retry_after(response)
            )
        if response.status_code >= 400:
            code, text = _graph_error(response)
            reason = f"WhatsApp refused the message (HTTP {response.status_code}, code {code}): {text}"
            raise DeliveryError(reason, retryable=code in RETRYABLE_CODES, retry_after=_retry_after(response))
        try:
            wamid = response.json()["messages"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            wamid = None
        if not isinstance(wamid, str) or not wamid or len(wamid) > 255:
            # Accepted (2xx) but without a usable id: do not send it again; statuses won't match.
            logger.warning("Graph API accepted a message without returning its id (HTTP %s)", response.status_code)
            return None
        return wamid
