"""The learning loop end to end: an approval is trained and swapped in while messages keep coming.

Starts its own stack (Rasa with the token-protected model API and the trainer) on a copy of
the KB, and trains once: a few minutes. The time it measures is printed, not asserted;
``python -m tools bench-model-swap`` is the measurement.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.bench.model_swap import report, run_swap

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(2400)
def test_messages_during_the_swap_are_answered_by_the_old_or_the_new_model(tmp_path: Path) -> None:
    result = run_swap(tmp_path, senders=2, pause=0.2)
    print(report(result))
    assert result.approval_to_new_answer_seconds is not None
    assert result.build_status == "loaded", result.build_error
    assert result.sent == result.ok_responses == result.stored == result.answered > 0, report(result)
    assert result.unavailable == 0, report(result)
    assert set(result.processes.values()) == {f"{result.new_model}.tar.gz"}
    assert result.token_in_logs == []
