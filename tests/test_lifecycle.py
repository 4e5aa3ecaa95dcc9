"""The detector's model lifecycle on replayed data: scoring exactly once, performance, retraining,
the champion/challenger gate, refused files, rollback — driven step by step on a simulated clock.

The drift monitor is a test double (:class:`OracleMonitor`): a perfect detector that reads the
simulator's ground-truth drift intensity. The real monitor has its own tests; here it only has
to say "critical" when the data moved away from the reference.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import pytest

from rtml import modeling, registry
from rtml.detector import Detector
from rtml.generator import Generator
from rtml.retraining import LAST_ATTEMPT_KEY, RetrainController
from rtml.simulation import DAY_S
from rtml.storage import Connection, connect
from rtml.storage import models as store
from rtml.storage.heartbeats import read_heartbeats
from rtml.storage.interactions import read_window
from rtml.storage.monitoring import recent_alerts
from tests.conftest import PROJECT, PYTHON, make_settings

HOUR = 3600.0
TICKS_PER_CHECK = 10   # 5 simulated minutes of 30-second ticks
FAST = {"simulation.n_customers": 2000, "simulation.batch_min_rows": 10, "simulation.batch_max_rows": 20,
        "model.n_estimators": 30, "model.max_depth": 8}


@dataclass
class Outcome:
    alert_severity: str | None = None
    check_id: int | None = None
    dataset_drift: bool = False


class OracleMonitor:
    """Stands in for ``rtml.monitor.DriftMonitor``: critical when the last hour's true drift
    intensity differs from the reference's by more than ``critical_shift``."""

    def __init__(self, conn: Connection, *, critical_shift: float = 0.25):
        self.conn = conn
        self.critical_shift = critical_shift
        self.references: list[tuple[str, float, float, int]] = []
        self.checks: list[float] = []
        self._reference_d = 0.0

    def set_reference(self, frame, *, start_s: float, end_s: float, version: str) -> None:
        self.references.append((version, start_s, end_s, len(frame)))
        self._reference_d = float(frame["drift_intensity"].mean())

    def check(self, now_s: float) -> Outcome:
        self.checks.append(now_s)
        window = read_window(self.conn, start_s=now_s - HOUR, end_s=now_s, columns=("event_time", "drift_intensity"))
        shift = abs(float(window["drift_intensity"].mean()) - self._reference_d) if len(window) else 0.0
        return Outcome("critical" if shift > self.critical_shift else None, len(self.checks), shift > 0.1)


def make_env(home, backend=None, **overrides):
    """Settings, a writer connection and a generator with its baseline (on ``backend``'s database if given)."""
    if backend is not None and backend.is_postgres:
        overrides = {"storage.database_url": backend.url, **overrides}
    settings = make_settings(home, **{**FAST, **overrides})
    conn = connect(settings)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    return settings, conn, gen


def replay(gen: Generator, detector: Detector, *, hours: float, ticks_per_step: int = TICKS_PER_CHECK) -> list:
    """Generate ``hours`` of live data, stepping the detector after every ``ticks_per_step`` ticks."""
    reports = []
    for _ in range(int(round(hours * HOUR / (gen.sim.tick_s * ticks_per_step)))):
        gen.write_ticks(ticks_per_step, kind="replay")
        reports.append(detector.step(gen.sim_time))
    return reports


def scored_ids_are_exact(conn: Connection, after_id: int, upto_id: int | None = None) -> tuple[int, int]:
    """(#predictions, #interactions in ``(after_id, upto_id]``), after checking ids match one to one."""
    upto_id = 2**62 if upto_id is None else upto_id
    n_pred, n_distinct, lo, hi = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT interaction_id), MIN(interaction_id), MAX(interaction_id) "
        "FROM predictions").fetchone()
    n_int, lo_i, hi_i = conn.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM interactions WHERE id > ? AND id <= ?",
                                     (after_id, upto_id)).fetchone()
    assert n_pred == n_distinct
    assert (lo, hi) == (lo_i, hi_i)
    return n_pred, n_int


