"""The trainer against stand-in Rasa processes (httpx's MockTransport) and a stand-in training."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.modelbuilds import service
from bot.modelbuilds.models import ModelBuild, ModelSwitch
from bot.modelbuilds.rasa_api import RasaApiError, RasaModels
from bot.modelbuilds.trainer import ModelLoop, start_model
from bot.store.db import session_factory
from bot.training import TrainingError
from tests.modelbuilds.fakes import TOKEN, FakeRasa

URLS = ["http://127.0.0.1:15005", "http://127.0.0.1:15006"]


class Training:
    """Writes model-<n>.tar.gz on each call, or raises when told to."""

    def __init__(self, models: Path) -> None:
        self.models, self.calls, self.error = models, 0, None

    def __call__(self, *, kb_dir: Path, models_dir: Path, quiet: bool) -> Path:
        self.calls += 1
        if self.error:
            raise TrainingError(self.error)
        model = self.models / f"model-{self.calls:016d}.tar.gz"
        model.write_bytes(b"model")
        return model

    def fingerprint(self, _kb_dir: Path) -> str:
        return f"{self.calls:016d}"


@pytest.fixture
def world(db_url: str, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "model-old.tar.gz").write_bytes(b"old")
    rasa = FakeRasa(URLS, "model-old.tar.gz")
    training = Training(models)
    client = RasaModels(URLS, TOKEN, timeout_seconds=5, load_timeout_seconds=5, transport=rasa.transport())
    loop = ModelLoop(session_factory(db_url), client, kb_dir=tmp_path, models_dir=models, train_fn=training,
                     fingerprint_fn=training.fingerprint)
    return loop, rasa, training


def _request(loop: ModelLoop, n: int = 1) -> None:
    with loop.sessions.begin() as s:
        for i in range(n):
            service.request_training(s, reason=f"proposal {i} approved", requested_by="sup", proposal_id=i)


def test_an_approval_is_trained_once_and_loaded_into_every_process(world) -> None:
    loop, rasa, training = world
    assert loop.record_running().model_version == "model-old"  # found at start, recorded
    _request(loop, 3)
    build_id = loop.train_next()
    assert training.calls == 1 and loop.train_next() is None
    new = "model-0000000000000001.tar.gz"
    assert rasa.running == {u: new for u in URLS} and [u for u, _ in rasa.loads] == URLS  # one after the other
    with loop.sessions() as s:
        build = s.get(ModelBuild, build_id)
        assert (build.status, build.model_version, build.error) == ("loaded", "model-0000000000000001", None)
        assert build.kb_hash and build.finished_at
        active = service.active_switch(s)
        assert (active.reason, active.build_id, active.processes) == ("training", build_id, {u: new for u in URLS})
        assert s.get(ModelSwitch, active.previous_id).model_version == "model-old"
    assert loop.record_running() is None  # nothing new to record


def test_a_failed_training_is_recorded_and_the_old_model_kept(world) -> None:
    loop, rasa, training = world
    loop.record_running()
    training.error = "the knowledge base has 1 error(s); not training"
    _request(loop)
    build_id = loop.train_next()
    assert rasa.loads == [] and set(rasa.running.values()) == {"model-old.tar.gz"}
    with loop.sessions() as s:
        build = s.get(ModelBuild, build_id)
        assert build.status == "failed" and "not training" in build.error and "running model is kept" in build.error
        assert service.active_switch(s).model_version == "model-old"


def test_a_load_failing_in_one_process_puts_the_others_back(world) -> None:
    loop, rasa, _training = world
    loop.record_running()
    rasa.refuse.add(URLS[1])
    _request(loop)
    build_id = loop.train_next()
    assert set(rasa.running.values()) == {"model-old.tar.gz"}  # the first process was put back
    with loop.sessions() as s:
        build = s.get(ModelBuild, build_id)
        assert build.status == "failed" and "loading it failed" in build.error and "put back" in build.error
        assert service.active_switch(s).model_version == "model-old"


def test_rollback_loads_the_previous_model_and_records_it(world) -> None:
    loop, rasa, _training = world
    with pytest.raises(service.NoPreviousModel):
        loop.rollback(by="admin")
    loop.record_running()
    with pytest.raises(service.NoPreviousModel, match="no previous model to roll back to"):
        loop.rollback(by="admin")
    _request(loop)
    loop.train_next()
    switched = loop.rollback(by="admin")
    assert switched.model_version == "model-old" and set(rasa.running.values()) == {"model-old.tar.gz"}
    with loop.sessions() as s:
        active = service.active_switch(s)
        assert (active.reason, active.by, active.previous_id) == ("rollback", "admin", None)


def test_bot_run_keeps_a_rolled_back_model_until_the_inputs_change(world) -> None:
    loop, _rasa, training = world
    loop.record_running()
    _request(loop)
    loop.train_next()
    loop.rollback(by="admin")
    model, why = start_model(loop.sessions, kb_dir=loop.kb_dir, models_dir=loop.models_dir, train_fn=training,
                             fingerprint_fn=training.fingerprint)
    assert model.name == "model-old.tar.gz" and "rollback" in why and training.calls == 1
    training.calls = 5  # the KB was edited since: train as before
    model, why = start_model(loop.sessions, kb_dir=loop.kb_dir, models_dir=loop.models_dir, train_fn=training,
                             fingerprint_fn=training.fingerprint)
    assert model.name == "model-0000000000000006.tar.gz" and "inputs changed" in why


def test_a_rollback_during_a_training_is_not_undone_by_it(world, monkeypatch) -> None:
    loop, rasa, training = world
    loop.record_running()
    _request(loop)
    loop.train_next()
    _request(loop)
    real = training.__call__

    def train_while_rolling_back(**kwargs):
        loop.rollback(by="admin")
        return real(**kwargs)

    loop._train = train_while_rolling_back
    build_id = loop.train_next()
    assert set(rasa.running.values()) == {"model-old.tar.gz"}
    with loop.sessions() as s:
        assert "a rollback at" in s.get(ModelBuild, build_id).error


def test_the_token_is_never_logged(world, caplog: pytest.LogCaptureFixture) -> None:
    loop, rasa, _training = world
    caplog.set_level(logging.DEBUG)
    # Another test's logging set-up may have quietened httpx (bot.observability.logs); here it must talk.
    caplog.set_level(logging.DEBUG, logger="httpx")
    loop.record_running()
    _request(loop)
    loop.train_next()
    rasa.down.add(URLS[0])
    with pytest.raises(RasaApiError) as failure:
        loop.rasa.running()
    assert caplog.records and any("/status" in r.getMessage() for r in caplog.records)  # httpx logged the URLs
    assert TOKEN not in caplog.text and TOKEN not in str(failure.value)


def test_a_wrong_token_gets_a_clear_message(world) -> None:
    _loop, rasa, _training = world
    client = RasaModels(URLS, "another-token-0123456789", timeout_seconds=5, load_timeout_seconds=5,
                        transport=rasa.transport())
    with pytest.raises(RasaApiError, match="refused the token.*CRM_RASA_TOKEN"):
        client.running()


def test_the_worker_waits_for_rasa_then_trains(world) -> None:
    loop, rasa, training = world
    rasa.down.update(URLS)
    _request(loop)
    stop = threading.Event()
    worker = threading.Thread(target=loop.run_forever, args=(stop,), kwargs={"poll_seconds": 0.05})
    worker.start()
    try:
        stop.wait(0.3)
        assert training.calls == 0  # nothing trained (and failed to load) while Rasa is not up
        rasa.down.clear()
        for _ in range(100):
            if training.calls and rasa.loads:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        worker.join(5)
    assert training.calls == 1 and len(rasa.loads) == 2


def test_an_unexpected_failure_does_not_leave_a_build_blocking_the_queue(world) -> None:
    loop, _rasa, _training = world
    loop.record_running()
    _request(loop)

    def broken(**_kwargs):
        raise RuntimeError("disk on fire")

    loop._train = broken
    with pytest.raises(RuntimeError):
        loop.train_next()
    with loop.sessions() as s:
        assert "disk on fire" in s.scalars(select(ModelBuild)).one().error
    _request(loop)
    loop._train = world[2]
    assert loop.train_next() is not None
