"""Backups of the interaction store while the assistant keeps running (``python -m bot db backup``).

SQLite: copying the file with ``cp`` while the API writes can catch a page half-written and
misses every transaction still in the ``-wal`` file; SQLite's online backup API copies one
consistent snapshot instead. PostgreSQL: ``pg_dump`` already takes a consistent snapshot
without stopping writers, so we only build its command line (with the password in the
environment, never in the process list) and run it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

# libpq gives up connecting after this many seconds instead of hanging on a dead host.
PG_CONNECT_TIMEOUT_SECONDS = 10


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class PgDump:
    """A pg_dump invocation: ``args`` are safe to show, ``env`` holds the password."""

    args: list[str]
    env: dict[str, str]

    def shown(self) -> str:
        prefix = "PGPASSWORD=... " if "PGPASSWORD" in self.env else ""
        return prefix + shlex.join(self.args)


def resolve_target(target: Path, suffix: str) -> Path:
    """A directory gets a time-stamped file name inside it (for cron); an existing file is refused,
    so a typo never overwrites the last good backup."""
    if target.is_dir():
        target = target / f"crm-{datetime.now(UTC):%Y%m%d-%H%M%S}{suffix}"
    if target.exists():
        raise BackupError(f"{target} exists; give a new file name or a directory")
    if not target.parent.is_dir():
        raise BackupError(f"the directory {target.parent} does not exist")
    return target


def backup_sqlite(database: Path, target: Path) -> Path:
    """Write a consistent copy of the SQLite ``database`` to ``target`` and check it opens whole.

    The copy is made in one step (pages=-1): one read transaction, so writers in WAL mode carry on,
    and a busy database cannot make a step-by-step copy restart for ever. It is written beside the
    target and renamed into place only when complete and checked.
    """
    if not database.is_file():
        raise BackupError(f"the SQLite database {database} does not exist")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    # mode=rw: never create an empty database where the real one was expected.
    source = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
            # One self-contained file: the copy needs no -wal beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
            result = copy.execute("PRAGMA integrity_check").fetchone()
            if result is None or result[0] != "ok":
                raise BackupError(f"the copy failed SQLite's integrity check: {result}")
        finally:
            copy.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)
    return target


def pg_dump_command(url: str | URL, target: Path) -> PgDump:
    """pg_dump in its custom format (what pg_restore reads: selective, parallel restores)."""
    parsed = make_url(url)
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    query = dict(parsed.query)
    query.setdefault("connect_timeout", str(PG_CONNECT_TIMEOUT_SECONDS))
    # URL.set() cannot clear the password (None there means "unchanged"), so build a new URL.
    libpq = URL.create("postgresql", username=parsed.username, host=parsed.host, port=parsed.port,
                       database=parsed.database, query=query)
    dbname = libpq.render_as_string(hide_password=False)
    return PgDump(["pg_dump", "--format=custom", f"--file={target}", f"--dbname={dbname}"], env)


def backup_postgresql(url: str | URL, target: Path) -> Path:
    partial = target.with_name(target.name + ".partial")
    dump = pg_dump_command(url, partial)
    if shutil.which("pg_dump") is None:
        raise BackupError(
            "pg_dump is not installed here (Debian: postgresql-client, the server's major version); "
            f"run it where it is: {pg_dump_command(url, target).shown()}"
        )
    result = subprocess.run(dump.args, env={**os.environ, **dump.env}, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed with exit code {result.returncode}")
    os.replace(partial, target)
    return target


def backend_of(url: str | URL) -> str:
    return make_url(url).get_backend_name()
