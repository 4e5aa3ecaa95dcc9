"""Storage: schema migrations, WAL connections, read-only readers, retention."""

from __future__ import annotations

import sqlite3

import pytest

from rtml.generator import Generator
from rtml.storage import (SCHEMA_VERSION, StorageError, connect, connect_readonly, integrity_check,
                          migrate, schema_version, transaction)
from rtml.storage import interactions as store
from rtml.storage.heartbeats import read_heartbeats, sim_now, write_heartbeat
from rtml.storage.monitoring import insert_alert, recent_alerts
from tests.conftest import make_settings

TABLES = {"interactions", "generator_batches", "customers", "sim_state", "heartbeats", "predictions",
          "detector_state", "drift_checks", "drift_results", "alerts", "models", "model_events", "performance",
          "model_references"}


def test_migration_from_an_empty_file(tmp_path):
    path = tmp_path / "sub" / "m.db"
    conn = connect(path)
    assert schema_version(conn) == SCHEMA_VERSION
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert TABLES <= names
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert migrate(conn) == SCHEMA_VERSION  # idempotent
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"interactions_event_time", "drift_checks_checked_at", "alerts_created_at",
            "performance_window_end", "predictions_event_time"} <= indexes


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "m.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StorageError, match="newer than this rtml"):
        connect(path)


def test_readonly_cannot_write_and_missing_file_is_explained(tmp_path):
    path = tmp_path / "m.db"
    connect(path).close()
    ro = connect_readonly(path)
    with pytest.raises(sqlite3.OperationalError):
        ro.execute("INSERT INTO sim_state (key, value) VALUES (?, ?)", ("a", "1"))
    with pytest.raises(StorageError, match="does not exist yet"):
        connect_readonly(tmp_path / "missing.db")


def test_transaction_is_all_or_nothing(tmp_path):
    conn = connect(tmp_path / "m.db")
    with pytest.raises(RuntimeError):
        with transaction(conn):
            conn.execute("INSERT INTO sim_state (key, value) VALUES (?, ?)", ("a", "1"))
            raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM sim_state").fetchone()[0] == 0


def test_heartbeats_and_the_shared_clock(tmp_path):
    conn = connect(tmp_path / "m.db")
    assert sim_now(conn) == (None, 1.0)
    write_heartbeat(conn, component="generator", pid=1, state="running", sim_time=1000.0, speed=10.0,
                    real_time=50.0)
    now, speed = sim_now(conn, real_now=52.0)
    assert (now, speed) == (1020.0, 10.0)
    write_heartbeat(conn, component="generator", pid=1, state="stopped", sim_time=1000.0, speed=10.0, real_time=50.0)
    assert sim_now(conn, real_now=99.0) == (1000.0, 10.0)
    beats = read_heartbeats(conn)
    assert beats["generator"].state == "stopped" and beats["generator"].speed == 10.0


def test_alerts_roundtrip(tmp_path):
    conn = connect(tmp_path / "m.db")
    insert_alert(conn, created_at=5.0, severity="warning", source="drift", message="m",
                 details=[{"feature": "age", "statistic": "psi", "value": 0.2, "threshold": 0.1}])
    with pytest.raises(ValueError, match="severity must be one of"):
        insert_alert(conn, created_at=5.0, severity="loud", source="drift", message="m")
    (alert,) = recent_alerts(conn)
    assert alert.details[0]["feature"] == "age" and alert.severity == "warning"


def test_retention_deletes_in_bounded_batches(tmp_path):
    settings = make_settings(tmp_path, **{"storage.retention_days": 0.5, "storage.retention_batch_rows": 1000,
                                          "simulation.n_customers": 500})
    conn = connect(settings.db_path)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    gen.replay(1.0)
    lo, hi = store.time_range(conn)
    assert hi - lo <= 0.5 * 86400 + 3600  # retention runs once per simulated day of replay
    n_before = store.count_interactions(conn)
    deleted = store.delete_old_interactions(conn, before_s=hi - 3600, batch_rows=1000, max_batches=2)
    assert deleted == 2000
    assert store.count_interactions(conn) == n_before - 2000
    assert integrity_check(conn) == "ok"


def test_read_window_is_bounded_and_ordered(tmp_path):
    settings = make_settings(tmp_path, **{"simulation.n_customers": 300})
    conn = connect(settings.db_path)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    gen.replay(0.05)
    start = settings.sim_start_s
    frame = store.read_window(conn, start_s=start, end_s=start + 600)
    assert frame["event_time"].between(start, start + 600).all() and frame["event_time"].is_monotonic_increasing
    newest = store.read_window(conn, start_s=start, end_s=start + 600, limit=100)
    assert len(newest) == 100 and newest["event_time"].iloc[-1] == frame["event_time"].iloc[-1]
    with pytest.raises(ValueError, match="Unknown interaction column"):
        store.read_window(conn, start_s=0, end_s=1, columns=("id; DROP TABLE interactions",))
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM interactions WHERE event_time >= ? AND event_time < ?", (0, 1)))
    assert "interactions_event_time" in plan