# -- gradual drift: retrain, promote, and the promoted model is better the next day ------------------
@pytest.fixture(scope="module")
def gradual_run(tmp_path_factory):
    settings, conn, gen = make_env(tmp_path_factory.mktemp("gradual"), **{
        "simulation.scenario": "gradual", "simulation.drift_ramp_hours": 6.0, "drift.check_interval_minutes": 10.0})
    monitor = OracleMonitor(conn)
    detector = Detector(settings, conn, monitor, block_on_training=True)
    handler = _ListHandler()
    logging.getLogger("rtml").addHandler(handler)
    logging.getLogger("rtml").setLevel(logging.INFO)
    try:
        reports = replay(gen, detector, hours=24, ticks_per_step=20)
    finally:
        logging.getLogger("rtml").removeHandler(handler)
    yield settings, conn, gen, detector, monitor, reports, handler.messages
    detector.close()
    conn.close()


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_gradual_drift_retrains_and_promotes(gradual_run):
    settings, conn, _, detector, monitor, reports, messages = gradual_run
    outcomes = [r.outcome for r in reports if r.outcome is not None]
    promoted = [o for o in outcomes if o.promoted]
    assert promoted, "no challenger was promoted under gradual concept drift"
    first = promoted[0]
    assert first.from_version == "v1.0" and first.challenger_score - first.champion_score >= 0.005
    assert any(m.startswith("🤖 Starting automated retraining...") for m in messages)
    assert f"✅ New model performs better: {first.challenger_score:.3f} vs {first.champion_score:.3f}" in messages
    assert f"🎉 Model updated from v1.0 to {first.version}" in messages
    rejected = [o for o in outcomes if not o.promoted]
    assert messages.count("❌ New model performance degraded - keeping existing model") == len(rejected)
    champion = store.read_champion(conn)
    assert detector.serving.version == champion.version == promoted[-1].version
    # The drift reference followed every champion change.
    assert [r[0] for r in monitor.references] == ["v1.0"] + [o.version for o in promoted]
    version, start, end, n = monitor.references[-1]
    assert (start, end) == (champion.train_start, champion.train_end) and n == champion.n_train
    # The gate compared both models on the same held-out rows, which the champion never saw.
    for row in store.list_models(conn):
        if row.version != "v1.0":
            old = store.read_model(conn, row.metrics["champion_version"])
            assert row.metrics["n_holdout"] == row.metrics["champion_on_holdout"]["n_rows"]
            assert row.metrics["holdout_start"] >= old.train_end and row.train_end == row.metrics["holdout_start"]
    # No retraining attempt came sooner than the cooldown after the previous one.
    starts = [r.now_s for r in reports if r.retrain_started]
    assert all(b - a >= settings.model.retrain_cooldown_minutes * 60 for a, b in zip(starts, starts[1:]))


def test_promoted_model_beats_the_old_champion_the_next_day(gradual_run):
    settings, conn, gen, *_ = gradual_run
    day_start = gen.sim_time
    gen.write_ticks(int(DAY_S / gen.sim.tick_s), kind="replay")
    next_day = read_window(conn, start_s=day_start, end_s=day_start + DAY_S)
    old = registry.verify_model_file(settings.models_dir, store.read_model(conn, "v1.0"))
    new = registry.verify_model_file(settings.models_dir, store.read_champion(conn))
    auc_old = modeling.evaluate(old, next_day)["roc_auc"]
    auc_new = modeling.evaluate(new, next_day)["roc_auc"]
    assert auc_new - auc_old >= 0.02, (auc_new, auc_old)


