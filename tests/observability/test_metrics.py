"""GET /metrics: the families after real messages through the API, the tickets read at scrape
time on SQLite and PostgreSQL, the health probes, who may read it, and several processes
adding up in one scrape."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from bot.api.observability import HealthCollector, Probe, TicketsCollector, probe_health
from bot.observability.metrics import MULTIPROC_ENV, scrape
from bot.settings import PROJECT_ROOT, Settings
from bot.stack import Stack, StackConfig
from bot.store.citizens import get_or_create_identity
from bot.store.db import session_factory, upgrade_database
from bot.store.types import utcnow
from tests.console.insights_seed import ticket
from tests.observability.support import AUTH, metrics_client, post_message, sample, settings_for

TOKEN = "metrics-token-0123456789"


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('metrics') / 'crm.db'}"
    upgrade_database(url)
    return url


def test_metrics_count_messages_by_outcome_time_the_stages_and_read_tickets(db_url: str) -> None:
    with metrics_client(db_url) as (client, rasa):
        before = client.get("/metrics").text
        answered = post_message(client, "How do I get rid of an old sofa?")
        escalated = post_message(client, "Something else entirely", sender="s2")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert answered.json()["handling"]["kind"] == "kb_answer"
    assert grew("crm_messages_total", channel="web", outcome="answered", handling="kb_answer") == 1
    assert escalated.json()["handling"]["kind"] == "escalated"
    assert grew("crm_messages_total", channel="web", outcome="escalated", handling="escalated") == 1
    # One observation per message and stage, whatever the number of transactions.
    assert grew("crm_stage_seconds_count", stage="store") == 2
    assert grew("crm_stage_seconds_count", stage="rasa") == 2
    assert grew("crm_stage_seconds_sum", stage="store") > 0
    assert grew("crm_stage_seconds_bucket", stage="rasa", le="+Inf") == 2

    department = escalated.json()["handling"]["ticket"]["department"]
    assert sample(after, "crm_tickets_open", department=department) == 1
    assert sample(after, "crm_tickets_overdue", department=department) == 0
    assert 'crm_tickets_open{department="waste"} 0.0' in after  # every KB department, even at 0
    # Nothing listens on the configured Rasa and action server ports.
    assert sample(after, "crm_rasa_up") == 0 and "crm_rasa_up{" in after
    assert sample(after, "crm_action_server_up") == 0 and "crm_action_server_up{" in after


def test_tickets_collector_counts_open_and_overdue_per_department_in_one_query(db_url: str) -> None:
    now = utcnow()
    with session_factory(db_url).begin() as session:
        _seed_tickets(session, now)
    collector = TicketsCollector(session_factory(db_url), lambda: ["waste", "parking", "libraries"])
    assert collector.counts() == {"waste": (3, 2), "parking": (1, 0), "roads": (1, 1), "libraries": (0, 0)}
    families = {family.name: {s.labels["department"]: s.value for s in family.samples} for family in collector.collect()}
    assert families["crm_tickets_open"]["waste"] == 3
    assert families["crm_tickets_overdue"]["roads"] == 1


def _seed_tickets(session: Session, now) -> None:
    who = get_or_create_identity(session, "web", "ticket-seeder")
    past, future = now - timedelta(hours=30), now + timedelta(hours=5)
    rows = [  # (department, status, due)
        ("waste", "new", past), ("waste", "open", past), ("waste", "pending_citizen", future),
        ("waste", "resolved", past), ("waste", "closed", past),  # neither open nor overdue
        ("parking", "open", future), ("roads", "pending_citizen", past),
    ]
    for n, (department, status, due) in enumerate(rows):
        ticket(session, who, f"T{n}", department=department, reason="complaint", created=now - timedelta(days=2),
               status=status, due=due)


def test_health_probes_each_rasa_process_and_report_the_loaded_model(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, rasa_url="http://rasa-a:5005,http://rasa-b:5005,http://rasa-c:5005",
                            rasa_model="/srv/models/model-configured.tar.gz")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "rasa-a":  # HTTP API on: /status names the model it loaded
            return httpx.Response(200, json={"model_file": "models/model-loaded.tar.gz"})
        if request.url.host == "rasa-b":  # HTTP API off: 404, but it answers
            return httpx.Response(404)
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        raise httpx.ConnectError("refused", request=request)

    health = asyncio.run(probe_health(settings, transport=httpx.MockTransport(answer)))
    text = scrape([health]).decode()
    assert 'crm_rasa_up{url="http://rasa-a:5005"} 1.0' in text
    assert 'crm_rasa_up{url="http://rasa-b:5005"} 1.0' in text
    assert 'crm_rasa_up{url="http://rasa-c:5005"} 0.0' in text
    assert 'crm_model_info{model="model-loaded.tar.gz",url="http://rasa-a:5005"} 1.0' in text
    assert 'crm_model_info{model="model-configured.tar.gz",url="http://rasa-b:5005"} 1.0' in text
    assert 'url="http://rasa-c:5005",model' not in text and 'model="model-configured.tar.gz",url="http://rasa-c' not in text
    assert sample(text, "crm_action_server_up") == 1


@pytest.mark.parametrize("peer, headers, status", [
    (("127.0.0.1", 4000), {}, 200),
    (("10.20.30.40", 4000), {}, 200),  # a Prometheus on the private network
    (("::1", 4000), {}, 200),
    (("203.0.113.9", 4000), {}, 403),  # the internet (a documentation range, "private" to ipaddress)
    (("8.8.8.8", 4000), {}, 403),
    (("::ffff:192.168.1.5", 4000), {}, 200),
    (("127.0.0.1", 4000), {"X-Forwarded-For": "203.0.113.9"}, 403),  # relayed by a local proxy
    (("127.0.0.1", 4000), {"Forwarded": "for=203.0.113.9"}, 403),
])
def test_without_a_token_only_local_unrelayed_peers_may_read_metrics(sqlite_url, peer, headers, status) -> None:
    with metrics_client(sqlite_url, client=peer) as (client, _rasa):
        response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"] == "forbidden" and "crm_" not in response.text


@pytest.mark.parametrize("peer, headers, status", [
    (("203.0.113.9", 4000), {"Authorization": f"Bearer {TOKEN}"}, 200),
    (("127.0.0.1", 4000), {}, 401),  # with a token, even loopback must send it
    (("127.0.0.1", 4000), {"Authorization": "Bearer metrics-token-wrong-123456"}, 401),
    (("127.0.0.1", 4000), AUTH, 401),  # an API key is not the metrics token
])
def test_with_a_token_whoever_sends_it_may_read_metrics(sqlite_url, peer, headers, status) -> None:
    with metrics_client(sqlite_url, client=peer, metrics_token=TOKEN) as (client, _rasa):
        response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["changeme", "short"])
def test_settings_refuse_a_placeholder_or_short_metrics_token(token: str) -> None:
    with pytest.raises(ValidationError, match="CRM_METRICS_TOKEN"):
        Settings(_env_file=None, api_keys="test-key-0123456789abcdef", metrics_token=token)


_WRITER = """
from bot.observability.metrics import count_delivery, count_message, timed
count_message("telegram", "answered", "kb_answer")
count_delivery("telegram", "retrying", retry=True)
with timed("delivery"):
    pass
