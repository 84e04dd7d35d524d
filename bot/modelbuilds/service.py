"""The training requests and the switch history, as unit-of-work functions.

Every function takes a session and never commits: the approval's route commits the
request together with the proposal, the trainer commits each step of a build on its own
so the history shows a training under way while it runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.modelbuilds.models import (
    FAILED,
    LOADED,
    MERGED,
    REQUESTED,
    TRAINING,
    ModelBuild,
    ModelSwitch,
    check_transition,
)
from bot.store.types import utcnow

MAX_ERROR_CHARS = 4000


class NoPreviousModel(LookupError):
    """A rollback was asked for but the history has no earlier model whose file still exists."""


def request_training(session: Session, *, reason: str, requested_by: str, proposal_id: int | None = None,
                     now: datetime | None = None) -> ModelBuild:
    build = ModelBuild(
        requested_at=now or utcnow(), reason=reason[:200], requested_by=requested_by[:100],
        proposal_id=proposal_id, status=REQUESTED,
    )
    session.add(build)
    session.flush()
    return build


def _move(build: ModelBuild, status: str) -> None:
    check_transition(build.status, status)
    build.status = status


def claim_next(session: Session, *, now: datetime | None = None) -> ModelBuild | None:
    """The oldest open request, now training, with every other open request merged into it.

    Nothing is claimed while another build is training: one training at a time, also with
    a second trainer by mistake. The claim is a conditional UPDATE, so of two trainers
    asking at once only one gets the request (on PostgreSQL the second waits for the
    first's commit and then finds the row no longer open).
    """
    if session.scalar(select(ModelBuild.id).where(ModelBuild.status == TRAINING).limit(1)) is not None:
        return None
    open_ids = list(session.scalars(
        select(ModelBuild.id).where(ModelBuild.status == REQUESTED).order_by(ModelBuild.requested_at, ModelBuild.id)
    ))
    if not open_ids:
        return None
    now = now or utcnow()
    first, rest = open_ids[0], open_ids[1:]
    check_transition(REQUESTED, TRAINING)
    claimed = session.execute(
        update(ModelBuild).where(ModelBuild.id == first, ModelBuild.status == REQUESTED)
        .values(status=TRAINING, started_at=now).execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None
    if rest:
        check_transition(REQUESTED, MERGED)
        session.execute(
            update(ModelBuild).where(ModelBuild.id.in_(rest), ModelBuild.status == REQUESTED)
            .values(status=MERGED, merged_into_id=first, finished_at=now)
            .execution_options(synchronize_session=False)
        )
    build = session.get(ModelBuild, first)
    assert build is not None
    session.refresh(build)
    return build


def record_trained(session: Session, build: ModelBuild, *, model: Path, kb_commit: str | None,
                   kb_hash: str | None) -> None:
    build.model_path = str(model)
    build.model_version = model_version(model)
    build.kb_commit = kb_commit
    build.kb_hash = kb_hash
    session.flush()


def finish(session: Session, build: ModelBuild, *, error: str | None = None, now: datetime | None = None) -> None:
    """Loaded, or failed with ``error`` (the running model is then the one from before)."""
    _move(build, FAILED if error is not None else LOADED)
    build.error = None if error is None else error[-MAX_ERROR_CHARS:]
    build.finished_at = now or utcnow()
    session.flush()


def recover_interrupted(session: Session) -> list[int]:
    """Trainings left ``training`` by a trainer that was stopped go back to the queue."""
    stuck = list(session.scalars(select(ModelBuild).where(ModelBuild.status == TRAINING)))
    for build in stuck:
        _move(build, REQUESTED)
        build.started_at = None
    session.flush()
    return [b.id for b in stuck]


def model_version(model: Path | str) -> str:
    """The name Rasa's ``GET /status`` reports, without ``.tar.gz``."""
    return Path(model).name.removesuffix(".tar.gz")


def active_switch(session: Session) -> ModelSwitch | None:
    """The model the assistant runs, as recorded: the latest switch."""
    return session.scalar(select(ModelSwitch).order_by(ModelSwitch.switched_at.desc(), ModelSwitch.id.desc()).limit(1))


def record_switch(
    session: Session,
    *,
    reason: str,
    by: str,
    model: Path,
    processes: dict[str, str],
    kb_commit: str | None,
    kb_hash: str | None,
    inputs_fingerprint: str | None,
    build_id: int | None = None,
    previous: ModelSwitch | None = None,
    now: datetime | None = None,
) -> ModelSwitch:
    """``previous``: where a later rollback returns to (the switch active before, for a training)."""
    switch = ModelSwitch(
        switched_at=now or utcnow(), reason=reason, by=by[:100], build_id=build_id, model_path=str(model),
        model_version=model_version(model), kb_commit=kb_commit, kb_hash=kb_hash,
        inputs_fingerprint=inputs_fingerprint, previous_id=previous.id if previous is not None else None,
        processes=dict(processes),
    )
    session.add(switch)
    session.flush()
    return switch


def rollback_target(session: Session) -> tuple[ModelSwitch, ModelSwitch]:
    """(the active switch, the one to return to): back along ``previous``, past models whose
    file is gone or that are the one running anyway. Each rollback records a switch whose
    ``previous`` is its target's, so rolling back twice goes two steps back, not to and fro."""
    current = active_switch(session)
    if current is None:
        raise NoPreviousModel("no model switch is recorded yet, so there is no previous model to roll back to")
    skipped: list[str] = []
    target = session.get(ModelSwitch, current.previous_id) if current.previous_id is not None else None
    while target is not None:
        if target.model_version != current.model_version and Path(target.model_path).is_file():
            return current, target
        if target.model_version != current.model_version:
            skipped.append(f"{target.model_version} (file {target.model_path} is gone)")
        target = session.get(ModelSwitch, target.previous_id) if target.previous_id is not None else None
    detail = f"; skipped {', '.join(skipped)}" if skipped else ""
    raise NoPreviousModel(
        f"there is no previous model to roll back to: {current.model_version} is the oldest one recorded{detail}"
    )


def history(session: Session, *, limit: int = 20) -> list[ModelSwitch]:
    return list(session.scalars(
        select(ModelSwitch).order_by(ModelSwitch.switched_at.desc(), ModelSwitch.id.desc()).limit(limit)
    ))


def recent_builds(session: Session, *, limit: int = 20) -> list[ModelBuild]:
    return list(session.scalars(
        select(ModelBuild).order_by(ModelBuild.requested_at.desc(), ModelBuild.id.desc()).limit(limit)
    ))