def test_every_row_scored_once_with_the_champion_of_its_time(gradual_run):
    settings, conn, *_ = gradual_run
    _, _, last_baseline = store.baseline_span(conn)
    day_end = settings.sim_start_s + DAY_S
    last_of_day = conn.execute("SELECT MAX(id) FROM interactions WHERE event_time < ?", (day_end,)).fetchone()[0]
    n_pred, n_int = scored_ids_are_exact(conn, last_baseline, last_of_day)
    assert n_pred == n_int
    day_end = settings.sim_start_s + DAY_S
    n_day = conn.execute("SELECT COUNT(*) FROM interactions WHERE id > ? AND event_time < ?",
                         (last_baseline, day_end)).fetchone()[0]
    assert n_pred == n_day > 0
    versions = {v for (v,) in conn.execute("SELECT DISTINCT model_version FROM predictions")}
    promoted = {e.version for e in store.recent_events(conn, events=("promoted",))}
    assert versions <= promoted and len(versions) >= 2
    assert store.read_state(conn, "scoring_cursor") == conn.execute(
        "SELECT MAX(interaction_id) FROM predictions").fetchone()[0]


def test_performance_is_tracked_per_window_and_version(gradual_run):
    settings, conn, *_ = gradual_run
    rows = store.recent_performance(conn, since_s=settings.sim_start_s, limit=10_000)
    first_promoted = store.recent_events(conn, events=("promoted",))[-2].version
    assert {r["model_version"] for r in rows} >= {"v1.0", first_promoted}
    for r in rows:
        assert r["window_end"] - r["window_start"] == pytest.approx(settings.model.perf_window_minutes * 60)
        assert r["n_rows"] > 0 and 0 <= r["base_rate"] <= 1
    full = [r for r in rows if r["n_rows"] > 500]
    assert all(0.5 < r["roc_auc"] < 0.95 and r["log_loss"] > 0 and 0 < r["brier"] < 0.5 for r in full)


# -- no drift: nothing to do ---------------------------------------------------------------------------
def test_no_drift_means_no_promotion_over_seven_days(tmp_path, caplog):
    settings, conn, gen = make_env(tmp_path, **{"simulation.scenario": "none", "drift.check_interval_minutes": 60.0,
                                                "simulation.batch_min_rows": 4, "simulation.batch_max_rows": 8})
    monitor = OracleMonitor(conn)
    detector = Detector(settings, conn, monitor, block_on_training=True)
    caplog.set_level(logging.INFO, logger="rtml")
    reports = replay(gen, detector, hours=7 * 24, ticks_per_step=120)
    assert len(monitor.checks) == len(reports) == 7 * 24
    assert not [r for r in reports if r.retrain_started or r.outcome]
    assert [m.version for m in store.list_models(conn)] == ["v1.0"]
    assert "🤖" not in caplog.text
    assert len(store.recent_performance(conn, since_s=0, limit=10_000)) == len(reports)


# -- refused files, rollback -----------------------------------------------------------------------------
def _challenger(settings, conn, now_s, *, seed=7):
    frame = read_window(conn, start_s=now_s - 6 * HOUR, end_s=now_s)
    model = modeling.train(frame, model_settings=settings.model, seed=seed)
    champion = store.read_champion(conn)
    return registry.record_challenger(settings, conn, model=model, now_s=now_s, train_start=now_s - 6 * HOUR,
                                      train_end=now_s, n_train=len(frame), metrics={"roc_auc": 0.7}, promote=True,
                                      reason="test promotion", champion_version=champion.version)


def test_corrupted_champion_file_is_refused_and_the_old_champion_keeps_serving(tmp_path, backend):
    settings, conn, gen = make_env(tmp_path, backend, **{"simulation.scenario": "none"})
    detector = Detector(settings, conn, OracleMonitor(conn))
    replay(gen, detector, hours=2)
    row = _challenger(settings, conn, gen.sim_time)
    path = settings.models_dir / row.file
    path.write_bytes(path.read_bytes()[:-100])  # truncated on disk after registration
    reports = replay(gen, detector, hours=1)
    assert {r.serving for r in reports} == {"v1.0"} and sum(r.n_scored for r in reports) > 0
    alerts = recent_alerts(conn)
    assert len(alerts) == 1 and (alerts[0].severity, alerts[0].source) == ("critical", "model")
    assert "v1.1 refused" in alerts[0].message
    assert [e.event for e in store.recent_events(conn, limit=1)] == ["refused"]
    assert detector.details()["refused"] == "v1.1"
    latest = conn.execute("SELECT model_version FROM predictions ORDER BY interaction_id DESC LIMIT 1").fetchone()
    assert latest == ("v1.0",)
    # A restarted detector refuses it too and serves the last good champion.
    restarted = Detector(settings, conn, OracleMonitor(conn))
    assert replay(gen, restarted, hours=0.5)[-1].serving == "v1.0"
    assert restarted.details()["refused"] == "v1.1"
    _, _, last_baseline = store.baseline_span(conn)
    scored_ids_are_exact(conn, last_baseline)


