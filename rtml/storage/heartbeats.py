"""SQL of the heartbeats table (each component writes only its own row) and the shared clock."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from rtml.storage.db import Connection, transaction


@dataclass(frozen=True)
class Heartbeat:
    """One component's latest heartbeat."""

    component: str
    pid: int | None
    real_time: float
    sim_time: float | None
    speed: float | None
    started_at: float | None
    state: str
    details: dict

    def age_s(self, now: float | None = None) -> float:
        """Real seconds since this heartbeat was written."""
        return (time.time() if now is None else now) - self.real_time


def write_heartbeat(conn: Connection, *, component: str, pid: int, state: str,
                    sim_time: float | None = None, speed: float | None = None,
                    started_at: float | None = None, details: dict | None = None,
                    real_time: float | None = None) -> None:
    """Upsert ``component``'s heartbeat row in its own short transaction."""
    with transaction(conn):
        write_heartbeat_in_transaction(conn, component=component, pid=pid, state=state, sim_time=sim_time,
                                       speed=speed, started_at=started_at, details=details,
                                       real_time=real_time)


def write_heartbeat_in_transaction(conn: Connection, *, component: str, pid: int, state: str,
                                   sim_time: float | None = None, speed: float | None = None,
                                   started_at: float | None = None, details: dict | None = None,
                                   real_time: float | None = None) -> None:
    """The heartbeat upsert, inside a transaction the caller holds."""
    conn.execute(
        "INSERT INTO heartbeats (component, pid, real_time, sim_time, speed, started_at, state, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (component) DO UPDATE SET pid = excluded.pid, "
        "real_time = excluded.real_time, sim_time = excluded.sim_time, speed = excluded.speed, "
        "started_at = excluded.started_at, state = excluded.state, details = excluded.details",
        (component, pid, time.time() if real_time is None else real_time, sim_time, speed, started_at,
         state, json.dumps(details or {})))


def read_heartbeats(conn: Connection) -> dict[str, Heartbeat]:
    """Every component's heartbeat, keyed by component name."""
    rows = conn.execute("SELECT component, pid, real_time, sim_time, speed, started_at, state, details "
                        "FROM heartbeats ORDER BY component").fetchall()
    return {r[0]: Heartbeat(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7] or "{}")) for r in rows}


def sim_now(conn: Connection, *, real_now: float | None = None) -> tuple[float | None, float]:
    """Simulated now and speed, from the generator's heartbeat (the one clock).

    While the generator runs the clock advances at ``speed``; when its heartbeat says it
    stopped, the clock stands at the last simulated time it wrote. Returns ``(None, 1.0)`` before
    the generator ever ran.
    """
    row = conn.execute("SELECT real_time, sim_time, speed, state FROM heartbeats WHERE component = ?",
                       ("generator",)).fetchone()
    if row is None or row[1] is None:
        return None, 1.0
    real_time, sim_time, speed, state = row
    speed = float(speed or 1.0)
    if state != "running":
        return float(sim_time), speed
    now = time.time() if real_now is None else real_now
    # Never run ahead of the generator by more than one heartbeat-free minute of real time.
    return float(sim_time) + min(max(now - real_time, 0.0), 60.0) * speed, speed
