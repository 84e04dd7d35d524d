"""Every module that declares tables on ``Base.metadata``.

Features keep their tables beside their code (the console's users, the email
channel's mailbox state); Alembic and the tests need all of them registered,
so each such module is listed here once.
"""

from __future__ import annotations

import importlib

MODEL_MODULES: tuple[str, ...] = (
    "bot.store.models",
    "bot.staff.models",
    "bot.tickets.models",
    "bot.identity.models",
    "bot.channels.whatsapp.models",
    "bot.console.models",
    "bot.console.insights_models",
    "bot.channels.email.models",
    "bot.alerts.models",
    "bot.scheduler.models",
    "bot.privacy.models",
    "bot.modelbuilds.models",
    "bot.notices.models",
    "bot.feedback.models",
)


def load_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