def test_a_detector_started_on_a_legacy_champion_serves_a_retrained_copy(tmp_path, backend):
    """Upgrading from the DataFrame pipeline: the detector's start retrains v1.0 and scores with v1.1."""
    from tests.test_registry import _make_legacy

    settings, conn, gen = make_env(tmp_path, backend, **{"simulation.scenario": "none"})
    replay(gen, Detector(settings, conn, OracleMonitor(conn)), hours=0.5)
    _make_legacy(conn, "v1.0")
    upgraded = Detector(settings, conn, OracleMonitor(conn))
    reports = replay(gen, upgraded, hours=0.5)
    assert {r.serving for r in reports} == {"v1.1"} and sum(r.n_scored for r in reports) > 0
    assert [e.event for e in store.recent_events(conn, limit=2)] == ["promoted", "trained"]
    assert not recent_alerts(conn)  # a replacement, not a refusal
    _, _, last_baseline = store.baseline_span(conn)
    scored_ids_are_exact(conn, last_baseline)


def test_running_detector_follows_promotion_and_rollback(tmp_path, backend):
    settings, conn, gen = make_env(tmp_path, backend, **{"simulation.scenario": "none"})
    monitor = OracleMonitor(conn)
    detector = Detector(settings, conn, monitor)
    replay(gen, detector, hours=2)
    _challenger(settings, conn, gen.sim_time)
    assert replay(gen, detector, hours=5 / 60)[-1].serving == "v1.1"
    registry.rollback(settings, conn, actor="test", reason="round trip", now_s=gen.sim_time)
    assert replay(gen, detector, hours=5 / 60)[-1].serving == "v1.0"
    registry.rollback(settings, conn, "v1.1", actor="test", reason="and back", now_s=gen.sim_time)
    assert replay(gen, detector, hours=5 / 60)[-1].serving == "v1.1"
    assert [r[0] for r in monitor.references] == ["v1.0", "v1.1", "v1.0", "v1.1"]
    versions = [v for (v,) in conn.execute("SELECT model_version FROM predictions ORDER BY interaction_id")]
    changes = [v for i, v in enumerate(versions) if i == 0 or v != versions[i - 1]]
    assert changes == ["v1.0", "v1.1", "v1.0", "v1.1"]


# -- triggers, cooldown, background training -------------------------------------------------------------
def test_performance_drop_trigger_needs_a_real_drop(tmp_path):
    settings, conn, _ = make_env(tmp_path)
    controller = RetrainController(settings, conn)
    champion = registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    champion = store.ModelRow(**{**champion.__dict__, "metrics": {"roc_auc": 0.75, "n_rows": 20_000, "base_rate": 0.2}})
    window = {"n_rows": 20_000, "base_rate": 0.2}
    assert not controller.check_performance(dict(window, roc_auc=0.71), champion, 0.0)
    assert not controller.check_performance({"roc_auc": 0.5, "n_rows": 50, "base_rate": 0.2}, champion, 0.0)
    assert not controller.check_performance({"roc_auc": None, "n_rows": 0}, champion, 0.0)
    assert controller.pending_reason is None
    assert controller.check_performance(dict(window, roc_auc=0.65), champion, 0.0)
    assert "below its validation 0.750" in controller.pending_reason
    controller.shutdown()


