from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.store.citizens import get_or_create_identity
from bot.store.db import make_engine, session_factory, session_scope, upgrade_database
from bot.store.models import Citizen


def test_session_factory_is_cached_per_url(db_url: str) -> None:
    assert session_factory(db_url) is session_factory(db_url)


def test_sqlite_engine_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        engine.dispose()


def test_plain_postgresql_url_uses_psycopg3() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_upgrade_creates_sqlite_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "crm.db"
    upgrade_database(f"sqlite:///{path}")
    assert path.exists()
    upgrade_database(f"sqlite:///{path}")  # idempotent


def test_session_scope_commits_on_success(db_url: str) -> None:
    with session_scope(db_url) as session:
        get_or_create_identity(session, "sms", "+15550001")
    with session_scope(db_url) as session:
        assert session.scalar(select(Citizen.id)) is not None


def test_session_scope_rolls_back_on_error(db_url: str) -> None:
    with pytest.raises(RuntimeError), session_scope(db_url) as session:
        get_or_create_identity(session, "sms", "+15550002")
        session.flush()
        raise RuntimeError("boom")
    with session_scope(db_url) as session:
        assert session.scalar(select(Citizen.id)) is None


def test_foreign_keys_are_enforced(session) -> None:
    from sqlalchemy.exc import IntegrityError

    from bot.store.models import ChannelIdentity

    session.add(ChannelIdentity(citizen_id=999_999, channel="sms", address="+1"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_datetimes_are_aware_utc_on_every_backend(db_url: str) -> None:
    paris = timezone(timedelta(hours=2))
    consent = datetime(2026, 5, 1, 14, 30, 15, 123456, tzinfo=paris)
    with session_scope(db_url) as session:
        identity = get_or_create_identity(session, "web", "tz-test")
        identity.citizen.erased_at = consent
        citizen_id = identity.citizen_id
    with session_scope(db_url) as session:
        citizen = session.get(Citizen, citizen_id)
        assert citizen.erased_at == consent
        assert citizen.erased_at.tzinfo is UTC
        assert citizen.erased_at.hour == 12
        assert citizen.created_at.tzinfo is UTC
        assert abs(datetime.now(UTC) - citizen.created_at) < timedelta(minutes=1)


def test_naive_datetimes_are_refused(session) -> None:
    from sqlalchemy.exc import StatementError

    identity = get_or_create_identity(session, "web", "naive")
    identity.citizen.erased_at = datetime(2026, 1, 1, 12, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()


def test_timestamps_compare_in_sql(session) -> None:
    """Ordering and filtering happen in SQL, so stored values must compare as times."""
    identity = get_or_create_identity(session, "web", "order")
    identity.citizen.erased_at = datetime(2026, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    session.flush()
    after = datetime(2026, 1, 2, 4, 29, tzinfo=UTC)
    before = datetime(2026, 1, 2, 4, 31, tzinfo=UTC)
    found = session.scalars(
        select(Citizen.id).where(Citizen.erased_at > after, Citizen.erased_at < before)
    ).all()
    assert found == [identity.citizen_id]


def test_no_database_work_at_import() -> None:
    import subprocess
    import sys

    code = (
        "import bot.store.db, bot.store.models, bot.store.citizens, bot.store.messages, "
        "bot.tickets.service, bot.store.commands\n"
        "import bot.store.db as db\n"
        "assert db._factories == {}, db._factories\n"
    )
    # A broken default URL proves nothing connects or reads settings at import time.
    env = {"CRM_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "PATH": ""}
    root = Path(__file__).parents[2]
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr


def _migration_heads() -> list[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bot.store.db import _MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    return list(ScriptDirectory.from_config(config).get_heads())


def test_cli_db_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    path = tmp_path / "cli" / "crm.db"
    assert main(["db", "upgrade", "--url", f"sqlite:///{path}"]) == 0
    assert path.exists()
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        applied = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    assert applied == set(_migration_heads())
    engine.dispose()
    assert "newest migration" in capsys.readouterr().out
