"""``python -m bot privacy export|erase``: a documented request, by address; errors say little."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import sqlalchemy as sa

from bot.cli import main
from bot.settings import get_settings
from bot.staff.models import AuditLog
from bot.store.db import session_factory
from tests.api.api_client import api_client
from tests.privacy.helpers import EMAIL, NEEDLES, TEXTS, build_citizen, find_in_database


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_API_KEYS", "test-key-0123456789abcdef")
    get_settings.cache_clear()
    yield db_url
    get_settings.cache_clear()


def test_export_then_erase_from_the_command_line(cli_env: str, tmp_path, capsys) -> None:
    db_url = cli_env
    with api_client(db_url) as client:
        build_citizen(client, db_url)
    out = tmp_path / "export.zip"
    assert main(["privacy", "export", f"email:{EMAIL.upper()}", "--reason", "letter ref 7", "--actor", "dpo",
                 "--out", str(out)]) == 0
    bundle = json.loads(zipfile.ZipFile(io.BytesIO(out.read_bytes())).read("data.json"))
    assert TEXTS[0] in [m["text"] for m in bundle["messages"]]
    assert main(["privacy", "erase", f"email:{EMAIL}", "--reason", "letter ref 7", "--actor", "dpo"]) == 2
    assert main(["privacy", "erase", f"email:{EMAIL}", "--reason", "letter ref 7", "--actor", "dpo", "--yes"]) == 0
    assert find_in_database(db_url, NEEDLES) == []
    # The address is gone, so asking again finds nobody, and says no more than that.
    capsys.readouterr()
    assert main(["privacy", "erase", f"email:{EMAIL}", "--reason", "again", "--actor", "dpo", "--yes"]) == 1
    assert capsys.readouterr().err.strip() == "no such citizen"
    with session_factory(db_url)() as session:
        actions = list(session.scalars(sa.select(AuditLog.action).order_by(AuditLog.id)))
    assert actions == ["privacy.export", "privacy.erase"]
    assert main(["privacy", "job"]) == 0
