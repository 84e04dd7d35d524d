"""The long-running commands start, do their work and stop cleanly on SIGTERM.

Each runs as its own process in production (compose, systemd, `bot run`); a mistake that only
shows at start-up (a missing import, a setting read wrongly) would otherwise surface first on a
city's server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT
from bot.store.db import upgrade_database


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade_database(url)
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CRM_DATABASE_URL": url,
            "CRM_API_KEYS": "k" * 32, "CRM_RASA_URL": "http://127.0.0.1:9", "CRM_RASA_TOKEN": "t" * 32,
            "CRM_SCHEDULER_INTERVAL_SECONDS": "1", "CRM_TRAINER_POLL_SECONDS": "0.5"}


def test_the_scheduler_runs_every_job_once(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "scheduler", "--once"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for job in ("alerts", "digests", "staff_mail", "retention", "data_requests", "feedback_expiry"):
        assert f"{job}:" in done.stdout


@pytest.mark.parametrize("command", [["scheduler"], ["trainer"], ["deliveries"]])
def test_a_worker_stops_cleanly_on_sigterm(env: dict[str, str], command: list[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bot", *command], env=env, cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(4)
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
