"""Training requests and the history of the model the assistant runs.

A request is written in the unit of work that approves a KB proposal, so an approval
that rolls back asks for no training, and one that commits can never be forgotten by
a crashed trainer. Requests that pile up while one trains are collapsed into the next
training (``merged``): training is minutes of CPU, and one training on the newest KB
includes every change before it.

A switch is recorded each time the model in the Rasa processes changes (after a
training, by a rollback, or found at start): the history is what a rollback steps
back along and what ``bot run`` restores after a restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.db import Base
from bot.store.types import UTCDateTime, in_list, utcnow

REQUESTED = "requested"
TRAINING = "training"
LOADED = "loaded"
FAILED = "failed"
MERGED = "merged"
BUILD_STATUSES: tuple[str, ...] = (REQUESTED, TRAINING, LOADED, FAILED, MERGED)

# From each status, where a build may go. ``training -> requested`` is the recovery of a
# training the trainer did not finish (it was stopped): the request still needs a model.
BUILD_TRANSITIONS: dict[str, tuple[str, ...]] = {
    REQUESTED: (TRAINING, MERGED),
    TRAINING: (LOADED, FAILED, REQUESTED),
    LOADED: (),
    FAILED: (),
    MERGED: (),
}

SWITCH_TRAINING = "training"
SWITCH_ROLLBACK = "rollback"
SWITCH_START = "start"
SWITCH_REASONS: tuple[str, ...] = (SWITCH_TRAINING, SWITCH_ROLLBACK, SWITCH_START)


class TransitionError(ValueError):
    """A build asked to move along a transition that is not allowed."""


def check_transition(old: str, new: str) -> None:
    if new not in BUILD_TRANSITIONS.get(old, ()):
        raise TransitionError(f"a model build cannot go from {old!r} to {new!r}")


class ModelBuild(Base):
    __tablename__ = "model_builds"
    __table_args__ = (
        CheckConstraint(in_list("status", BUILD_STATUSES), name="status"),
        # The trainer's question: the oldest open request.
        Index(None, "status", "requested_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Why, for people reading the history ("proposal 12 approved"); never citizen text.
    reason: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[str] = mapped_column(String(100))
    # The approved proposal, when one asked (no foreign key: proposals belong to the console).
    proposal_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=REQUESTED)
    # A request collapsed into another request's training.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("model_builds.id"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    model_path: Mapped[str | None] = mapped_column(Text)
    # The model file's name without .tar.gz: bot.training's fingerprint of the inputs.
    model_version: Mapped[str | None] = mapped_column(String(64))
    # The KB's git revision (None outside git; the working tree may differ from it) and its content hash.
    kb_commit: Mapped[str | None] = mapped_column(String(64))
    kb_hash: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


class ModelSwitch(Base):
    __tablename__ = "model_switches"
    __table_args__ = (CheckConstraint(in_list("reason", SWITCH_REASONS), name="reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    switched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(100))
    build_id: Mapped[int | None] = mapped_column(ForeignKey("model_builds.id"))
    model_path: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(64))
    # What the model was trained on (a rollback copies them from the switch it returns to).
    kb_commit: Mapped[str | None] = mapped_column(String(64))
    kb_hash: Mapped[str | None] = mapped_column(String(64))
    # bot.training's fingerprint of the inputs on disk when the switch was made. Equal to the
    # model's version after a training; after a rollback it is the newer inputs' fingerprint,
    # which is how `bot run` knows the rolled-back model is still the one wanted.
    inputs_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # The switch a rollback from this one returns to.
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("model_switches.id"))
    # Which model file each Rasa process reported (GET /status) right after the switch: {url: file}.
    processes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
