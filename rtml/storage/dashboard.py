"""Read-only SQL of the dashboard: every statement it runs against the shared database.

Each query is bounded — by a simulated-time window on an indexed column (``event_time``,
``checked_at``, ``created_at``, ``window_end``, ``at``), by a primary-key range, or by a LIMIT —
so one refresh costs the same on a day of history as on a year of it. Nothing here writes.

Functions return plain values, dicts or :class:`~rtml.table.Table` (named numpy
columns; no pandas in the dashboard process); turning them into what a panel shows is
:mod:`rtml.ui.data`'s job.
"""

from __future__ import annotations

from rtml.table import Table
from rtml.storage.db import Connection

CHECK_COLUMNS = ("id", "checked_at", "real_time", "window_start", "window_end", "reference_start",
                 "reference_end", "reference_version", "n_reference", "n_current", "policy", "dataset_drift",
                 "n_drifted", "n_features", "share_drifted", "status", "true_intensity")
#: The drift_results columns a panel shows (the heatmap, the statistics chart and table, the
#: verdict): this is the one read that grows with the history window (10 rows per check), so it
#: reads nothing else.
RESULT_COLUMNS = ("check_id", "feature", "drifted", "psi", "ks_statistic", "ks_pvalue", "js_distance",
                  "chi2_pvalue", "thresholds")
ALERT_COLUMNS = ("id", "created_at", "real_time", "severity", "source", "message", "details", "check_id")
MODEL_COLUMNS = ("version", "major", "minor", "created_at", "promoted_at", "train_start", "train_end",
                 "n_train", "metrics", "status", "reason")
MODEL_EVENT_COLUMNS = ("id", "at", "real_time", "event", "version", "from_version", "actor", "reason")
PERFORMANCE_COLUMNS = ("id", "window_start", "window_end", "model_version", "n_rows", "base_rate", "accuracy",
                       "roc_auc", "precision", "recall", "f1", "log_loss", "brier")


def _columns(conn: Connection, sql: str, params: tuple, names: tuple[str, ...]) -> Table:
    """Run one parameterized statement and return its rows as named columns."""
    return Table.from_rows(conn.execute(sql, params).fetchall(), names)


# -- interactions (generator tables) -------------------------------------------------------------

def count_interactions_between(conn: Connection, *, start_s: float, end_s: float) -> int:
    """Interactions with ``start_s <= event_time < end_s`` (a range count on the event_time index)."""
    row = conn.execute("SELECT COUNT(*) FROM interactions WHERE event_time >= ? AND event_time < ?",
                       (start_s, end_s)).fetchone()
    return int(row[0])


def interaction_totals(conn: Connection) -> tuple[int, int]:
    """``(generated, kept)``: interactions ever written and those still stored, without a table scan.

    ``generated`` is the last id of the newest generator batch with rows (ids are never reused and
    grow with the batch id, so it counts every row the generator ever wrote; a primary-key walk
    from the newest batch, on both backends); ``kept`` is the id span still stored, ``MAX(id) - MIN(id) + 1`` — exact because
    retention deletes the oldest rows and ids grow with time (two primary-key lookups, where
    ``COUNT(*)`` would read every row).
    """
    row = conn.execute("SELECT last_id FROM generator_batches WHERE last_id IS NOT NULL "
                       "ORDER BY batch_id DESC LIMIT 1").fetchone()
    generated = int(row[0]) if row else 0
    lo = conn.execute("SELECT MIN(id) FROM interactions").fetchone()[0]
    hi = conn.execute("SELECT MAX(id) FROM interactions").fetchone()[0]
    kept = 0 if lo is None else int(hi) - int(lo) + 1
    return generated, kept


def baseline_window(conn: Connection) -> tuple[float, float] | None:
    """Simulated ``(start, end)`` of the baseline backfill (the leading ``kind='baseline'`` batches).

    The baseline is written first, so only the batches before the first live one are read
    (primary-key order, a handful of rows).
    """
    row = conn.execute(
        "SELECT MIN(sim_start), MAX(sim_end) FROM generator_batches WHERE kind = 'baseline' AND batch_id < "
        "COALESCE((SELECT batch_id FROM generator_batches WHERE kind != 'baseline' ORDER BY batch_id LIMIT 1), "
        "9223372036854775807)").fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1])