"""


def test_one_scrape_adds_up_the_metrics_of_several_processes(tmp_path: Path) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", _WRITER], env=env, check=True, timeout=60, cwd=PROJECT_ROOT)
    assert len(list(tmp_path.glob("*.db"))) >= 2  # each process wrote files of its own
    text = scrape([HealthCollector([Probe("http://rasa:5005", True)], [], None)], multiproc_dir=tmp_path).decode()
    assert sample(text, "crm_messages_total", channel="telegram", outcome="answered") == 2
    assert sample(text, "crm_deliveries_total", channel="telegram", result="retrying") == 2
    assert sample(text, "crm_delivery_retries_total", channel="telegram") == 2
    assert sample(text, "crm_stage_seconds_count", stage="delivery") == 2
    assert sample(text, "crm_rasa_up") == 1  # scrape-time collectors sit beside the processes' files


def test_the_stack_gives_every_process_one_fresh_metrics_directory(tmp_path: Path) -> None:
    config = StackConfig(model=tmp_path / "model-x.tar.gz", database_url="sqlite://", api_key="k" * 20,
                         log_dir=tmp_path / "log")
    env = Stack(config)._app_env()
    assert env[MULTIPROC_ENV] == str(tmp_path / "log" / "metrics")
    assert env["CRM_RASA_MODEL"] == str(tmp_path / "model-x.tar.gz")


def test_log_settings_take_a_known_format_and_level() -> None:
    settings = Settings(_env_file=None, api_keys="test-key-0123456789abcdef", log_format="json", log_level="debug")
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    for bad in ({"log_format": "xml"}, {"log_level": "loud"}):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, api_keys="test-key-0123456789abcdef", **bad)


def test_label_values_outside_the_vocabularies_fold_into_other() -> None:
    from bot.observability.metrics import label

    assert [label(v) for v in ("web", "sms-gateway", "choice_already_answered", None)] == [
        "web", "sms-gateway", "choice_already_answered", "none"]
    assert {label(v) for v in ("Web", "a b", "x" * 60, "ümlaut", "")} == {"other"}
