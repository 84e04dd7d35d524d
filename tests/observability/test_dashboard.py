"""deploy/grafana/dashboard.json parses, and every metric it queries is one /metrics exposes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from bot.api.observability import HealthCollector, Probe, TicketsCollector
from bot.observability.metrics import scrape
from bot.settings import PROJECT_ROOT
from bot.store.db import session_factory, upgrade_database
from tests.observability.support import sample_names

DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "dashboard.json"


def _queries(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _queries(item)


def test_the_dashboard_queries_only_metrics_that_exist(tmp_path) -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    queries = list(_queries(dashboard))
    queried = {name for q in queries for name in re.findall(r"\bcrm_[a-z0-9_]+", q)}
    assert len(queried) >= 8

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade_database(url)
    collectors = [TicketsCollector(session_factory(url), lambda: ["waste"]),
                  HealthCollector([Probe("http://rasa:5005", True, "model-x.tar.gz")], [Probe("http://actions:5055", True)], None)]
    exposed = sample_names(scrape(collectors).decode())
    assert queried <= exposed, f"queried but not exposed: {sorted(queried - exposed)}"
    # What the dashboard was asked to show.
    for wanted in ("crm_messages_total", "crm_stage_seconds_bucket", "crm_tickets_open", "crm_tickets_overdue",
                   "crm_deliveries_total", "crm_rasa_up", "crm_action_server_up", "crm_model_info"):
        assert wanted in queried
