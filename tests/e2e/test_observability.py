"""The real stack: one scrape of the API shows the action server's metrics too (multiprocess
mode), Rasa's health and model, and the action logs under the API's request id."""

from __future__ import annotations

import time

import pytest

from tests.observability.support import sample

pytestmark = pytest.mark.e2e


def test_one_scrape_shows_every_process_and_the_request_id_reaches_the_action(assistant, sender):
    metrics_url = f"{assistant.config.api_url}/metrics"
    before = assistant.client.get(metrics_url).text
    response = assistant.post({"channel": "web", "sender": sender, "text": "When is my bin collected?"},
                              headers={"X-Request-ID": f"e2e-{sender}"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == f"e2e-{sender}"
    after = assistant.client.get(metrics_url).text

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    kind = response.json()["handling"]["kind"]
    assert grew("crm_messages_total", channel="web") == 1
    assert grew("crm_stage_seconds_count", stage="rasa") == 1
    assert grew("crm_stage_seconds_count", stage="actions") >= 1  # written by the action server's process
    assert sample(after, "crm_rasa_up", url=assistant.config.rasa_url) == 1
    assert sample(after, "crm_action_server_up", url=assistant.config.action_url) == 1
    assert f'model="{assistant.config.model.name}"' in after
    assert kind in ("kb_answer", "asked", "escalated")

    log = assistant.config.log_dir / "actions.log"
    deadline = time.monotonic() + 10
    while f"e2e-{sender}" not in log.read_text("utf-8", "replace") and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = [line for line in log.read_text("utf-8", "replace").splitlines() if f"e2e-{sender}" in line]
    assert any("action_handled" in line for line in lines), lines
    assert not any("bin collected" in line for line in lines)
