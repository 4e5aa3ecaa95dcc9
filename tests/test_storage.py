"""Storage: schema migrations, connections, read-only readers, retention — on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from rtml.generator import Generator
from rtml.storage import (SCHEMA_VERSION, DatabaseError, StorageError, connect, connect_readonly, read_snapshot,
                          database_exists, drop_schema, integrity_check, migrate, quick_check, schema_version,
                          transaction)
from rtml.storage import dashboard as dash_store
from rtml.storage import interactions as store
from rtml.storage import metrics as metrics_store
from rtml.storage import models as model_store
from rtml.storage.db import _pg_sql, insert_returning_id, postgres_ddl, resolve_target
from rtml.storage.heartbeats import read_heartbeats, sim_now, write_heartbeat
from rtml.storage.monitoring import insert_alert, insert_check, recent_alerts
from rtml.storage.schema import TABLES as SCHEMA_TABLES
from tests.conftest import make_settings

TABLES = {"interactions", "generator_batches", "customers", "sim_state", "heartbeats", "predictions",
          "detector_state", "drift_checks", "drift_results", "alerts", "models", "model_events", "performance",
          "model_references"}
INDEXES = {"interactions_event_time", "drift_checks_checked_at", "alerts_created_at", "performance_window_end",
           "predictions_event_time", "models_status", "drift_checks_true_drift"}


def _tables_and_indexes(conn, backend) -> tuple[set, set]:
    if backend.is_postgres:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
    else:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return tables, indexes


def test_migration_from_an_empty_database(backend, tmp_path):
    target = backend.target("sub/m.db")
    assert not database_exists(target)
    conn = connect(target)
    assert schema_version(conn) == SCHEMA_VERSION and database_exists(target)
    tables, indexes = _tables_and_indexes(conn, backend)
    assert TABLES <= tables and set(SCHEMA_TABLES) == TABLES
    assert INDEXES <= indexes
    assert migrate(conn) == SCHEMA_VERSION  # idempotent
    assert quick_check(conn) == "ok" and integrity_check(conn) == "ok"
    if backend.is_postgres:
        assert "schema_version" in tables
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'interactions'").fetchall())
        assert types["event_time"] == "double precision" and types["id"] == "bigint"  # float4 would lose seconds
    else:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_migrations_are_serialised(backend):
    """Processes starting on an empty database at once (generator and detector) all succeed.

    SQLite: 20 fresh files, because the race (the WAL switch answering "database is locked" at
    once) lost about one time in ten before it was fixed.
    """
    rounds = 1 if backend.is_postgres else 20
    for i in range(rounds):
        target = backend.target(f"m{i}.db")
        errors, versions = [], []

        def run(target=target, errors=errors, versions=versions):
            try:
                conn = connect(target)
                versions.append(schema_version(conn))
                conn.close()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and versions == [SCHEMA_VERSION] * 3, f"round {i}"


def test_newer_schema_is_refused(backend):
    target = backend.target()
    if backend.is_postgres:
        conn = connect(target)
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
        conn.close()
    else:
        raw = sqlite3.connect(target)
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        raw.close()
    with pytest.raises(StorageError, match="newer than this rtml"):
        connect(target)


def test_readonly_cannot_write_and_missing_database_is_explained(backend, tmp_path):
    target = backend.target()
    with pytest.raises(StorageError, match="does not exist yet" if not backend.is_postgres else "no rtml schema"):
        connect_readonly(target)
    connect(target).close()
    ro = connect_readonly(target)
    with pytest.raises(DatabaseError):
        ro.execute("INSERT INTO sim_state (key, value) VALUES (?, ?)", ("a", "1"))
    assert ro.execute("SELECT COUNT(*) FROM sim_state").fetchone()[0] == 0


def test_transaction_is_all_or_nothing(backend):
    conn = connect(backend.target())
    with pytest.raises(RuntimeError):
        with transaction(conn):
            conn.execute("INSERT INTO sim_state (key, value) VALUES (?, ?)", ("a", "1"))
            raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM sim_state").fetchone()[0] == 0
    with pytest.raises(DatabaseError):  # a failed statement rolls the transaction back, the connection lives on
        with transaction(conn):
            conn.execute("INSERT INTO sim_state (key, value) VALUES (?, ?)", ("a", "1"))
            conn.execute("INSERT INTO sim_state (key, value) VALUES (?, ?)", ("a", "2"))
    assert conn.execute("SELECT COUNT(*) FROM sim_state").fetchone()[0] == 0
    with transaction(conn):
        conn.execute("INSERT INTO sim_state (key, value) VALUES (?, ?)", ("100%", "'?'"))
    assert conn.execute("SELECT value FROM sim_state WHERE key LIKE '100%'").fetchone()[0] == "'?'"


def test_writers_wait_for_each_other(backend):
    """A second writer blocks until the first commits (SQLite BEGIN IMMEDIATE; PostgreSQL advisory lock)."""
    a, b = connect(backend.target()), connect(backend.target())
    order = []

    def second():
        with transaction(b):
            order.append("b")

    with transaction(a):
        a.execute("INSERT INTO sim_state (key, value) VALUES (?, ?)", ("k", "1"))
        t = threading.Thread(target=second)
        t.start()
        t.join(0.3)
        order.append("a")
    t.join(5)
    assert order == ["a", "b"]


def test_heartbeats_and_the_shared_clock(backend):
    conn = connect(backend.target())
    assert sim_now(conn) == (None, 1.0)
    write_heartbeat(conn, component="generator", pid=1, state="running", sim_time=1000.0, speed=10.0,
                    real_time=50.0)
    now, speed = sim_now(conn, real_now=52.0)
    assert (now, speed) == (1020.0, 10.0)
    write_heartbeat(conn, component="generator", pid=1, state="stopped", sim_time=1000.0, speed=10.0, real_time=50.0)
    assert sim_now(conn, real_now=99.0) == (1000.0, 10.0)
    beats = read_heartbeats(conn)
    assert beats["generator"].state == "stopped" and beats["generator"].speed == 10.0


def test_alerts_checks_and_ids_roundtrip(backend):
    conn = connect(backend.target())
    first = insert_alert(conn, created_at=5.0, severity="warning", source="drift", message="m",
                         details=[{"feature": "age", "statistic": "psi", "value": 0.2, "threshold": 0.1}])
    with pytest.raises(ValueError, match="severity must be one of"):
        insert_alert(conn, created_at=5.0, severity="loud", source="drift", message="m")
    (alert,) = recent_alerts(conn)
    assert alert.details[0]["feature"] == "age" and alert.severity == "warning" and alert.id == first
    check = {"checked_at": 1767225600.123456, "window_start": 1.0, "window_end": 2.0, "n_reference": 10,
             "n_current": 10, "policy": "calibrated", "dataset_drift": True, "n_drifted": 1, "n_features": 1,
             "share_drifted": 1.0, "status": "ok"}
    result = {"feature": "age", "kind": "numerical", "status": "ok", "drifted": True, "psi": 0.3}
    check_id, alert_id = insert_check(conn, check=check, results=[result],
                                      alert={"created_at": 6.0, "severity": "critical", "message": "x"})
    assert alert_id == first + 1 and check_id >= 1
    latest = metrics_store.latest_check(conn)
    assert latest["id"] == check_id and latest["dataset_drift"] == 1
    assert latest["checked_at"] == 1767225600.123456  # double precision: sub-second unix times survive
    assert metrics_store.check_results(conn, check_id)[0]["drifted"] == 1
    event_id = model_store.insert_event(conn, at=1.0, event="trained", version="v1.0")
    assert model_store.last_event_id(conn) == event_id
    assert insert_returning_id(conn, "INSERT INTO alerts (created_at, real_time, severity, source, message) "
                               "VALUES (?, ?, ?, ?, ?)", (7.0, 7.0, "info", "drift", "y")) == alert_id + 1


def test_retention_deletes_in_bounded_batches(backend):
    settings = backend.settings(**{"storage.retention_days": 0.5, "storage.retention_batch_rows": 1000,
                                   "simulation.n_customers": 500})
    conn = connect(settings)
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
    generated, kept = dash_store.interaction_totals(conn)
    assert kept == store.count_interactions(conn) and generated == metrics_store.interactions_high_water(conn)
    assert generated > kept


def test_read_window_is_bounded_and_ordered(backend):
    settings = backend.settings(**{"simulation.n_customers": 300})
    conn = connect(settings)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    gen.replay(0.05)
    start = settings.sim_start_s
    frame = store.read_window(conn, start_s=start, end_s=start + 600)
    times = frame["event_time"]
    assert ((times >= start) & (times <= start + 600)).all() and (np.diff(times) >= 0).all()
    newest = store.read_window(conn, start_s=start, end_s=start + 600, limit=100)
    assert len(newest) == 100 and newest["event_time"][-1] == frame["event_time"][-1]
    with pytest.raises(ValueError, match="Unknown interaction column"):
        store.read_window(conn, start_s=0, end_s=1, columns=("id; DROP TABLE interactions",))
    if backend.is_postgres:
        conn.execute("ANALYZE interactions")
        plan = " ".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT id FROM interactions WHERE event_time >= ? AND event_time < ?", (0.0, 1.0)))
    else:
        plan = " ".join(r[3] for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM interactions WHERE event_time >= ? AND event_time < ?", (0, 1)))
    assert "interactions_event_time" in plan


def test_readers_see_one_snapshot(backend):
    conn = connect(backend.target())
    ro = connect_readonly(backend.target())
    with read_snapshot(ro):
        before = metrics_store.alerts_high_water(ro)
        insert_alert(conn, created_at=1.0, severity="info", source="drift", message="m")
        assert metrics_store.alerts_high_water(ro) == before
    assert metrics_store.alerts_high_water(ro) == before + 1


# -- the seam itself (no server needed) ------------------------------------------------------------
def test_placeholders_and_percent_signs_are_translated_outside_quotes():
    assert _pg_sql("SELECT a FROM t WHERE b = ? AND c LIKE '5%?' AND d = ?") == \
        "SELECT a FROM t WHERE b = %s AND c LIKE '5%%?' AND d = %s"
    assert _pg_sql("SELECT 10 % 3") == "SELECT 10 %% 3"


def test_schema_ddl_for_postgres_keeps_float8_and_bigint_ids():
    ddl = postgres_ddl("CREATE TABLE x (id INTEGER PRIMARY KEY AUTOINCREMENT, t REAL NOT NULL, n INTEGER)")
    assert ddl == ("CREATE TABLE x (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                   "t DOUBLE PRECISION NOT NULL, n BIGINT)")


def test_targets_and_settings_urls(tmp_path):
    assert resolve_target("postgresql://u@h:5432/d") == ("postgresql", "postgresql://u@h:5432/d")
    assert resolve_target("sqlite:////tmp/x.db")[1].as_posix() == "/tmp/x.db"
    assert resolve_target(tmp_path / "m.db") == ("sqlite", tmp_path / "m.db")
    with pytest.raises(StorageError, match="Unsupported database URL"):
        resolve_target("mysql://h/d")
    s = make_settings(tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'data/monitoring.db'}" and not s.uses_postgres
    s = make_settings(tmp_path, **{"storage.database_url": "sqlite:///elsewhere/m.db"})
    assert s.db_path == tmp_path / "elsewhere/m.db"
    s = make_settings(tmp_path, **{"storage.database_url": "postgresql://rtml:secret@db:5432/rtml"})
    assert s.uses_postgres and s.database_url.endswith("@db:5432/rtml") and "secret" not in s.database_label


def test_drop_schema_is_for_postgres_only(tmp_path):
    with pytest.raises(StorageError):
        drop_schema(connect(tmp_path / "m.db"))


def test_postgres_reset_drops_every_table(postgres_database):
    """PostgreSQL only (a SQLite reset deletes the file); skipped without RTML_TEST_POSTGRES_URL."""
    conn = connect(postgres_database)
    assert set(drop_schema(conn)) == TABLES | {"schema_version"}
    assert schema_version(conn) == 0 and not database_exists(postgres_database)
    assert migrate(conn) == SCHEMA_VERSION
