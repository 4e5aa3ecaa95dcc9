"""Automated retraining and the champion/challenger gate.

Triggers: a critical drift alert (the detector calls :meth:`RetrainController.request`) or the
champion's ROC AUC over the last performance window falling more than ``model.perf_drop``
below its validation AUC (:meth:`RetrainController.check_performance`); never sooner than
``retrain_cooldown_minutes`` (simulated) after the last attempt, which is persisted so a
restart does not reset it.

An attempt reads the last ``train_window_hours`` of labelled rows and splits off the newest
``holdout_fraction`` as the gate's held-out slice — never starting before the champion's own
training end, so neither model trained on it. The champion is scored on it right away (loop
thread); the challenger is trained and scored on it in a single background thread, which
only sees the frames it is given. :meth:`RetrainController.poll` collects the result on the
loop thread and does every database write there: the challenger is promoted only if it beats
the champion by at least ``min_improvement`` on ``decision_metric``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.pipeline import Pipeline

from rtml import modeling, registry
from rtml.config import Settings
from rtml.simulation import LABEL
from rtml.storage import models as store
from rtml.storage.interactions import read_window
from rtml.storage.db import Connection
from rtml.table import Table

log = logging.getLogger(__name__)

LAST_ATTEMPT_KEY = "last_retrain_attempt_at"
MIN_TRIGGER_ROWS = 200      # a performance window with fewer labelled rows never triggers retraining
MIN_HOLDOUT_ROWS = 100      # the gate needs at least this many held-out rows (both classes)
PERF_DROP_Z = 1.645         # the drop must exceed perf_drop by this many standard errors (one-sided 5 %)


@dataclass
class _Attempt:
    """A training in progress."""

    future: concurrent.futures.Future
    started_at: float
    real_started: float
    reason: str
    champion_version: str
    champion_metrics: dict
    train_start: float
    train_end: float
    holdout_start: float
    holdout_end: float
    n_train: int
    n_holdout: int


@dataclass(frozen=True)
class RetrainOutcome:
    """The gate's decision on one finished attempt."""

    version: str
    promoted: bool
    challenger_score: float | None
    champion_score: float | None
    from_version: str
    reason: str
    details: dict = field(default_factory=dict)


def train_and_evaluate(train_frame: Table, holdout: Table, *, model_settings, seed: int,
                       cancel: threading.Event) -> tuple[Pipeline, dict]:
    """Train a challenger and score it on the holdout (runs in the training thread; no I/O)."""
    model = modeling.train(train_frame, model_settings=model_settings, seed=seed, cancel=cancel)
    return model, modeling.evaluate(model, holdout)


