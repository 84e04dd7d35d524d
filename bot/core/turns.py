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
# On a message the core handed to a person because Rasa did not answer in time (a timeout, a
# process that died with it). Rasa may still get to it later; its actions must then do nothing,
# or the message would be handled twice (a second ticket, an answer nobody receives).
SETTLED_KEY = "settled_without_assistant"


class TurnSettled(Exception):
    """The message was settled without the assistant; this late turn must change nothing."""
# The request id of the API call or worker pass that sent the message (bot.observability.logs),
# next to the message id: the action server logs under the same id.
REQUEST_ID_KEY = "request_id"


def resolve_turn(session: Session, *, sender_id: str, text: str, metadata: dict[str, Any] | None) -> Message:
    message_id = (metadata or {}).get(METADATA_KEY)
    if isinstance(message_id, int):
        # Locked until the action's unit of work ends, as the core locks it when it settles the
        # message without the assistant: whichever comes second sees what the first did.
        message = session.get(Message, message_id, with_for_update=True)
        if message is not None and message.direction == "in":
            if (message.meta or {}).get(SETTLED_KEY):
                raise TurnSettled(message_id)
            return message
    identity = get_or_create_identity(session, DIRECT_RASA_CHANNEL, sender_id)
    message, _created = record_inbound(session, identity, text or "")
    return message
