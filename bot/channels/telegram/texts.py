"""How the assistant reads the bot's commands: its (English) training data knows these phrasings.

Not citizen-facing: what the bot says to citizens is in the catalogue (``bot.texts``, the
``telegram`` section).
"""

from __future__ import annotations

STATUS_FOR_ASSISTANT = "what is the status of {argument}?"
HUMAN_FOR_ASSISTANT = "I want to talk to a real person"
