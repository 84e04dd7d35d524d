"""The trainer: one training at a time, then the new model in every Rasa process.

``python -m bot trainer`` runs ``ModelLoop.run_forever``. It waits until every Rasa
process answers ``GET /status`` (and records what they run when that differs from the
history), then takes the open requests: the oldest becomes a training and the rest are
merged into it, the KB as it is on disk is trained (``bot.training.train``, ``rasa
train`` in ``.venv-rasa``), and the model is loaded into the Rasa processes one after
the other, so that while one process loads the others answer. A failed training, or a
load that fails anywhere, leaves every process on the model it ran (the processes
already switched are put back), and the build is recorded as failed with the error.

What ``bot run`` loads at start (``start_model``): the recorded active model when its
file exists and the training inputs are still those it was recorded with (so a
rollback survives a restart), otherwise the model ``train`` gives for the inputs on
disk (trained if they changed, as before this loop existed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from bot.modelbuilds import service
from bot.modelbuilds.models import SWITCH_ROLLBACK, SWITCH_START, SWITCH_TRAINING, ModelBuild, ModelSwitch
from bot.modelbuilds.rasa_api import RasaApiError, RasaModels
from bot.training import TrainingError, inputs_fingerprint, kb_git_revision, kb_hash, train

log = logging.getLogger(__name__)

TrainFn = Callable[..., Path]


@dataclass(frozen=True)
class Switched:
    """What a switch recorded, read out of its session."""

    switch_id: int
    model_version: str
    processes: dict[str, str]


class ModelLoop:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        rasa: RasaModels,
        *,
        kb_dir: Path,
        models_dir: Path,
        train_fn: TrainFn = train,
        fingerprint_fn: Callable[[Path], str] = inputs_fingerprint,
    ) -> None:
        """``train_fn``/``fingerprint_fn`` replace the real training (tests)."""
        self.sessions = sessions
        self.rasa = rasa
        self.kb_dir = Path(kb_dir)
        self.models_dir = Path(models_dir)
        self._train = train_fn
        self._fingerprint = fingerprint_fn

    # --- Training requests ----------------------------------------------------------------

    def train_next(self) -> int | None:
        """Train and load the oldest open request (with the others merged in); its id, or None if none was open."""
        with self.sessions.begin() as session:
            build = service.claim_next(session)
            if build is None:
                return None
            build_id, started_at = build.id, build.started_at
        try:
            return self._train_and_load(build_id, started_at)
        except Exception as exc:
            # Left "training", the build would block every later one until the trainer restarts.
            self._fail(build_id, f"the trainer failed unexpectedly, the running model is kept: {type(exc).__name__}: {exc}")
            raise

    def _train_and_load(self, build_id: int, started_at: datetime | None) -> int:
        log.info("model build %s: training", build_id)
        kb_commit, content = kb_git_revision(self.kb_dir), kb_hash(self.kb_dir)
        try:
            model = self._train(kb_dir=self.kb_dir, models_dir=self.models_dir, quiet=False)
        except (TrainingError, OSError) as exc:
            self._fail(build_id, f"training failed, the running model is kept: {exc}")
            return build_id
        with self.sessions.begin() as session:
            build = self._build(session, build_id)
            service.record_trained(session, build, model=model, kb_commit=kb_commit, kb_hash=content)
            active = service.active_switch(session)
            overtaken = active is not None and active.reason == SWITCH_ROLLBACK and started_at is not None \
                and active.switched_at >= started_at
            overtaken_at = active.switched_at if overtaken and active is not None else None
        if overtaken_at is not None:
            self._fail(build_id, f"trained {model.name} but not loaded: a rollback at {overtaken_at:%Y-%m-%d %H:%M} UTC "
                                 "came after this training began")
            return build_id
        try:
            switched = self.switch_to(model, reason=SWITCH_TRAINING, by="trainer", build_id=build_id,
                                      kb_commit=kb_commit, kb_hash=content)
        except RasaApiError as exc:
            self._fail(build_id, f"trained {model.name}, but loading it failed, the running model is kept: {exc}")
            return build_id
        with self.sessions.begin() as session:
            service.finish(session, self._build(session, build_id))
        log.info("model build %s: %s loaded into %d Rasa process(es)", build_id, switched.model_version,
                 len(switched.processes))
        return build_id

    def _build(self, session: Session, build_id: int) -> ModelBuild:
        build = session.get(ModelBuild, build_id)
        assert build is not None
        return build

    def _fail(self, build_id: int, error: str) -> None:
        with self.sessions.begin() as session:
            service.finish(session, self._build(session, build_id), error=error)
        log.warning("model build %s failed: %s", build_id, error)

    # --- Switching the model in every Rasa process -------------------------------------------

    def _path_of(self, session: Session, name: str) -> Path:
        """Where the model file a process reports lives: as recorded, else in the models folder."""
        for switch in service.history(session, limit=50):
            if Path(switch.model_path).name == name:
                return Path(switch.model_path)
        return self.models_dir / name

    def _load_everywhere(self, model: Path) -> dict[str, str]:
        before = self.rasa.running()
        switched: list[str] = []
        for url in self.rasa.urls:
            if before[url] == model.name:
                continue
            started = time.monotonic()
            try:
                self.rasa.load(url, model)
            except RasaApiError as exc:
                raise RasaApiError(f"{exc}{self._put_back(switched, before)}") from None
            log.info("%s loaded at %s in %.1f s", model.name, url, time.monotonic() - started)
            switched.append(url)
        after = self.rasa.running()
        wrong = {url: name for url, name in after.items() if name != model.name}
        if wrong:
            raise RasaApiError(f"after loading, these processes report another model: {wrong}"
                               f"{self._put_back(switched, before)}")
        return {url: str(name) for url, name in after.items()}

    def _put_back(self, switched: list[str], before: dict[str, str | None]) -> str:
        if not switched:
            return ""
        failed = []
        with self.sessions() as session:
            paths = {url: self._path_of(session, before[url] or "") for url in switched if before[url]}
        for url, path in paths.items():
            try:
                self.rasa.load(url, path)
            except RasaApiError:
                failed.append(url)
        if failed:
            return f"; putting the previous model back failed at {', '.join(failed)}"
        return f"; the previous model was put back at {', '.join(paths)}"

    def switch_to(self, model: Path, *, reason: str, by: str, build_id: int | None = None,
                  kb_commit: str | None = None, kb_hash: str | None = None,
                  previous: int | None | Literal["active"] = "active") -> Switched:
        """Load ``model`` into every Rasa process and record the switch; RasaApiError leaves them as they were.

        ``previous`` is where a later rollback returns to: by default the switch active before this one.
        """
        processes = self._load_everywhere(model)
        fingerprint = self._fingerprint(self.kb_dir)
        with self.sessions.begin() as session:
            before = service.active_switch(session)
            if previous == "active":
                back_to = before
            else:
                back_to = session.get(ModelSwitch, previous) if previous is not None else None
            switch = service.record_switch(
                session, reason=reason, by=by, model=model, processes=processes, kb_commit=kb_commit,
                kb_hash=kb_hash, inputs_fingerprint=fingerprint, build_id=build_id, previous=back_to,
            )
            return Switched(switch.id, switch.model_version, dict(switch.processes))

    def rollback(self, *, by: str) -> Switched:
        """The previous model in every process (NoPreviousModel, RasaApiError say why not)."""
        with self.sessions() as session:
            current, target = service.rollback_target(session)
            model, kb_commit, content, back_to = Path(target.model_path), target.kb_commit, target.kb_hash, \
                target.previous_id
            log.info("rolling back from %s to %s", current.model_version, target.model_version)
        return self.switch_to(model, reason=SWITCH_ROLLBACK, by=by, kb_commit=kb_commit, kb_hash=content,
                              previous=back_to)

    def record_running(self) -> Switched | None:
        """At start: what the processes run, recorded when it is not the recorded active model (None then)."""
        running = self.rasa.running()
        names = {name for name in running.values()}
        if None in names:
            raise RasaApiError(f"a Rasa process has no model loaded: {running}")
        if len(names) > 1:
            log.warning("the Rasa processes run different models: %s", running)
        name = str(running[self.rasa.urls[0]])
        with self.sessions.begin() as session:
            active = service.active_switch(session)
            if active is not None and Path(active.model_path).name == name and len(names) == 1:
                return None
            model = self._path_of(session, name)
            switch = service.record_switch(
                session, reason=SWITCH_START, by="trainer", model=model, processes={u: str(n) for u, n in running.items()},
                kb_commit=kb_git_revision(self.kb_dir), kb_hash=kb_hash(self.kb_dir),
                inputs_fingerprint=self._fingerprint(self.kb_dir), previous=active,
            )
            return Switched(switch.id, switch.model_version, dict(switch.processes))

    # --- The worker ------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event, *, poll_seconds: float = 2.0) -> None:
        """Until ``stop`` is set: first wait for the Rasa processes, then take requests as they come."""
        with self.sessions.begin() as session:
            requeued = service.recover_interrupted(session)
        if requeued:
            log.info("model builds %s were interrupted by a stop; training them again", requeued)
        ready, last_problem = False, ""
        while not stop.is_set():
            try:
                if not ready:
                    recorded = self.record_running()
                    ready = True
                    if recorded is not None:
                        log.info("the Rasa processes run %s (recorded as switch %s)", recorded.model_version,
                                 recorded.switch_id)
                if self.train_next() is not None:
                    continue
            except RasaApiError as exc:
                if str(exc) != last_problem:
                    log.warning("waiting for the Rasa processes: %s", exc)
                    last_problem = str(exc)
            except Exception:
                # The database away for a moment, say: the assistant must not stop for that (bot run
                # stops every process when one exits), and the next round tries again.
                log.exception("the trainer's round failed; trying again in %.0f s", max(poll_seconds, 10.0))
                stop.wait(max(poll_seconds, 10.0))
                continue
            stop.wait(poll_seconds)


def start_model(sessions: sessionmaker[Session], *, kb_dir: Path, models_dir: Path, train_fn: TrainFn = train,
                fingerprint_fn: Callable[[Path], str] = inputs_fingerprint) -> tuple[Path, str]:
    """The model ``bot run`` starts Rasa with, and why (for its output)."""
    with sessions() as session:
        active = service.active_switch(session)
        recorded = (Path(active.model_path), active.inputs_fingerprint, active.reason, active.switched_at) \
            if active is not None else None
    if recorded is not None and recorded[0].is_file():
        path, fingerprint, reason, when = recorded
        try:
            same_inputs = fingerprint == fingerprint_fn(kb_dir)
        except TrainingError:
            same_inputs = False  # train() below says what is wrong with the KB
        if same_inputs:
            return path, f"the active model {path.name} ({reason} at {when:%Y-%m-%d %H:%M} UTC)"
    model = train_fn(kb_dir=kb_dir, models_dir=models_dir, quiet=False)
    why = "the model for the training inputs on disk"
    if recorded is not None and not recorded[0].is_file():
        why += f" (the recorded active model {recorded[0]} is gone)"
    elif recorded is not None:
        why += f" (the inputs changed since {recorded[0].name} was made active)"
    return model, why
