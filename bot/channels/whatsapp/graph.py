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

from bot.channels.choices import OfferedChoices, offered_choices, truncate
from bot.outbox.outbound import DeliveryError, OutboundMessage, SendResult
from bot.texts import override
from bot.texts import text as catalogue_text

logger = logging.getLogger(__name__)

# A text message's body may hold at most this many characters.
TEXT_LIMIT = 4096
# Where the window policy (window.py) puts the template to send instead of the text.
TEMPLATE_META_KEY = "whatsapp_template"

# Interactive messages ("Do you mean ...?"), Meta's limits (developers.facebook.com/documentation/
# business-messaging/whatsapp/messages/interactive-reply-buttons-messages and
# .../interactive-list-messages): body text 1024 characters; reply buttons: at most 3, title
# 20 characters, unique, id 256; list: button label 20, at most 10 rows over all sections,
# row id 200, row title 24, row description 72, section title 24.
INTERACTIVE_BODY_LIMIT = 1024
MAX_REPLY_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
LIST_BUTTON_LIMIT = 20
MAX_LIST_ROWS = 10
ROW_ID_LIMIT = 200
ROW_TITLE_LIMIT = 24
ROW_DESCRIPTION_LIMIT = 72
SECTION_TITLE_LIMIT = 24
# The words on the buttons are in the catalogue (bot.texts, the whatsapp section), among them
# whatsapp.short_body: the body of the buttons when the question itself is too long to be
# their body (it went out as text just before).

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


def _option_titles(choices: OfferedChoices, limit: int) -> list[str]:
    """Each option's own question when it fits in ``limit`` (and all stay distinct), else
    "Option N": the body above lists every question in full, numbered."""
    titles = [o.title if len(o.title) <= limit else catalogue_text("whatsapp.option", n=o.n) for o in choices.options]
    if len({t.casefold() for t in titles}) != len(titles):
        titles = [catalogue_text("whatsapp.option", n=o.n) for o in choices.options]
    return titles


def interactive_payload(to: str, body: str, choices: OfferedChoices) -> dict[str, Any] | None:
    """Reply buttons when the options and "none" fit in three, else a list; None when the
    choices cannot be carried (the numbered text then stands alone)."""
    ids = [option.data(choices.offer) for option in choices.all]
    if len(choices.all) > MAX_LIST_ROWS or any(len(i) > ROW_ID_LIMIT for i in ids) or not body.strip():
        return None
    body = truncate(body, INTERACTIVE_BODY_LIMIT) if len(body) > INTERACTIVE_BODY_LIMIT else body
    none_titles = [catalogue_text("whatsapp.none_button")] if choices.none is not None else []
    if len(choices.all) <= MAX_REPLY_BUTTONS:
        titles = [*_option_titles(choices, BUTTON_TITLE_LIMIT), *none_titles]
        action: dict[str, Any] = {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}}
                                              for i, t in zip(ids, titles)]}
        interactive: dict[str, Any] = {"type": "button", "body": {"text": body}, "action": action}
    else:
        titles = _option_titles(choices, ROW_TITLE_LIMIT)
        rows = [{"id": i, "title": t, **({"description": truncate(o.title, ROW_DESCRIPTION_LIMIT)}
                                         if choices.numbered else {})}
                for i, t, o in zip(ids, titles, choices.options)]
        if choices.none is not None:
            rows.append({"id": ids[-1], "title": catalogue_text("whatsapp.none_button"),
                         "description": truncate(choices.none.title, ROW_DESCRIPTION_LIMIT)})
        interactive = {"type": "list", "body": {"text": body},
                       "action": {"button": catalogue_text("whatsapp.list_button"),
                                  "sections": [{"title": catalogue_text("whatsapp.section_title"), "rows": rows}]}}
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "interactive",
            "interactive": interactive}


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
        # The buttons' own words ("None of these", "Options") in the language of the text above them.
        with override(message.language):
            return self._payloads(message)

    def _payloads(self, message: OutboundMessage) -> list[dict[str, Any]]:
        template = message.meta.get(TEMPLATE_META_KEY)
        if isinstance(template, dict):
            # Outside the 24-hour window: only a template may go, so no buttons (window.py).
            return [template_payload(message.address, **template)]
        choices = offered_choices(message.meta)
        if choices is not None:
            if len(message.text) <= INTERACTIVE_BODY_LIMIT:
                interactive = interactive_payload(message.address, message.text, choices)
                if interactive is not None:
                    return [interactive]
            else:
                # The question and its options in full as text, then the buttons under a short body.
                interactive = interactive_payload(message.address, catalogue_text("whatsapp.short_body"), choices)
                if interactive is not None:
                    return [*(text_payload(message.address, part) for part in split_text(message.text)), interactive]
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
