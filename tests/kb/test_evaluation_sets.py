"""The evaluation sets stay apart from what the model learns from.

A KB phrasing written after the sets can land on a held-out message almost word for
word; the held-out figures would then measure recall of training text, not
understanding. `evaluation/validate_sets.py` catches that (and malformed rows); run
here, it checks every KB edit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_evaluation_sets_are_valid_and_share_no_text_with_training_data() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "evaluation" / "validate_sets.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
