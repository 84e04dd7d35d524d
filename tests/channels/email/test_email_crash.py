"""The crash test: 500 e-mails, the worker SIGKILLed at random moments and restarted.

Every e-mail must be stored (none lost) and answered exactly once, counted in
the citizens' own mailboxes by In-Reply-To. The worker is the real command
(`python -m bot channel email`) against the real servers and the trained
assistant; ``tools.bench.email.crash_run`` is shared with
`python -m tools bench-email`, which records the figures in results/email.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools.bench.email import Target, crash_run
from tools.standins.email import MailServers

pytestmark = pytest.mark.e2e

EMAILS = 500
KILLS = 6


def test_sigkill_at_random_moments_loses_nothing_and_answers_each_email_once(
    mail_servers: MailServers, assistant, tmp_path: Path  # noqa: ANN001
) -> None:
    seed = int(os.environ["EMAIL_CRASH_SEED"]) if os.environ.get("EMAIL_CRASH_SEED") else None
    target = Target(assistant.database_url, assistant.config.rasa_url, assistant.config.kb_dir)
    result = crash_run(mail_servers, target, emails=EMAILS, kills=KILLS, work=tmp_path, seed=seed)
    print("\ne-mail crash test:", json.dumps(result))

    assert result["stored"] == EMAILS and result["stored_twice"] == 0 and result["missing"] == [], result
    assert result["outcomes"] == {"replied": EMAILS}, result
    assert result["replies_per_email"] == {1: EMAILS}, result
