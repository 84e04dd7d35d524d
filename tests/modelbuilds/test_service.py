"""Training requests and the switch history on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from bot.modelbuilds import service
from bot.modelbuilds.models import (
    BUILD_STATUSES,
    BUILD_TRANSITIONS,
    MERGED,
    REQUESTED,
    TRAINING,
    ModelBuild,
    TransitionError,
    check_transition,
)
from bot.store.db import session_factory
from bot.store.types import utcnow


def test_requests_piling_up_collapse_into_one_training(db_url: str) -> None:
    sessions = session_factory(db_url)
    t0 = utcnow()
    with sessions.begin() as s:
        ids = [service.request_training(s, reason=f"proposal {i} approved", requested_by="sup", proposal_id=i,
                                        now=t0 + timedelta(seconds=i)).id for i in range(3)]
    with sessions.begin() as s:
        build = service.claim_next(s)
        assert build is not None and build.id == ids[0] and build.status == TRAINING
    with sessions.begin() as s:
        # A request approved while that one trains waits for the next training ...
        late = service.request_training(s, reason="proposal 9 approved", requested_by="sup").id
        assert service.claim_next(s) is None  # ... one training at a time
        merged = [s.get(ModelBuild, i) for i in ids[1:]]
        assert [(b.status, b.merged_into_id) for b in merged] == [(MERGED, ids[0])] * 2
        service.finish(s, s.get(ModelBuild, ids[0]))
    with sessions.begin() as s:
        assert service.claim_next(s).id == late


def test_failed_training_keeps_its_error_and_final_states_stay_final(db_url: str) -> None:
    sessions = session_factory(db_url)
    with sessions.begin() as s:
        service.request_training(s, reason="r", requested_by="sup")
        build = service.claim_next(s)
        service.finish(s, build, error="rasa train failed with exit code 1")
        assert build.status == "failed" and "exit code 1" in build.error
        with pytest.raises(TransitionError):
            service.finish(s, build)


def test_interrupted_training_is_requested_again(db_url: str) -> None:
    sessions = session_factory(db_url)
    with sessions.begin() as s:
        service.request_training(s, reason="r", requested_by="sup")
        service.claim_next(s)
    with sessions.begin() as s:
        assert len(service.recover_interrupted(s)) == 1
        assert service.claim_next(s) is not None


def test_transitions_cover_every_status() -> None:
    assert set(BUILD_TRANSITIONS) == set(BUILD_STATUSES)
    check_transition(REQUESTED, TRAINING)
    with pytest.raises(TransitionError):
        check_transition(REQUESTED, "loaded")


def test_database_refuses_an_unknown_status(db_url: str) -> None:
    with pytest.raises(IntegrityError), session_factory(db_url).begin() as s:
        s.add(ModelBuild(reason="r", requested_by="x", status="bogus"))
        s.flush()


def _switch(s, tmp_path: Path, name: str, previous=None, reason="training", exists=True):
    model = tmp_path / f"{name}.tar.gz"
    if exists:
        model.write_bytes(b"m")
    return service.record_switch(s, reason=reason, by="t", model=model, processes={"http://r": model.name},
                                 kb_commit=None, kb_hash="h", inputs_fingerprint=name, previous=previous)


def test_rollback_steps_back_along_the_history(db_url: str, tmp_path: Path) -> None:
    with session_factory(db_url).begin() as s:
        a = _switch(s, tmp_path, "model-a")
        b = _switch(s, tmp_path, "model-b", previous=a)
        c = _switch(s, tmp_path, "model-c", previous=b)
        current, target = service.rollback_target(s)
        assert (current.id, target.id) == (c.id, b.id)
        # Rolling back records B again with A as its previous: the next rollback goes to A, not back to C.
        r1 = _switch(s, tmp_path, "model-b", previous=a, reason="rollback")
        assert service.rollback_target(s)[1].id == a.id
        _switch(s, tmp_path, "model-a", previous=None, reason="rollback")
        with pytest.raises(service.NoPreviousModel, match="no previous model"):
            service.rollback_target(s)
        assert r1.previous_id == a.id


def test_rollback_skips_models_whose_file_is_gone(db_url: str, tmp_path: Path) -> None:
    with session_factory(db_url).begin() as s:
        with pytest.raises(service.NoPreviousModel, match="no model switch is recorded"):
            service.rollback_target(s)
        a = _switch(s, tmp_path, "model-a", exists=False)
        _switch(s, tmp_path, "model-b", previous=a)
        with pytest.raises(service.NoPreviousModel, match="model-a .file .* is gone"):
            service.rollback_target(s)
