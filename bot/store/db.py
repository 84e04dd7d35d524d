"""Engines, sessions and migrations for the interaction store.

Nothing here touches a database at import time: the API, the action server and
the CLI import the models long before they know which database they serve.
Engines are built on first use and cached per URL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Deterministic constraint names, so migrations can drop and alter them by name
# on every backend (SQLite batch mode needs names to rebuild tables).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Milliseconds a SQLite connection waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000

_MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _resolve_url(url: str | URL) -> URL:
    """Plain ``postgresql://`` URLs mean psycopg 3, the only PostgreSQL driver we install."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave like a database that several processes share.

    pysqlite's own transaction handling breaks SAVEPOINTs (it starts transactions
    lazily and a released outer savepoint commits), so we turn it off and emit
    BEGIN ourselves. BEGIN IMMEDIATE takes the single write lock up front: a
    deferred transaction that later needs to write fails at once with
    SQLITE_BUSY instead of waiting out busy_timeout. The price is that read-only
    units of work queue behind writers too; SQLite is for development and small
    sites, PostgreSQL for anything busy.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | URL) -> Engine:
    """A new engine with the per-backend settings the store relies on."""
    parsed = _resolve_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed)
        _configure_sqlite(engine)
        return engine
    # Connections die when PostgreSQL restarts or a proxy drops idle ones.
    return create_engine(parsed, pool_pre_ping=True)


def _default_url() -> str:
    from bot.settings import get_settings

    return get_settings().database_url


_factories: dict[str, sessionmaker[Session]] = {}
_factories_lock = threading.Lock()


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """The process-wide session factory for ``url`` (default: the configured database).

    Cached because each engine owns a connection pool; one per URL per process.
    """
    key = url or _default_url()
    with _factories_lock:
        factory = _factories.get(key)
        if factory is None:
            # expire_on_commit=False: callers read ids and texts after session_scope commits.
            factory = sessionmaker(bind=make_engine(key), expire_on_commit=False)
            _factories[key] = factory
        return factory


def dispose_engines() -> None:
    """Close every pooled connection: before dropping a test database, or in a forked worker."""
    with _factories_lock:
        for factory in _factories.values():
            engine = factory.kw.get("bind")
            if engine is not None:
                engine.dispose()
        _factories.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One unit of work: commit if the block succeeds, roll back if it raises."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upgrade_database(url: str, revision: str = "heads") -> None:
    """Bring the schema at ``url`` to the newest migration (or to ``revision``, for migration tests)."""
    from alembic import command
    from alembic.config import Config

    parsed = _resolve_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    # ConfigParser interpolation would eat a '%' in a URL-encoded password.
    config.set_main_option("sqlalchemy.url", parsed.render_as_string(hide_password=False).replace("%", "%%"))
    # "heads": work written in parallel may add migration branches until a merge revision joins them.
    command.upgrade(config, revision)
