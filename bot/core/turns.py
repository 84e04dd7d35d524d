"""Tie a Rasa turn back to the stored inbound message and record its outcome.

The application stores every message before Rasa sees it and passes the row id
in the webhook metadata. A message that reaches Rasa some other way (``rasa
shell``, a direct webhook call) is stored here under the ``rasa`` channel, so
even then nothing goes unrecorded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.store.citizens import get_or_create_identity
from bot.store.messages import record_inbound
from bot.store.models import Message

DIRECT_RASA_CHANNEL = "rasa"
METADATA_KEY = "inbound_message_id"
# The request id of the API call or worker pass that sent the message (bot.observability.logs),
# next to the message id: the action server logs under the same id.
REQUEST_ID_KEY = "request_id"


def resolve_turn(session: Session, *, sender_id: str, text: str, metadata: dict[str, Any] | None) -> Message:
    message_id = (metadata or {}).get(METADATA_KEY)
    if isinstance(message_id, int):
        message = session.get(Message, message_id)
        if message is not None and message.direction == "in":
            return message
    identity = get_or_create_identity(session, DIRECT_RASA_CHANNEL, sender_id)
    message, _created = record_inbound(session, identity, text or "")
    return message
