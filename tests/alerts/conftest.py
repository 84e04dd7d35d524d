"""Shared by the alert tests: a KB folder whose departments.yml covers every alert case, and settings for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings

DEPARTMENTS = """\
default_language: en
departments:
  - id: waste
    name: Waste collection
    email: waste@city.example
  - id: parking
    name: Parking
    email: parking@city.example
    alerts: digest
  - id: roads
    name: Roads
  - id: culture
    name: Culture
    email: culture@city.example
    timezone: Europe/Madrid
    hours: "Mon-Fri 08:00-17:00"
    holidays: [2026-12-25]
"""


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "kb"
    directory.mkdir()
    (directory / "departments.yml").write_text(DEPARTMENTS, encoding="utf-8")
    return directory


def make_alert_settings(db_url: str, kb_dir: Path, **values: object) -> Settings:
    base: dict[str, object] = dict(
        api_keys="test-key-0123456789abcdef", database_url=db_url, kb_dir=kb_dir,
        response_commitment_hours=24.0, urgent_commitment_hours=4.0,
        smtp_host="127.0.0.1", smtp_port=1, smtp_security="none", alert_from_address="alerts@city.example",
        delivery_backoff_seconds=60.0, network_timeout_seconds=5.0,
    )
    base.update(values)
    return Settings(_env_file=None, **base)