def first_drifted_event_time(conn: Connection, *, start_s: float, end_s: float) -> float | None:
    """Earliest ``event_time`` in ``[start_s, end_s)`` whose true ``drift_intensity`` is above 0."""
    row = conn.execute("SELECT event_time FROM interactions WHERE event_time >= ? AND event_time < ? "
                       "AND drift_intensity > 0 ORDER BY event_time LIMIT 1", (start_s, end_s)).fetchone()
    return None if row is None else float(row[0])


def sample_feature(conn: Connection, *, feature: str, start_s: float, end_s: float,
                   limit: int) -> Table:
    """The newest ``limit`` values of one feature in ``[start_s, end_s)`` (index range, newest first).

    ``feature`` must be one of :data:`rtml.simulation.FEATURES` (it is a column name, checked).
    """
    from rtml.simulation import FEATURES

    if feature not in FEATURES:
        raise ValueError(f"Unknown feature {feature!r}; known: {', '.join(FEATURES)}")
    sql = (f"SELECT event_time, {feature} FROM interactions WHERE event_time >= ? AND event_time < ? "
           "ORDER BY event_time DESC LIMIT ?")
    return _columns(conn, sql, (start_s, end_s, int(limit)), ("event_time", feature))


def reference_sample_feature(conn: Connection, *, version: str, feature: str, limit: int) -> Table:
    """One feature of ``version``'s stored drift-reference sample (what the detector checks against)."""
    from rtml.simulation import FEATURES

    if feature not in FEATURES:
        raise ValueError(f"Unknown feature {feature!r}; known: {', '.join(FEATURES)}")
    sql = f"SELECT event_time, {feature} FROM model_references WHERE version = ? ORDER BY seq LIMIT ?"
    return _columns(conn, sql, (version, int(limit)), ("event_time", feature))


# -- drift checks and alerts (detector tables) ---------------------------------------------------

def latest_check(conn: Connection) -> dict | None:
    """The newest drift check (one row from the checked_at index), or ``None``."""
    row = conn.execute(f"SELECT {', '.join(CHECK_COLUMNS)} FROM drift_checks ORDER BY checked_at DESC LIMIT 1"
                       ).fetchone()
    return None if row is None else dict(zip(CHECK_COLUMNS, row))


def checks_since(conn: Connection, *, since_s: float, limit: int) -> Table:
    """Drift checks with ``checked_at >= since_s``, at most the newest ``limit``, oldest first."""
    sql = (f"SELECT {', '.join(CHECK_COLUMNS)} FROM drift_checks WHERE checked_at >= ? "
           "ORDER BY checked_at DESC LIMIT ?")
    return _columns(conn, sql, (since_s, int(limit)), CHECK_COLUMNS).reversed()


def results_for_checks(conn: Connection, *, first_check_id: int, last_check_id: int) -> Table:
    """Per-feature drift results of checks ``first_check_id..last_check_id`` (primary-key range)."""
    sql = (f"SELECT {', '.join(RESULT_COLUMNS)} FROM drift_results WHERE check_id >= ? AND check_id <= ? "
           "ORDER BY check_id, feature")
    return _columns(conn, sql, (int(first_check_id), int(last_check_id)), RESULT_COLUMNS)


def first_check_with_true_drift(conn: Connection) -> dict | None:
    """The first check whose window held simulated drift (``true_intensity > 0``), or ``None``.

    Reads the checked_at index in order and stops at the first match, so its cost is the number
    of checks before the drift began, not the length of history after it.
    """
    row = conn.execute("SELECT id, checked_at, window_start, window_end FROM drift_checks "
                       "WHERE true_intensity > 0 ORDER BY checked_at LIMIT 1").fetchone()
    return None if row is None else dict(zip(("id", "checked_at", "window_start", "window_end"), row))


