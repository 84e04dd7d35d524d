"""Database fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL is not optional: CI runs it, and a test run that silently skipped it
would hide exactly the bugs (locking, types, NUL bytes) that only PostgreSQL
shows. Where it comes from (TEST_POSTGRES_URL, 127.0.0.1:5432, or a throw-away
server) is tests/services.py's business; the same goes for Redis.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.store.db import Base, dispose_engines, session_factory, upgrade_database
from bot.store.schema import load_models
from tests.services import ServiceUnavailable, TestServices, redis_database

load_models()  # every feature's tables on Base.metadata

# The whole running assistant (Rasa, actions, API), started once per test session when a test asks.
from tests.stack_fixture import RunningAssistant, assistant, sender  # noqa: E402,F401


@pytest.fixture(scope="session", autouse=True)
def _api_key_without_env_file() -> Iterator[None]:
    """Service functions fall back to the global settings, which insist on an API key.

    ``make setup`` writes one to .env; a checkout where pytest runs without it
    (a new worktree, an IDE) gets a throwaway key instead of failing on settings.
    """
    from bot.settings import PROJECT_ROOT, get_settings

    if "CRM_API_KEYS" in os.environ or (PROJECT_ROOT / ".env").exists():
        yield
        return
    os.environ["CRM_API_KEYS"] = f"test-{uuid.uuid4().hex}"
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.pop("CRM_API_KEYS", None)
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def test_services() -> Iterator[TestServices]:
    """PostgreSQL and Redis for this session (tests/services.py); throw-away ones are stopped at the end."""
    try:
        services = TestServices()
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield services
    finally:
        services.close()


def _admin_engine(services: TestServices) -> sa.Engine:
    try:
        url = services.postgres_admin_url()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(scope="session")
def new_database(
    tmp_path_factory: pytest.TempPathFactory, test_services: TestServices
) -> Iterator[Callable[[str], str]]:
    """Factory: ``new_database(backend)`` -> URL of a new, empty database, dropped at the end."""
    admin: sa.Engine | None = None
    created: list[str] = []

    def make(backend: str) -> str:
        nonlocal admin
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'crm.db'}"
        if admin is None:
            admin = _admin_engine(test_services)
        name = f"crm_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return admin.url.set(database=name).render_as_string(hide_password=False)

    yield make

    dispose_engines()
    if admin is not None:
        with admin.connect() as connection:
            for name in created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url(test_services: TestServices) -> Iterator[str]:
    """A Redis database of this session's own (redis://host:port/N), flushed at the end.

    Tests sharing it use their own keys or flush it themselves.
    """
    with ExitStack() as stack:
        try:
            url = stack.enter_context(redis_database(test_services.redis_url()))
        except ServiceUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def _migrated_url(backend: str, new_database: Callable[[str], str]) -> str:
    url = new_database(backend)
    upgrade_database(url)
    return url


@pytest.fixture
def db_url(_migrated_url: str) -> str:
    """A migrated database with empty tables (migrating once per backend keeps the suite fast)."""
    engine = session_factory(_migrated_url).kw["bind"]
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    # Rasa's tracker table, where a test made one: on PostgreSQL it lives in the store's database.
    tables += [name for name in ("events",) if sa.inspect(engine).has_table(name)]
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                connection.exec_driver_sql(f"DELETE FROM {table}")
    return _migrated_url


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    with session_factory(db_url)() as session:
        yield session
        session.rollback()
