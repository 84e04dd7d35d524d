"""Rasa's own conversation tests (tests/test_stories.yml) against the trained model."""

from __future__ import annotations

import subprocess

import pytest

from bot.settings import PROJECT_ROOT
from bot.stack import lock_store_env
from bot.training import RASA_BIN, rasa_env, train

pytestmark = pytest.mark.e2e


def test_rasa_test_stories_pass(tmp_path):
    model = train(quiet=True)
    result = subprocess.run(
        [
            str(RASA_BIN), "test", "core",
            "--stories", str(PROJECT_ROOT / "tests" / "test_stories.yml"),
            "--model", str(model),
            "--out", str(tmp_path / "results"),
            "--fail-on-prediction-errors",
        ],
        cwd=PROJECT_ROOT,
        env=rasa_env({"RASA_ACTION_ENDPOINT": "http://127.0.0.1:1/webhook",
                      "RASA_TRACKER_URL": f"sqlite:///{tmp_path / 't.db'}", **lock_store_env(None)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    failed = tmp_path / "results" / "failed_test_stories.yml"
    detail = failed.read_text() if failed.exists() else result.stdout[-4000:]
    assert result.returncode == 0, detail