class RetrainController:
    """Decides when to retrain, runs the training in the background and applies the gate.

    Parameters
    ----------
    settings : Settings
    conn : Connection
        The detector's writer connection (used on the loop thread only).
    block : bool, default=False
        :meth:`poll` waits for a running training (deterministic replay tests).
    """

    def __init__(self, settings: Settings, conn: Connection, *, block: bool = False):
        self.settings = settings
        self.conn = conn
        self.block = block
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtml-train")
        self._cancel = threading.Event()
        self._attempt: _Attempt | None = None
        self._pending: str | None = None
        self._last_attempt_at: float | None = store.read_state(conn, LAST_ATTEMPT_KEY)

    # -- triggers ---------------------------------------------------------------------------------
    @property
    def in_progress(self) -> bool:
        """Whether a training is running (or finished and not yet polled)."""
        return self._attempt is not None

    @property
    def pending_reason(self) -> str | None:
        """Why retraining was requested, while the request waits (cooldown, training in progress)."""
        return self._pending

    def request(self, reason: str, now_s: float) -> None:
        """Ask for a retraining (e.g. a critical drift alert); it starts when the cooldown allows."""
        if self._pending is None:
            log.info("Retraining requested at simulated %.0f: %s", now_s, reason)
            self._pending = reason

    def clear_request(self) -> None:
        """Forget a waiting request (the champion changed, so its reason no longer holds)."""
        self._pending = None

    def check_performance(self, metrics: dict | None, champion: store.ModelRow, now_s: float) -> bool:
        """Request retraining if the champion's window ROC AUC fell more than ``perf_drop`` below
        its validation ROC AUC; returns whether it did.

        Both AUCs are estimates (the validation one often from a few hundred held-out rows), so
        the drop must exceed ``perf_drop`` by :data:`PERF_DROP_Z` combined standard errors
        (Hanley-McNeil): noise alone must not retrain a stationary model.
        """
        if not metrics or metrics.get("roc_auc") is None or (metrics.get("n_rows") or 0) < MIN_TRIGGER_ROWS:
            return False
        validation = champion.metrics.get("roc_auc")
        if validation is None:
            return False
        drop = float(validation) - float(metrics["roc_auc"])
        se = math.hypot(modeling.metrics_auc_standard_error(metrics),
                        modeling.metrics_auc_standard_error(champion.metrics))
        margin = PERF_DROP_Z * se if math.isfinite(se) else 0.0
        if drop > self.settings.model.perf_drop + margin:
            self.request(f"{champion.version} ROC AUC {metrics['roc_auc']:.3f} is {drop:.3f} below its "
                         f"validation {validation:.3f} (perf_drop {self.settings.model.perf_drop} + "
                         f"{margin:.3f} noise margin)", now_s)
            return True
        return False

    def cooldown_left_s(self, now_s: float) -> float:
        """Simulated seconds before another attempt may start."""
        if self._last_attempt_at is None:
            return 0.0
        return max(0.0, self._last_attempt_at + self.settings.model.retrain_cooldown_minutes * 60.0 - now_s)

    # -- attempts ---------------------------------------------------------------------------------
    def maybe_start(self, now_s: float, champion: registry.LoadedModel) -> bool:
        """Start a training if one is requested, none runs and the cooldown has passed."""
        if self._pending is None or self._attempt is not None or self.cooldown_left_s(now_s) > 0:
            return False
        reason, self._pending = self._pending, None
        self._record_attempt(now_s)
        log.info("🤖 Starting automated retraining... (%s)", reason)
        ms = self.settings.model
        end = now_s - ms.label_delay_minutes * 60.0
        start = end - ms.train_window_hours * 3600.0
        frame = read_window(self.conn, start_s=start, end_s=end,
                            limit=registry.REFERENCE_READ_FACTOR * ms.max_train_rows)
        champion_end = champion.row.train_end
        train, holdout, holdout_start = modeling.split_holdout(frame, holdout_fraction=ms.holdout_fraction,
                                                               not_before_s=champion_end)
        if champion_end is not None and len(holdout) and champion_end > holdout_start:
            raise AssertionError("holdout overlaps the champion's training window")  # split_holdout guards it
        if len(train) < ms.min_train_rows:
            log.warning("Not retraining: only %d labelled rows in the last %.1f h before the holdout "
                        "(model.min_train_rows = %d)", len(train), ms.train_window_hours, ms.min_train_rows)
            return False
        if len(holdout) < MIN_HOLDOUT_ROWS or np.unique(holdout[LABEL]).size < 2:
            log.warning("Not retraining: the held-out slice has %d rows (need %d with both classes); the "
                        "champion %s trained until %.0f", len(holdout), MIN_HOLDOUT_ROWS, champion.version,
                        champion_end or float("nan"))
            return False
        train = modeling.subsample(train, max_rows=ms.max_train_rows, seed=self.settings.simulation.seed)
        champion_metrics = modeling.evaluate(champion.model, holdout)
        self._cancel.clear()
        future = self._executor.submit(train_and_evaluate, train, holdout, model_settings=ms,
                                       seed=self.settings.simulation.seed, cancel=self._cancel)
        self._attempt = _Attempt(future=future, started_at=now_s, real_started=time.monotonic(), reason=reason,
                                 champion_version=champion.version, champion_metrics=champion_metrics,
                                 train_start=float(train["event_time"][0]), train_end=holdout_start,
                                 holdout_start=holdout_start, holdout_end=end, n_train=len(train),
                                 n_holdout=len(holdout))
        log.info("Training a challenger on %d rows; gate on %d held-out rows (champion %s: %s %s)", len(train),
                 len(holdout), champion.version, ms.decision_metric,
                 _fmt(champion_metrics.get(ms.decision_metric)))
        return True

    def poll(self, now_s: float) -> RetrainOutcome | None:
        """Apply the gate to a finished training (registry writes happen here, on the caller's thread)."""
        attempt = self._attempt
        if attempt is None or (not self.block and not attempt.future.done()):
            return None
        self._attempt = None
        try:
            model, metrics = attempt.future.result()
        except modeling.TrainingCancelled as exc:
            log.info("%s", exc)
            return None
        except Exception:  # noqa: BLE001 - a failed training must not stop scoring
            log.exception("Retraining failed; keeping %s", attempt.champion_version)
            return None
        ms = self.settings.model
        metric = ms.decision_metric
        ours, theirs = metrics.get(metric), attempt.champion_metrics.get(metric)
        gain = modeling.improvement(metric, challenger=ours, champion=theirs)
        promote = gain is not None and gain >= ms.min_improvement
        if promote:
            log.info("✅ New model performs better: %s vs %s", _fmt(ours), _fmt(theirs))
            reason = (f"{metric} {_fmt(ours)} vs champion {attempt.champion_version} {_fmt(theirs)} on the same "
                      f"{attempt.n_holdout} held-out rows (+{gain:.3f} >= {ms.min_improvement}); "
                      f"trigger: {attempt.reason}")
        else:
            log.info("❌ New model performance degraded - keeping existing model")
            reason = (f"{metric} {_fmt(ours)} vs champion {attempt.champion_version} {_fmt(theirs)} on the same "
                      f"{attempt.n_holdout} held-out rows: improvement "
                      f"{'n/a' if gain is None else f'{gain:+.3f}'} < {ms.min_improvement}; trigger: {attempt.reason}")
            log.info("Challenger rejected: %s", reason)
        details = dict(metrics, holdout_start=attempt.holdout_start, holdout_end=attempt.holdout_end,
                       n_holdout=attempt.n_holdout, champion_version=attempt.champion_version,
                       champion_on_holdout=attempt.champion_metrics, trigger=attempt.reason,
                       decision_metric=metric, improvement=gain, min_improvement=ms.min_improvement,
                       training_seconds=round(time.monotonic() - attempt.real_started, 3))
        row = registry.record_challenger(self.settings, self.conn, model=model, now_s=now_s,
                                         train_start=attempt.train_start, train_end=attempt.train_end,
                                         n_train=attempt.n_train, metrics=details, promote=promote,
                                         reason=reason, champion_version=attempt.champion_version)
        promoted = row.status == "champion"
        if promoted:
            log.info("🎉 Model updated from %s to %s", attempt.champion_version, row.version)
        elif promote:
            log.warning("Challenger %s not promoted: %s", row.version, row.reason)
        return RetrainOutcome(row.version, promoted, ours, theirs, attempt.champion_version, row.reason or "",
                              details)

    def shutdown(self) -> None:
        """Cancel a running training (it stops within one chunk of trees) and stop the thread."""
        self._cancel.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._attempt = None

    def _record_attempt(self, now_s: float) -> None:
        self._last_attempt_at = now_s
        store.write_state(self.conn, LAST_ATTEMPT_KEY, now_s)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"