def test_cooldown_and_minimum_rows(tmp_path, backend, caplog):
    settings, conn, gen = make_env(tmp_path, backend, **{"simulation.scenario": "none", "model.min_train_rows": 500})
    detector = Detector(settings, conn, OracleMonitor(conn), block_on_training=True)
    replay(gen, detector, hours=3)
    detector.retrainer.request("test", gen.sim_time)
    first = replay(gen, detector, hours=5 / 60)[-1]
    assert first.retrain_started and first.outcome is not None
    assert store.read_state(conn, LAST_ATTEMPT_KEY) == first.now_s
    detector.retrainer.request("again", gen.sim_time)
    blocked = replay(gen, detector, hours=1)
    assert not any(r.retrain_started for r in blocked) and detector.retrainer.pending_reason == "again"
    # A restarted detector remembers the last attempt.
    assert RetrainController(settings, conn).cooldown_left_s(gen.sim_time) == pytest.approx(
        first.now_s + settings.model.retrain_cooldown_minutes * 60 - gen.sim_time)
    after = replay(gen, detector, hours=1.1)
    assert sum(r.retrain_started for r in after) == 1
    # Too few labelled rows: refused, and said why.
    strict = Detector(settings.replace(**{"model.min_train_rows": 10**6, "model.retrain_cooldown_minutes": 0}),
                      conn, OracleMonitor(conn), block_on_training=True)
    replay(gen, strict, hours=5 / 60)
    n_models = len(store.list_models(conn))
    caplog.set_level(logging.INFO, logger="rtml")
    strict.retrainer.request("test", gen.sim_time)
    replay(gen, strict, hours=5 / 60)
    assert "Not retraining: only" in caplog.text and len(store.list_models(conn)) == n_models
    detector.close()
    strict.close()


def test_training_runs_in_the_background(tmp_path):
    settings, conn, gen = make_env(tmp_path, **{"simulation.scenario": "none", "model.n_estimators": 150,
                                                "model.max_depth": 0, "model.min_samples_leaf": 1})
    detector = Detector(settings, conn, OracleMonitor(conn))
    replay(gen, detector, hours=3)
    detector.retrainer.request("test", gen.sim_time)
    started = replay(gen, detector, hours=5 / 60)[-1]
    assert started.retrain_started and detector.retrainer.in_progress
    meanwhile = replay(gen, detector, hours=5 / 60)[-1]
    assert meanwhile.n_scored > 0 and meanwhile.checked
    deadline = time.monotonic() + 120
    outcome = None
    while outcome is None and time.monotonic() < deadline:
        time.sleep(0.2)
        outcome = detector.step(gen.sim_time).outcome
    assert outcome is not None and outcome.version == "v1.1"
    # Shutting down cancels a training within one chunk of trees; nothing is registered.
    detector.retrainer._last_attempt_at = None
    detector.retrainer.request("test", gen.sim_time)
    assert replay(gen, detector, hours=5 / 60)[-1].retrain_started
    t0 = time.monotonic()
    detector.close()
    assert time.monotonic() - t0 < 10
    assert store.latest_version(conn) == "v1.1"
    assert read_heartbeats(conn)["detector"].state == "stopped"


# -- exactly once under SIGKILL ----------------------------------------------------------------------------
DETECTOR_SCRIPT = textwrap.dedent("""
    import signal, sys, threading
    from dataclasses import dataclass
    from rtml.config import load_settings
    from rtml.detector import run_detector
    from rtml.storage import Connection, connect

    @dataclass
    class Outcome:
        alert_severity: object = None
        check_id: object = None
        dataset_drift: bool = False

    class NullMonitor:
        def __init__(self, settings, conn): pass
        def set_reference(self, frame, *, start_s, end_s, version): pass
        def check(self, now_s): return Outcome()

    settings = load_settings(environ={}, home=sys.argv[1], config_file=sys.argv[2], overrides=__OVERRIDES__)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sys.exit(run_detector(settings, connect(settings), stop, monitor_factory=NullMonitor))
""")


