"""The detector loop: score new rows, check drift, track performance, retrain, follow the registry.

One :meth:`Detector.step` is one unit of work at a given simulated time — tests and replays
call it directly with their own clock; :func:`run_detector` calls it on the shared clock
(:func:`rtml.storage.heartbeats.sim_now`) until ``stop`` is set. Each step:

1. follows the registry: if a model event was recorded (promotion, rollback — a cheap
   ``MAX(id)`` on model_events), re-reads the champion and, if it changed, loads it verified
   and gives the drift monitor its training window as the new reference; a refused file
   leaves the last good model serving;
2. scores pending interactions exactly once (:mod:`rtml.scoring`);
3. every ``drift.check_interval_minutes`` (simulated): runs the drift check (a critical alert
   requests retraining) and updates the performance window (a drop requests retraining too);
4. collects a finished training, or starts one when requested and allowed
   (:mod:`rtml.retraining`; training runs in a background thread);
5. writes the ``detector`` heartbeat every ``supervisor.heartbeat_interval_seconds`` (real).

Between steps :func:`run_detector` sleeps until the next thing is due (:meth:`Detector.seconds_until_due`):
the generator's next tick (new rows to score), the next drift check, the next heartbeat, the
end of a retraining cooldown, the next retention day, or a poll of a running training — so at
speed 1 the loop wakes a few times a minute, and at high speed as often as the ticks need.
``stop`` (SIGTERM) interrupts the sleep at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rtml import performance, registry, scoring
from rtml.config import Settings
from rtml.metrics import DetectorMetrics
from rtml.retraining import RetrainController, RetrainOutcome
from rtml.simulation import DAY_S
from rtml.storage import models as store
from rtml.storage.heartbeats import sim_now, write_heartbeat
from rtml.storage.db import Connection

log = logging.getLogger(__name__)

RETENTION_BATCHES_PER_STEP = 5  # bounded work per loop step; the rest follows in later steps

COMPONENT = "detector"
MAX_SCORE_BATCHES_PER_STEP = 20   # a backlog is worked off over several steps, keeping the loop responsive
MAX_LOOP_SLEEP_S = 10.0     # never sleep longer than this between steps (registry changes by the CLI are followed)
MIN_LOOP_SLEEP_S = 0.05     # ... nor shorter (very high speeds: ticks are then written several at a time)
WAITING_POLL_S = 0.5        # no clock or no model yet: look again this often
TRAINING_POLL_S = 0.5       # a training runs in the background: collect it this soon after it finishes
TICK_MARGIN_S = 0.2         # wake this long (real; at most a fifth of a tick) after a tick: its batch is committed


class DriftMonitorLike(Protocol):
    """What the detector needs from :class:`rtml.monitor.DriftMonitor`."""

    def set_reference(self, frame, *, start_s: float, end_s: float, version: str) -> None: ...

    def check(self, now_s: float) -> Any: ...


@dataclass(frozen=True)
class StepReport:
    """What one step did (for tests, logs and the heartbeat)."""

    now_s: float
    serving: str | None
    n_scored: int
    checked: bool
    alert_severity: str | None
    retrain_started: bool
    outcome: RetrainOutcome | None
    more_pending: bool


class Detector:
    """The detector's state between steps: serving model, scoring cursor, clocks, retraining.

    Parameters
    ----------
    settings : Settings
    conn : Connection
        A writer connection (``rtml.storage.connect``).
    monitor : DriftMonitorLike
        The drift monitor (``rtml.monitor.DriftMonitor(settings, conn)``).
    block_on_training : bool, default=False
        Wait for a started training within the same step (deterministic replay tests only).
    """

    def __init__(self, settings: Settings, conn: Connection, monitor: DriftMonitorLike, *,
                 block_on_training: bool = False):
        self.settings = settings
        self.conn = conn
        self.monitor = monitor
        self.retrainer = RetrainController(settings, conn, block=block_on_training)
        self.serving: registry.LoadedModel | None = None
        self.cursor: int | None = None
        self.pid = os.getpid()
        self.started_at = time.time()
        self._seen_event_id = -1
        self._refused: tuple[str, str] | None = None
        self._last_check_at: float | None = None
        self._last_beat = 0.0
        self._last_retention_day: int | None = None
        self._waiting_logged = False
        self.metrics = DetectorMetrics(settings)

    # -- the unit of work -------------------------------------------------------------------------
    def step(self, now_s: float) -> StepReport:
        """Do one iteration's work at simulated time ``now_s`` (see the module docstring)."""
        if self.serving is None and not self._start(now_s):
            self.heartbeat(now_s, state="waiting")
            return StepReport(now_s, None, 0, False, None, False, None, False)
        self.sync_champion(now_s)
        if self.cursor is None:
            self.cursor = scoring.load_cursor(self.conn)
        scored = scoring.score_pending(self.conn, model=self.serving.model, version=self.serving.version,
                                       cursor=self.cursor, batch_rows=self.settings.model.score_batch_rows,
                                       max_batches=MAX_SCORE_BATCHES_PER_STEP)
        self.cursor = scored.cursor
        checked, severity = False, None
        interval_s = self.settings.drift.check_interval_minutes * 60.0
        if self._last_check_at is None or now_s - self._last_check_at >= interval_s - 1e-6:
            with self.metrics.time_check():
                checked, severity = True, self._check(now_s)
            self._last_check_at = now_s
        outcome = self.retrainer.poll(now_s)
        started = self.retrainer.maybe_start(now_s, self.serving)
        if started and self.retrainer.block:
            outcome = self.retrainer.poll(now_s)
        if outcome is not None:
            self.metrics.observe_training(outcome.details.get("training_seconds"))
        if outcome is not None and outcome.promoted:
            self.sync_champion(now_s)
        self._apply_retention(now_s)
        self.heartbeat(now_s)
        return StepReport(now_s, self.serving.version, scored.n_scored, checked, severity, started, outcome,
                          scored.more_pending)

    def _start(self, now_s: float) -> bool:
        """Load the champion (:func:`registry.ensure_initial_model` first: it trains ``v1.0`` when the
        registry is empty and replaces a champion an earlier rtml saved)."""
        try:
            registry.ensure_initial_model(self.settings, self.conn, now_s=now_s)
        except registry.RegistryError as exc:
            if not self._waiting_logged:
                log.info("Waiting for a first model: %s", exc)
                self._waiting_logged = True
            return False
        self._seen_event_id = store.last_event_id(self.conn)
        loaded = registry.load_champion(self.settings, self.conn, now_s=now_s)
        self._seen_event_id = store.last_event_id(self.conn)
        if loaded is None:
            if not self._waiting_logged:
                log.error("No champion (current or earlier) passes verification; not scoring until one does "
                          "(roll back to a good version or retrain)")
                self._waiting_logged = True
            return False
        champion = store.read_champion(self.conn)
        if champion is not None and champion.version != loaded.version:
            self._refused = (champion.version, champion.sha256)
        self._switch_to(loaded)
        return True

    def sync_champion(self, now_s: float) -> bool:
        """Follow a champion change recorded in the registry; returns whether the model switched."""
        event_id = store.last_event_id(self.conn)
        if event_id == self._seen_event_id:
            return False
        self._seen_event_id = event_id
        row = store.read_champion(self.conn)
        if row is None or (self.serving and (row.version, row.sha256) == (self.serving.version,
                                                                          self.serving.row.sha256)):
            return False
        if self._refused == (row.version, row.sha256):
            return False  # refused already; stays refused until the registry row changes
        try:
            model = registry.load_verified(self.settings, self.conn, row, now_s=now_s)
        except registry.ModelVerificationError:
            self._refused = (row.version, row.sha256)
            self._seen_event_id = store.last_event_id(self.conn)  # our own 'refused' event
            log.error("Keeping %s serving", self.serving.version if self.serving else "no model")
            return False
        old = self.serving.version if self.serving else None
        self._switch_to(registry.LoadedModel(row, model))
        self.retrainer.clear_request()
        log.info("Now serving %s (was %s)", row.version, old)
        return True

    def _switch_to(self, loaded: registry.LoadedModel) -> None:
        self.serving = loaded
        self._refused = None if self._refused and self._refused[0] == loaded.version else self._refused
        frame, start_s, end_s, version = registry.champion_reference(self.conn, self.settings, row=loaded.row)
        self.monitor.set_reference(frame, start_s=start_s, end_s=end_s, version=version)
        log.info("Drift reference: %s's training window (%d rows)", version, len(frame))

    def _check(self, now_s: float) -> str | None:
        severity = None
        try:
            outcome = self.monitor.check(now_s)
            severity = getattr(outcome, "alert_severity", None)
        except Exception:  # noqa: BLE001 - a failing drift check must not stop scoring
            log.exception("Drift check failed at simulated %.0f", now_s)
        if severity == "critical":
            self.retrainer.request(f"critical drift alert (check {getattr(outcome, 'check_id', None)})", now_s)
        results = performance.update_performance(self.conn, self.settings, now_s=now_s)
        self.retrainer.check_performance(results.get(self.serving.version), self.serving.row, now_s)
        return severity

    def _apply_retention(self, now_s: float) -> None:
        """Once per simulated day, delete predictions older than ``storage.retention_days``.

        Each step deletes at most :data:`RETENTION_BATCHES_PER_STEP` bounded batches; the day
        counts as done only once nothing older is left, so a day's ~200k predictions are caught up
        over the following steps without one long pause.
        """
        day = int(now_s // DAY_S)
        if day == self._last_retention_day:
            return
        batch_rows = self.settings.storage.retention_batch_rows
        cutoff = now_s - self.settings.storage.retention_days * DAY_S
        deleted = store.delete_predictions_before(self.conn, before_s=cutoff, batch_rows=batch_rows,
                                                  max_batches=RETENTION_BATCHES_PER_STEP)
        if deleted < batch_rows * RETENTION_BATCHES_PER_STEP:
            self._last_retention_day = day
        if deleted:
            log.info("Retention: deleted %d predictions", deleted)

    # -- heartbeat and shutdown -------------------------------------------------------------------
    def details(self) -> dict:
        """Heartbeat details: serving version, cursor, training state."""
        return {"serving": self.serving.version if self.serving else None,
                "refused": self._refused[0] if self._refused else None,
                "scoring_cursor": self.cursor, "training": self.retrainer.in_progress,
                "retrain_pending": self.retrainer.pending_reason, "last_check_at": self._last_check_at}

    def seconds_until_due(self, now_s: float, speed: float) -> float:
        """Real seconds from simulated ``now_s`` until the next step has something to do.

        The earliest of: the generator's next tick (plus a small margin so its batch is
        committed), the next drift check, the next heartbeat, the end of the retraining cooldown
        while a request waits, the next simulated day (retention), a poll of a running training;
        clipped to ``[MIN_LOOP_SLEEP_S, MAX_LOOP_SLEEP_S]``.
        """
        speed = max(float(speed), 1e-9)
        if self.serving is None:
            return WAITING_POLL_S
        sim = self.settings.simulation
        tick_s = float(sim.tick_seconds)
        since_start = now_s - self.settings.sim_start_s
        to_tick_real = (tick_s - since_start % tick_s) / speed
        due = [to_tick_real + min(TICK_MARGIN_S, 0.2 * tick_s / speed),
               self.settings.supervisor.heartbeat_interval_seconds - (time.monotonic() - self._last_beat),
               (DAY_S - now_s % DAY_S) / speed]
        if self._last_check_at is not None:
            interval_s = self.settings.drift.check_interval_minutes * 60.0
            due.append((self._last_check_at + interval_s - now_s) / speed)
        if self.retrainer.in_progress:
            due.append(TRAINING_POLL_S)
        elif self.retrainer.pending_reason is not None:
            due.append(self.retrainer.cooldown_left_s(now_s) / speed)
        return min(max(min(due), MIN_LOOP_SLEEP_S), MAX_LOOP_SLEEP_S)

    def heartbeat(self, now_s: float | None, *, state: str = "running", force: bool = False) -> None:
        """Write the ``detector`` heartbeat if ``heartbeat_interval_seconds`` (real) have passed."""
        if not force and time.monotonic() - self._last_beat < self.settings.supervisor.heartbeat_interval_seconds:
            return
        write_heartbeat(self.conn, component=COMPONENT, pid=self.pid, state=state, sim_time=now_s,
                        started_at=self.started_at, details=self.details())
        self._last_beat = time.monotonic()

    def close(self, now_s: float | None = None) -> None:
        """Cancel a running training and write a ``stopped`` heartbeat."""
        self.retrainer.shutdown()
        self.heartbeat(now_s, state="stopped", force=True)


def run_detector(settings: Settings, conn: Connection, stop: threading.Event, *,
                 max_iterations: int | None = None,
                 monitor_factory: Callable[[Settings, Connection], DriftMonitorLike] | None = None) -> int:
    """Run the detector on the shared simulated clock until ``stop`` is set.

    Parameters
    ----------
    settings : Settings
    conn : Connection
        A writer connection.
    stop : threading.Event
        Set by the SIGTERM handler; the current step finishes, then this returns.
    max_iterations : int, default=None
        Stop after this many steps (tests).
    monitor_factory : callable, default=None
        Builds the drift monitor; default ``rtml.monitor.DriftMonitor``.

    Returns
    -------
    int
        0 (the exit code).
    """
    if monitor_factory is None:
        from rtml.monitor import DriftMonitor  # the lead's module; imported late to keep this one testable
        monitor_factory = DriftMonitor
    detector = Detector(settings, conn, monitor_factory(settings, conn))
    iterations = 0
    now = None
    log.info("Detector started (pid %d)", detector.pid)
    detector.metrics.start()
    try:
        while not stop.is_set() and (max_iterations is None or iterations < max_iterations):
            real_before = time.time()
            now, speed = sim_now(conn, real_now=real_before)
            if now is None:
                detector.heartbeat(None, state="waiting")
                stop.wait(WAITING_POLL_S)
                continue
            report = detector.step(now)
            iterations += 1
            if not report.more_pending:
                # now + the step's own duration: the clock moved on while the step ran
                stop.wait(detector.seconds_until_due(now + (time.time() - real_before) * speed, speed))
    finally:
        detector.close(now)
        detector.metrics.stop()
        log.info("Detector stopped after %d iterations", iterations)
    return 0
