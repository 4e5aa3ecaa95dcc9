"""Read-only SQL of the Prometheus exporter (:mod:`rtml.metrics`): what one scrape reads.

Every statement is a primary-key lookup, an indexed range or bounded by a LIMIT, so a scrape
costs the same on a day of history as on a month of it:

* drift: the newest check (``drift_checks_checked_at`` index, one row) and its per-feature
  results (``drift_results`` primary key prefix, one row per feature);
* alerts: new rows after an id (primary-key range, LIMIT) for the running totals, and a count
  per severity over a simulated-time range (``alerts_created_at`` index);
* models: the champion (``models_status`` index) and the newest performance window
  (``performance_window_end`` index);
* throughput: the highest interaction id and the highest scored id (primary keys) and the end
  of the generator's leading baseline batches (a few rows in primary-key order).

Nothing here writes. Run them inside ``rtml.storage.db.read_snapshot`` so that one scrape sees one
consistent state.
"""

from __future__ import annotations

import json

from rtml.storage.db import Connection

CHECK_COLUMNS = ("id", "checked_at", "n_reference", "n_current", "policy", "dataset_drift", "n_drifted",
                 "n_features", "share_drifted", "status", "true_intensity", "reference_version")
RESULT_COLUMNS = ("feature", "kind", "status", "drifted", "psi", "ks_statistic", "ks_pvalue", "js_distance",
                  "chi2_statistic", "chi2_pvalue", "missing_rate_reference", "missing_rate_current")
PERFORMANCE_COLUMNS = ("model_version", "window_start", "window_end", "n_rows", "base_rate", "accuracy",
                       "roc_auc", "precision", "recall", "f1", "log_loss", "brier")
CHAMPION_COLUMNS = ("version", "created_at", "promoted_at", "train_start", "train_end", "n_train", "metrics")
MAX_FEATURES = 1000          # bound on the per-check result rows read (the schema has 10 features)
MAX_PERFORMANCE_ROWS = 100   # bound on the versions of one performance window


def latest_check(conn: Connection) -> dict | None:
    """The newest drift check (``drift_checks_checked_at`` index, one row), or ``None``."""
    row = conn.execute(f"SELECT {', '.join(CHECK_COLUMNS)} FROM drift_checks "
                       "ORDER BY checked_at DESC, id DESC LIMIT 1").fetchone()
    return None if row is None else dict(zip(CHECK_COLUMNS, row))


def check_results(conn: Connection, check_id: int) -> list[dict]:
    """Per-feature results of one check (primary-key prefix), in feature order."""
    rows = conn.execute(f"SELECT {', '.join(RESULT_COLUMNS)} FROM drift_results WHERE check_id = ? "
                        "ORDER BY feature LIMIT ?", (int(check_id), MAX_FEATURES)).fetchall()
    return [dict(zip(RESULT_COLUMNS, r)) for r in rows]


def checks_high_water(conn: Connection) -> int:
    """The highest drift check id: checks ever run (ids are never reused; primary-key lookup)."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM drift_checks").fetchone()[0])


def alerts_after(conn: Connection, *, after_id: int, limit: int) -> list[tuple[int, str]]:
    """``(id, severity)`` of up to ``limit`` alerts with ``id > after_id``, in id order (primary-key range)."""
    return [(int(i), str(s)) for i, s in conn.execute(
        "SELECT id, severity FROM alerts WHERE id > ? ORDER BY id LIMIT ?", (int(after_id), int(limit)))]


def alerts_high_water(conn: Connection) -> int:
    """The highest alert id (0 when none; primary-key lookup)."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM alerts").fetchone()[0])


def alert_counts_since(conn: Connection, *, since_s: float) -> dict[str, int]:
    """Alerts per severity with simulated ``created_at >= since_s`` (``alerts_created_at`` range)."""
    rows = conn.execute("SELECT severity, COUNT(*) FROM alerts WHERE created_at >= ? GROUP BY severity",
                        (float(since_s),)).fetchall()
    return {str(s): int(n) for s, n in rows}


def champion(conn: Connection) -> dict | None:
    """The champion's registry row (``models_status`` index), ``metrics`` decoded, or ``None``."""
    row = conn.execute(f"SELECT {', '.join(CHAMPION_COLUMNS)} FROM models WHERE status = ? "
                       "ORDER BY major DESC, minor DESC LIMIT 1", ("champion",)).fetchone()
    if row is None:
        return None
    out = dict(zip(CHAMPION_COLUMNS, row))
    try:
        out["metrics"] = json.loads(out["metrics"] or "{}")
    except ValueError:
        out["metrics"] = {}
    return out


def latest_performance(conn: Connection) -> list[dict]:
    """The rows of the newest performance window, one per model version (``performance_window_end``)."""
    sql = (f"SELECT {', '.join(PERFORMANCE_COLUMNS)} FROM performance "
           "WHERE window_end = (SELECT MAX(window_end) FROM performance) ORDER BY model_version LIMIT ?")
    return [dict(zip(PERFORMANCE_COLUMNS, r)) for r in conn.execute(sql, (MAX_PERFORMANCE_ROWS,))]


def interactions_high_water(conn: Connection) -> int:
    """The highest interaction id: rows the generator ever wrote (ids are never reused; primary key)."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM interactions").fetchone()[0])


def baseline_last_id(conn: Connection) -> int:
    """The last interaction id of the leading baseline batches (0 before the backfill).

    The baseline is written first, so only the batches before the first other one are read
    (primary-key order, a handful of rows). Scoring starts just after this id.
    """
    row = conn.execute(
        "SELECT MAX(last_id) FROM generator_batches WHERE kind = ? AND batch_id < COALESCE("
        "(SELECT batch_id FROM generator_batches WHERE kind != ? ORDER BY batch_id LIMIT 1), "
        "9223372036854775807)", ("baseline", "baseline")).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])
