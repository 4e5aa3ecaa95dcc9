"""The detector's drift monitor: windows from the database, stored checks, results and alerts."""

from __future__ import annotations

import json
import logging

import pytest

from rtml.generator import Generator
from rtml.monitor import DriftMonitor, make_policy
from rtml.drift import CalibratedPolicy, SeedPolicy
from rtml.simulation import FEATURES
from rtml.storage import connect
from rtml.storage import interactions as store
from tests.conftest import make_settings


@pytest.fixture
def system(backend):
    settings = backend.settings(**{"simulation.scenario": "sudden", "simulation.drift_onset_hours": 2.0,
                                   "simulation.n_customers": 2000})
    conn = connect(settings)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    gen.replay(4 / 24)
    monitor = DriftMonitor(settings, conn)
    start = settings.sim_start_s
    reference = store.read_window(conn, start_s=start - 8 * 86400, end_s=start)
    monitor.set_reference(reference, start_s=start - 7 * 86400, end_s=start, version="v1.0")
    return settings, conn, monitor


def test_policy_from_settings(tmp_path):
    assert isinstance(make_policy(make_settings(tmp_path).drift), CalibratedPolicy)
    seed = make_policy(make_settings(tmp_path, **{"drift.policy": "seed", "drift.seed_ks_pvalue": 0.01}).drift)
    assert isinstance(seed, SeedPolicy) and seed.ks_pvalue == 0.01


def test_stationary_checks_store_results_and_raise_nothing(system):
    settings, conn, monitor = system
    start = settings.sim_start_s
    for minutes in (65, 70, 75, 80):  # before onset at 2 h
        outcome = monitor.check(start + minutes * 60)
        assert outcome.alert_severity is None and not outcome.dataset_drift
    checks = conn.execute("SELECT id, n_current, n_reference, policy, status, reference_version, true_intensity "
                          "FROM drift_checks ORDER BY id").fetchall()
    assert len(checks) == 4
    assert all(c[1] > 2500 and c[2] == 3500 and c[3] == "calibrated" and c[4] == "ok" and c[5] == "v1.0"
               and c[6] == 0.0 for c in checks)
    features = [r[0] for r in conn.execute("SELECT feature FROM drift_results WHERE check_id = ? ORDER BY feature",
                                           (checks[0][0],))]
    assert features == sorted(FEATURES)
    assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0


def test_sudden_drift_raises_a_critical_alert_with_details(system, caplog):
    settings, conn, monitor = system
    start = settings.sim_start_s
    caplog.set_level(logging.INFO, logger="rtml.monitor")
    severities = [monitor.check(start + (3 * 60 + m) * 60).alert_severity for m in (5, 10, 15, 20)]
    assert severities[:2] == [None, "critical"]  # m=2 of n=3 agreeing checks, then a cooldown
    assert severities[2:] == [None, None]
    (alert,) = conn.execute("SELECT severity, source, message, details, check_id FROM alerts").fetchall()
    details = json.loads(alert[3])
    assert alert[0] == "critical" and alert[1] == "drift" and alert[4] is not None
    assert alert[2].startswith("🚨 Significant drift detected in ")
    assert {"age", "device_type", "cart_value"} <= {d["feature"] for d in details}
    assert all({"statistic", "value", "threshold"} <= set(d) for d in details)
    text = caplog.text
    assert "🚨 Significant drift detected in" in text and "- age: " in text and "(threshold: " in text
    drifted = conn.execute("SELECT feature, psi, ks_statistic, thresholds FROM drift_results "
                           "WHERE check_id = ? AND drifted = 1", (alert[4],)).fetchall()
    age = next(r for r in drifted if r[0] == "age")
    assert age[2] > json.loads(age[3])["ks_statistic"]


def test_empty_window_is_not_enough_data_never_no_drift(system):
    settings, conn, monitor = system
    outcome = monitor.check(settings.sim_start_s + 30 * 86400)  # far beyond the data
    assert outcome.alert_severity is None
    status, n_current = conn.execute("SELECT status, n_current FROM drift_checks ORDER BY id DESC LIMIT 1").fetchone()
    assert status == "not_enough_data" and n_current == 0


def test_window_rows_takes_the_newest_rows(tmp_path, system):
    settings, conn, _ = system
    rows_settings = settings.replace(**{"drift.window_rows": 500})
    monitor = DriftMonitor(rows_settings, conn)
    start = settings.sim_start_s
    monitor.set_reference(store.read_window(conn, start_s=start - 8 * 86400, end_s=start),
                          start_s=start - 7 * 86400, end_s=start, version="v1.0")
    monitor.check(start + 3600)
    n_current, window_end, window_start = conn.execute(
        "SELECT n_current, window_end, window_start FROM drift_checks ORDER BY id DESC LIMIT 1").fetchone()
    assert n_current == 500 and window_end == start + 3600 and window_end - window_start < 600
