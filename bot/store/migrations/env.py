"""Alembic environment for the interaction store.

The URL comes from the Alembic config when set (``upgrade_database`` sets it)
so that tests and tools can migrate any database; otherwise from the
application settings, so ``alembic upgrade head`` migrates the configured one.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.types import TypeDecorator

from bot.store.db import Base, _resolve_url, make_engine
from bot.store.schema import load_models

load_models()

config = context.config

# Only the alembic CLI configures logging; programmatic upgrades keep the app's logging.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from bot.settings import get_settings

    return get_settings().database_url


def _render_item(type_: str, obj: object, autogen_context: Any) -> str | bool:
    """Render our TypeDecorators as their database type.

    Generated migrations then import nothing from the application, so they keep
    working after the application code moves on.
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def _options(dialect_name: str) -> dict[str, object]:
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    return {
        "target_metadata": target_metadata,
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "render_item": _render_item,
    }


def run_migrations_offline() -> None:
    url = _resolve_url(_url())
    context.configure(url=url, literal_binds=True, **_options(url.get_backend_name()))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **_options(connection.dialect.name))
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