def test_scoring_is_exactly_once_across_sigkill(tmp_path, backend):
    overrides = {**FAST, "simulation.scenario": "none", "model.n_estimators": 5, "model.score_batch_rows": 100,
                 "metrics.enabled": False, **({"storage.database_url": backend.url} if backend.is_postgres else {})}
    settings, conn, gen = make_env(tmp_path, **overrides)
    gen.replay(0.5)  # ~22k interactions, ~220 scoring transactions; leaves the clock standing
    _, _, last_baseline = store.baseline_span(conn)
    total = conn.execute("SELECT COUNT(*) FROM interactions WHERE id > ?", (last_baseline,)).fetchone()[0]
    script = tmp_path / "detector.py"
    script.write_text(DETECTOR_SCRIPT.replace("__OVERRIDES__", repr(overrides)))
    cmd = [PYTHON, str(script), str(tmp_path), str(PROJECT / "config.toml")]
    env = dict(os.environ, PYTHONPATH=str(PROJECT))

    def count() -> int:
        return conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]

    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while count() < 1500 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = count()
    assert 1500 <= killed_at < total, "the kill must land mid-run"
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while count() < total and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    n_pred, n_int = scored_ids_are_exact(conn, last_baseline)
    assert n_pred == n_int == total
    assert store.read_state(conn, "scoring_cursor") == conn.execute("SELECT MAX(id) FROM interactions").fetchone()[0]
    assert read_heartbeats(conn)["detector"].state == "stopped"


def test_the_loop_sleeps_until_the_next_due_thing(tmp_path):
    """Speed 1: nothing is due for seconds (the next tick, heartbeat or check); speed 60: a check
    every 5 sim-minutes is 5 real seconds apart and the loop wakes for it (and for every tick)."""
    settings, conn, gen = make_env(tmp_path, **{"simulation.scenario": "none"})
    detector = Detector(settings, conn, OracleMonitor(conn))
    replay(gen, detector, hours=1)
    now = gen.sim_time + 1.0  # 1 sim second after a tick: the next one is 29 sim seconds away
    detector.step(now)
    detector.heartbeat(now, force=True)  # the next heartbeat is heartbeat_interval (real) away
    beat = settings.supervisor.heartbeat_interval_seconds
    tick = settings.simulation.tick_seconds
    assert detector.seconds_until_due(now, 1.0) == pytest.approx(min(beat, tick - 1.0 + 0.2), abs=0.1)
    check_at = detector._last_check_at + settings.drift.check_interval_minutes * 60.0
    assert detector.seconds_until_due(check_at - 60.0, 1.0) <= beat
    # speed 60: ticks are 0.5 real s apart and wake the loop; a check due in 2 sim s wakes it within 2/60 s
    assert detector.seconds_until_due(now, 60.0) == pytest.approx((tick - 1.0) / 60 + 0.1, abs=0.02)
    assert detector.seconds_until_due(check_at - 2.0, 60.0) == pytest.approx(0.05, abs=1e-6)  # MIN_LOOP_SLEEP_S
    assert detector.seconds_until_due(check_at - 6.0, 60.0) <= 0.1 + 1e-6


def test_prediction_retention_deletes_in_bounded_batches_until_caught_up(tmp_path):
    """A day brings far more predictions than one retention batch: every old one goes, a bounded
    number of batches at a time, and newer ones stay."""
    conn = connect(tmp_path / "m.db")
    rows = [(i, float(i), "v1.0", 0.5, 0, 0.0) for i in range(1, 101)]
    with store.transaction(conn):
        store.insert_predictions_in_transaction(conn, rows)
    assert store.delete_predictions_before(conn, before_s=80.5, batch_rows=10, max_batches=2) == 20
    assert store.delete_predictions_before(conn, before_s=80.5, batch_rows=10) == 60
    left = [r[0] for r in conn.execute("SELECT interaction_id FROM predictions ORDER BY interaction_id")]
    assert left == list(range(81, 101))
