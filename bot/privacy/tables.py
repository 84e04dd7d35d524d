"""Tables of features beside or above this package, by name, when this installation has them.

The e-mail channel, the console, the "Was it solved?" surveys and a consents feature declare
their tables on the shared metadata; importing them from here would break the layers, so they are looked up by name."""

from __future__ import annotations

from sqlalchemy import Table

from bot.store.db import Base
from bot.store.schema import load_models

# "Was it solved?" surveys (bot.feedback, a layer above): their comment is citizen text.
FEEDBACK_SURVEYS = "feedback_surveys"


def installed_table(name: str) -> Table | None:
    load_models()
    return Base.metadata.tables.get(name)
