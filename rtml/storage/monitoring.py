"""SQL of the detector's monitoring tables: drift_checks, drift_results, alerts.

The detector is their writer; the supervisor also appends component alerts (``source =
'supervisor'``) — alerts is an append-only log, so two writers never touch the same row.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from rtml.storage.db import transaction

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


def insert_alert(conn: sqlite3.Connection, *, created_at: float, severity: str, source: str, message: str,
                 details: list | dict | None = None, check_id: int | None = None,
                 in_transaction: bool = False) -> int:
    """Append an alert; returns its id. ``in_transaction=True`` when the caller holds one."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    sql = ("INSERT INTO alerts (created_at, real_time, severity, source, message, details, check_id) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
    params = (created_at, time.time(), severity, source, message, json.dumps(details or []), check_id)
    if in_transaction:
        return int(conn.execute(sql, params).lastrowid)
    with transaction(conn):
        return int(conn.execute(sql, params).lastrowid)


def recent_alerts(conn: sqlite3.Connection, *, limit: int = 50, since_s: float | None = None) -> list[AlertRow]:
    """Newest alerts first (at most ``limit``; optionally only ``created_at >= since_s``)."""
    if since_s is None:
        rows = conn.execute("SELECT id, created_at, real_time, severity, source, message, details, check_id "
                            "FROM alerts ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    else:
        rows = conn.execute("SELECT id, created_at, real_time, severity, source, message, details, check_id "
                            "FROM alerts WHERE created_at >= ? ORDER BY id DESC LIMIT ?", (since_s, limit)).fetchall()
    return [AlertRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "[]"), r[7]) for r in rows]
