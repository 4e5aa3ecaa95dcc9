"""Generator: baseline, determinism, exact resume, batch atomicity under SIGKILL, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pandas as pd
from scipy import stats

from rtml.generator import Generator
from rtml.simulation import FEATURES, NUMERICAL_FEATURES
from rtml.storage import connect, connect_readonly, integrity_check
from rtml.storage import interactions as store
from rtml.storage.heartbeats import read_heartbeats
from tests.conftest import PROJECT, PYTHON, make_settings, wait_for_db

COLUMNS = ("id", "batch_id", "event_time", "customer_id") + FEATURES + ("converted", "drift_intensity")


def all_rows(conn) -> pd.DataFrame:
    return pd.DataFrame(conn.execute(f"SELECT {', '.join(COLUMNS)} FROM interactions ORDER BY id").fetchall(),
                        columns=COLUMNS)


def test_baseline_backfill_once(backend):
    settings = backend.settings()
    conn = connect(settings)
    gen = Generator(settings, conn)
    assert gen.backfill_baseline() == 3500
    assert Generator(settings, conn).backfill_baseline() == 0
    lo, hi = store.time_range(conn)
    start = settings.sim_start_s
    assert start - 7 * 86400 <= lo and hi < start
    kinds = conn.execute("SELECT kind, COUNT(*), SUM(n_rows) FROM generator_batches GROUP BY kind").fetchall()
    assert kinds == [("baseline", 7, 3500)]


def test_same_seed_identical_rows_and_resume_is_exact(backend, tmp_path):
    overrides = {"simulation.n_customers": 1000, "simulation.replay_batch_ticks": 48}
    a = backend.settings(tmp_path / "a", **overrides)
    b = backend.other(tmp_path / "b", **overrides)
    conn_a, conn_b = connect(a), connect(b)
    gen = Generator(a, conn_a)
    gen.backfill_baseline()
    gen.replay(0.2)
    gen = Generator(b, conn_b)
    gen.backfill_baseline()
    gen.replay(0.1)
    gen = Generator(b, conn_b)  # a restarted generator: state read back from the database
    gen.replay(0.1)
    pd.testing.assert_frame_equal(all_rows(conn_a).drop(columns="batch_id"), all_rows(conn_b).drop(columns="batch_id"))


def test_none_baseline_matches_live(tmp_path):
    """Under 'none' the baseline (3,500 rows over 7 days) and a live day come from one distribution."""
    settings = make_settings(tmp_path, **{"simulation.scenario": "none"})
    conn = connect(settings.db_path)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    gen.replay(0.5)
    rows = all_rows(conn)
    base, live = rows[rows.event_time < settings.sim_start_s], rows[rows.event_time >= settings.sim_start_s]
    for col in NUMERICAL_FEATURES:
        assert stats.ks_2samp(base[col], live[col]).pvalue > 0.001, col
    for col in set(FEATURES) - set(NUMERICAL_FEATURES):
        table = pd.crosstab(rows[col], rows.event_time >= settings.sim_start_s)
        assert stats.chi2_contingency(table)[1] > 0.001, col


def test_sigkill_leaves_only_whole_batches_and_resume_continues(backend, tmp_path):
    env = dict(os.environ, RTML_HOME=str(tmp_path), RTML_SIMULATION_REPLAY_BATCH_TICKS="20",
               RTML_SIMULATION_N_CUSTOMERS="1000", **backend.env())
    proc = subprocess.Popen([PYTHON, str(PROJECT / "data_generator.py"), "--replay", "3", "--no-progress"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = backend.target("data/monitoring.db")
    wait_for_db(db, lambda ro: ro.execute("SELECT COUNT(*) FROM generator_batches").fetchone()[0] > 30,
                timeout_s=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    conn = connect(db)
    assert integrity_check(conn) == "ok"
    batches = conn.execute("SELECT batch_id, n_rows, first_id, last_id FROM generator_batches ORDER BY batch_id").fetchall()
    assert len(batches) > 30
    counts = dict(conn.execute("SELECT batch_id, COUNT(*) FROM interactions GROUP BY batch_id").fetchall())
    assert set(counts) == {b[0] for b in batches if b[1]}, "rows of an uncommitted batch are visible"
    for batch_id, n_rows, first_id, last_id in batches:
        assert counts.get(batch_id, 0) == n_rows and last_id - first_id + 1 == n_rows
    ids = [r[0] for r in conn.execute("SELECT id FROM interactions ORDER BY id")]
    if backend.is_postgres:  # a sequence never rolls back: the killed batch's ids are skipped, never reused
        assert ids[0] == 1 and all(b > a for a, b in zip(ids, ids[1:]))
    else:
        assert ids == list(range(1, len(ids) + 1)), "ids are not continuous"
    # The restarted generator continues from the committed state with no gap and no overlap.
    settings = backend.settings(**{"simulation.replay_batch_ticks": 20, "simulation.n_customers": 1000})
    gen = Generator(settings, conn)
    last_end = conn.execute("SELECT MAX(sim_end) FROM generator_batches").fetchone()[0]
    assert gen.sim_time == last_end
    gen.replay(0.01)
    spans = conn.execute("SELECT sim_start, sim_end FROM generator_batches WHERE kind != 'baseline' ORDER BY batch_id").fetchall()
    assert all(prev[1] == nxt[0] for prev, nxt in zip(spans, spans[1:]))


def test_live_mode_writes_ticks_on_the_clock_and_stops_cleanly(backend):
    settings = backend.settings(**{"simulation.speed": 300.0, "simulation.n_customers": 500,
                                   "supervisor.heartbeat_interval_seconds": 0.2})
    conn = connect(settings)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    started = time.monotonic()
    batches = gen.run_live(stop)
    elapsed = time.monotonic() - started
    # 300x: a 30 s tick every 0.1 s of real time.
    expected_ticks = elapsed * 300 / 30
    assert abs(gen.next_tick - expected_ticks) <= 3
    assert 1 <= batches <= gen.next_tick
    sizes = [r[0] for r in conn.execute("SELECT n_rows FROM generator_batches WHERE kind = 'live' AND n_ticks = 1")]
    assert sizes and all(50 <= s <= 100 for s in sizes)
    beat = read_heartbeats(conn)["generator"]
    assert beat.state == "stopped" and beat.sim_time == gen.sim_time and beat.speed == 300.0


def test_sigterm_finishes_the_batch_and_exits_0(tmp_path):
    env = dict(os.environ, RTML_HOME=str(tmp_path), RTML_SIMULATION_N_CUSTOMERS="500")
    proc = subprocess.Popen([PYTHON, str(PROJECT / "data_generator.py"), "--speed", "600"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "data" / "monitoring.db"
    assert wait_for_db(db, lambda ro: ro.execute(
        "SELECT COUNT(*) FROM generator_batches WHERE kind = 'live'").fetchone()[0] >= 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    conn = connect_readonly(db)
    assert read_heartbeats(conn)["generator"].state == "stopped"
    assert "Generator stopped after" in (tmp_path / "logs" / "generator.log").read_text()


def test_second_generator_on_the_same_database_is_refused(tmp_path):
    env = dict(os.environ, RTML_HOME=str(tmp_path), RTML_SIMULATION_N_CUSTOMERS="500")
    proc = subprocess.Popen([PYTHON, str(PROJECT / "data_generator.py"), "--speed", "10"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        db = tmp_path / "data" / "monitoring.db"
        assert wait_for_db(db, lambda ro: getattr(read_heartbeats(ro).get("generator"), "state", None) == "running")
        second = subprocess.run([PYTHON, str(PROJECT / "data_generator.py"), "--replay", "0.1"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"Another generator (pid {proc.pid})" in second.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