def alerts_since(conn: Connection, *, since_s: float, limit: int) -> Table:
    """Alerts with ``created_at >= since_s``, newest first, at most ``limit``."""
    sql = (f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE created_at >= ? "
           "ORDER BY created_at DESC, id DESC LIMIT ?")
    return _columns(conn, sql, (since_s, int(limit)), ALERT_COLUMNS)


def alert_counts_since(conn: Connection, *, since_s: float) -> dict[str, int]:
    """Number of alerts per severity with ``created_at >= since_s`` (index range)."""
    rows = conn.execute("SELECT severity, COUNT(*) FROM alerts WHERE created_at >= ? GROUP BY severity",
                        (since_s,)).fetchall()
    return {str(s): int(n) for s, n in rows}


def first_alert_after(conn: Connection, *, since_s: float, severity: str, source: str) -> dict | None:
    """The first alert of ``severity`` from ``source`` with ``created_at >= since_s``, or ``None``."""
    row = conn.execute("SELECT id, created_at, message FROM alerts WHERE created_at >= ? AND severity = ? "
                       "AND source = ? ORDER BY created_at LIMIT 1", (since_s, severity, source)).fetchone()
    return None if row is None else dict(zip(("id", "created_at", "message"), row))


# -- models and performance (detector tables) ----------------------------------------------------

def recent_models(conn: Connection, *, limit: int) -> Table:
    """The newest ``limit`` model versions (the (major, minor) index, newest first)."""
    sql = (f"SELECT {', '.join(MODEL_COLUMNS)} FROM models ORDER BY major DESC, minor DESC LIMIT ?")
    return _columns(conn, sql, (int(limit),), MODEL_COLUMNS)


def champion(conn: Connection) -> dict | None:
    """The model whose status is ``champion`` (at most one), or ``None`` before the first model.

    The models table holds one row per trained version (a few per simulated day); an index on
    ``status`` would make this a lookup.
    """
    row = conn.execute(f"SELECT {', '.join(MODEL_COLUMNS)} FROM models WHERE status = 'champion' "
                       "ORDER BY major DESC, minor DESC LIMIT 1").fetchone()
    return None if row is None else dict(zip(MODEL_COLUMNS, row))


def model_events_since(conn: Connection, *, since_s: float, limit: int) -> Table:
    """Model events with ``at >= since_s``, newest first, at most ``limit``."""
    sql = (f"SELECT {', '.join(MODEL_EVENT_COLUMNS)} FROM model_events WHERE at >= ? "
           "ORDER BY at DESC, id DESC LIMIT ?")
    return _columns(conn, sql, (since_s, int(limit)), MODEL_EVENT_COLUMNS)


def performance_since(conn: Connection, *, since_s: float, limit: int) -> Table:
    """Performance windows with ``window_end >= since_s``, at most the newest ``limit``, oldest first."""
    sql = (f"SELECT {', '.join(PERFORMANCE_COLUMNS)} FROM performance WHERE window_end >= ? "
           "ORDER BY window_end DESC LIMIT ?")
    return _columns(conn, sql, (since_s, int(limit)), PERFORMANCE_COLUMNS).reversed()


def latest_performance(conn: Connection, *, since_s: float, model_version: str | None = None) -> dict | None:
    """The newest performance window ending at or after ``since_s`` (of ``model_version`` if given).

    Walks the window_end index from the newest row and stops at the first match; ``since_s``
    bounds the walk when the version has no window yet.
    """
    cols = ", ".join(PERFORMANCE_COLUMNS)
    if model_version is None:
        row = conn.execute(f"SELECT {cols} FROM performance WHERE window_end >= ? ORDER BY window_end DESC LIMIT 1",
                           (since_s,)).fetchone()
    else:
        row = conn.execute(f"SELECT {cols} FROM performance WHERE window_end >= ? AND model_version = ? "
                           "ORDER BY window_end DESC LIMIT 1", (since_s, model_version)).fetchone()
    return None if row is None else dict(zip(PERFORMANCE_COLUMNS, row))
