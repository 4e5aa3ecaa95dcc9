"""SQL of the detector's monitoring tables: drift_checks, drift_results, alerts.

The detector is their writer; the supervisor also appends component alerts (``source =
'supervisor'``) — alerts is an append-only log, so two writers never touch the same row.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from rtml.storage.db import Connection, insert_returning_id, transaction

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class AlertRow:
    """One stored alert."""

    id: int
    created_at: float
    real_time: float
    severity: str
    source: str
    message: str
    details: list | dict
    check_id: int | None


def insert_alert(conn: Connection, *, created_at: float, severity: str, source: str, message: str,
                 details: list | dict | None = None, check_id: int | None = None,
                 in_transaction: bool = False) -> int:
    """Append an alert; returns its id. ``in_transaction=True`` when the caller holds one."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    sql = ("INSERT INTO alerts (created_at, real_time, severity, source, message, details, check_id) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
    params = (created_at, time.time(), severity, source, message, json.dumps(details or []), check_id)
    if in_transaction:
        return insert_returning_id(conn, sql, params)
    with transaction(conn):
        return insert_returning_id(conn, sql, params)


def recent_alerts(conn: Connection, *, limit: int = 50, since_s: float | None = None) -> list[AlertRow]:
    """Newest alerts first (at most ``limit``; optionally only ``created_at >= since_s``)."""
    if since_s is None:
        rows = conn.execute("SELECT id, created_at, real_time, severity, source, message, details, check_id "
                            "FROM alerts ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    else:
        rows = conn.execute("SELECT id, created_at, real_time, severity, source, message, details, check_id "
                            "FROM alerts WHERE created_at >= ? ORDER BY id DESC LIMIT ?", (since_s, limit)).fetchall()
    return [AlertRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "[]"), r[7]) for r in rows]


CHECK_COLUMNS = ("checked_at", "real_time", "window_start", "window_end", "reference_start", "reference_end",
                 "reference_version", "n_reference", "n_current", "policy", "dataset_drift", "n_drifted",
                 "n_features", "share_drifted", "status", "true_intensity")
RESULT_COLUMNS = ("check_id", "feature", "kind", "status", "drifted", "psi", "ks_statistic", "ks_pvalue",
                  "js_distance", "chi2_statistic", "chi2_pvalue", "missing_rate_reference",
                  "missing_rate_current", "min_detectable_shift", "thresholds", "details")


def insert_check(conn: Connection, *, check: dict, results: list[dict],
                 alert: dict | None = None) -> tuple[int, int | None]:
    """Store one drift check, its per-feature results and its alert (if any) in one transaction.

    ``check`` has the keys of :data:`CHECK_COLUMNS` (``real_time`` optional); each result has
    the keys of :data:`RESULT_COLUMNS` except ``check_id`` (``thresholds``/``details`` as dicts);
    ``alert`` has ``created_at, severity, source, message, details``. Returns the check id and
    the alert id.
    """
    row = dict(check, real_time=check.get("real_time", time.time()))
    with transaction(conn):
        check_id = insert_returning_id(conn, f"INSERT INTO drift_checks ({', '.join(CHECK_COLUMNS)}) "
                                       f"VALUES ({', '.join('?' for _ in CHECK_COLUMNS)})",
                                       tuple(row.get(c) for c in CHECK_COLUMNS))
        conn.executemany(
            f"INSERT INTO drift_results ({', '.join(RESULT_COLUMNS)}) VALUES ({', '.join('?' for _ in RESULT_COLUMNS)})",
            [tuple(check_id if c == "check_id" else
                   json.dumps(r.get(c) or {}) if c in ("thresholds", "details") else r.get(c)
                   for c in RESULT_COLUMNS) for r in results])
        alert_id = None
        if alert is not None:
            alert_id = insert_alert(conn, created_at=alert["created_at"], severity=alert["severity"],
                                    source=alert.get("source", "drift"), message=alert["message"],
                                    details=alert.get("details"), check_id=check_id, in_transaction=True)
    return check_id, alert_id


def last_check_time(conn: Connection) -> float | None:
    """Simulated time of the newest drift check (index lookup)."""
    row = conn.execute("SELECT MAX(checked_at) FROM drift_checks").fetchone()
    return None if row[0] is None else float(row[0])


def window_intensity(conn: Connection, *, start_s: float, end_s: float) -> float | None:
    """Mean ground-truth drift intensity of the interactions in ``[start_s, end_s)``."""
    row = conn.execute("SELECT AVG(drift_intensity) FROM interactions WHERE event_time >= ? AND event_time < ?",
                       (start_s, end_s)).fetchone()
    return None if row[0] is None else float(row[0])
