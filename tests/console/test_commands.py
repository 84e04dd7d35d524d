"""``python -m bot console create-admin`` / ``reset-password``, run as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from bot.console.passwords import verify_password
from bot.settings import PROJECT_ROOT
from bot.staff.models import AuditLog, StaffUser
from bot.store.db import session_scope


def _run(db_url: str, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    environment.update({"CRM_DATABASE_URL": db_url, "CRM_API_KEYS": "console-tests-api-key-0123456789",
                        "PYTHONPATH": str(PROJECT_ROOT)})
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", "console", *args], input=stdin, capture_output=True, text=True,
        cwd=PROJECT_ROOT, env=environment, timeout=120,
    )


def test_create_admin_reads_the_password_from_stdin_and_refuses_weak_ones(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'crm.db'}"
    weak = _run(db_url, "create-admin", "--username", "root", "--password-stdin", stdin="password1234\n")
    assert weak.returncode == 1 and "too easy to guess" in weak.stderr

    made = _run(db_url, "create-admin", "--username", "Root", "--display-name", "City Admin", "--password-stdin",
                stdin="a long admin passphrase\n")
    assert made.returncode == 0, made.stderr
    assert "a long admin passphrase" not in made.stdout + made.stderr
    with session_scope(db_url) as session:
        user = session.scalars(select(StaffUser)).one()
        assert (user.username, user.role, user.display_name) == ("root", "admin", "City Admin")
        assert verify_password(user.password_hash, "a long admin passphrase")
        assert session.scalars(select(AuditLog.action)).all() == ["staff.create"]

    again = _run(db_url, "create-admin", "--username", "root", "--password-stdin", stdin="a long admin passphrase\n")
    assert again.returncode == 1 and "is taken" in again.stderr

    reset = _run(db_url, "reset-password", "--username", "root", env={"CRM_CONSOLE_PASSWORD": "another long phrase"})
    assert reset.returncode == 0, reset.stderr
    with session_scope(db_url) as session:
        assert verify_password(session.scalars(select(StaffUser)).one().password_hash, "another long phrase")


def test_without_a_terminal_and_without_a_password_it_says_how(tmp_path: Path) -> None:
    result = _run(f"sqlite:///{tmp_path / 'crm.db'}", "create-admin", "--username", "root")
    assert result.returncode == 2 and "--password-stdin" in result.stderr
