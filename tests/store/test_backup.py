"""``python -m bot db backup``: a backup taken while the assistant writes is whole and consistent."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli import main
from bot.store.backup import pg_dump_command
from bot.store.db import upgrade_database


def _alembic_version(connection: sqlite3.Connection) -> str:
    return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_sqlite_backup_while_writes_go_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "crm.db"
    upgrade_database(f"sqlite:///{database}")
    setup = sqlite3.connect(database)
    setup.execute("CREATE TABLE writes (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    setup.commit()
    setup.close()

    committed = 0
    started = threading.Event()
    stop = threading.Event()

    def writer() -> None:
        nonlocal committed
        connection = sqlite3.connect(database, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        while not stop.is_set():
            connection.execute("INSERT INTO writes (payload) VALUES (?)", ("x" * 500,))
            committed += 1
            if committed == 200:
                started.set()
        connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert started.wait(30)
        before = committed
        assert main(["db", "backup", str(tmp_path / "backup.db"), "--url", f"sqlite:///{database}"]) == 0
        after = committed
    finally:
        stop.set()
        thread.join()
    assert "written to" in capsys.readouterr().out

    copy = sqlite3.connect(tmp_path / "backup.db")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file, no -wal needed
        rows, highest = copy.execute("SELECT count(*), max(id) FROM writes").fetchone()
        # Every row committed before the backup began is there, and the rows form one snapshot: no gaps.
        assert before <= rows <= after
        assert highest == rows
        source = sqlite3.connect(database)
        assert _alembic_version(copy) == _alembic_version(source)
        source.close()
    finally:
        copy.close()
    assert not (tmp_path / "backup.db.partial").exists()


def test_sqlite_backup_into_a_directory_and_never_over_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "crm.db"
    upgrade_database(f"sqlite:///{database}")
    backups = tmp_path / "backups"
    backups.mkdir()
    assert main(["db", "backup", str(backups), "--url", f"sqlite:///{database}"]) == 0
    (made,) = backups.iterdir()
    assert made.name.startswith("crm-") and made.suffix == ".db"
    capsys.readouterr()
    assert main(["db", "backup", str(made), "--url", f"sqlite:///{database}"]) == 1
    assert "exists" in capsys.readouterr().err


def test_sqlite_backup_of_a_missing_database_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "backup", str(tmp_path / "b.db"), "--url", f"sqlite:///{tmp_path / 'none.db'}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    assert not (tmp_path / "b.db").exists()


def test_pg_dump_command_keeps_the_password_out_of_the_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    dump = pg_dump_command("postgresql+psycopg://crm:s3cret@db.internal:5433/crm?sslmode=require", Path("/b/x.dump"))
    assert dump.env == {"PGPASSWORD": "s3cret"}
    assert not any("s3cret" in arg for arg in dump.args)
    assert "--dbname=postgresql://crm@db.internal:5433/crm?connect_timeout=10&sslmode=require" in dump.args
    assert main(["db", "backup", "/b/x.dump", "--print", "--url", "postgresql://crm:s3cret@db/crm"]) == 0
    shown = capsys.readouterr().out
    assert "s3cret" not in shown and shown.startswith("PGPASSWORD=... pg_dump --format=custom")


def _server_major(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        version = int(connection.exec_driver_sql("SHOW server_version_num").scalar())
    return version // 10000


def test_postgresql_backup_and_restore_drill(new_database: Callable[[str], str], tmp_path: Path) -> None:
    """The drill of docs/operations.md: pg_dump while running, pg_restore into an empty database."""
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not installed")
    url = new_database("postgresql")
    upgrade_database(url)
    client = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True).stdout
    if int(client.split()[2].split(".")[0]) < _server_major(url):
        pytest.skip("pg_dump is older than the server")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE events (id serial PRIMARY KEY, data text)")  # as Rasa's tracker
        connection.exec_driver_sql("INSERT INTO events (data) VALUES ('turn 1'), ('turn 2')")
    target = tmp_path / "crm.dump"
    assert main(["db", "backup", str(target), "--url", url]) == 0

    restored = new_database("postgresql")
    libpq = sa.engine.make_url(restored).set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(["pg_restore", "--no-owner", f"--dbname={libpq}", str(target)], check=True)
    engine = sa.create_engine(restored, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM events").scalar() == 2
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
