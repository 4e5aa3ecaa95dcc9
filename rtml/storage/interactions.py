"""SQL of the generator's tables: interactions, generator_batches, customers, sim_state.

The generator is their only writer.  A batch — its interactions, its ``generator_batches``
row, the customers whose history changed and the clock state — commits in one transaction:
all of it or none of it.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass

from typing import TYPE_CHECKING

from rtml.features import CUSTOMER_COLUMNS, FEATURES
from rtml.features import INTERACTION_COLUMNS as ROW_COLUMNS
from rtml.storage.db import Connection, DatabaseError, bulk_insert, last_sequence_id, transaction

if TYPE_CHECKING:  # numpy and the simulator are imported where used, keeping readers light
    import numpy as np

    from rtml.simulation import Batch, CustomerPool
    from rtml.table import Table

INTERACTION_COLUMNS = ("batch_id",) + ROW_COLUMNS
INSERT_INTERACTION = (f"INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
                      f"VALUES ({', '.join('?' for _ in INTERACTION_COLUMNS)})")
UPSERT_CUSTOMER = (f"INSERT INTO customers (slot, {', '.join(CUSTOMER_COLUMNS)}) "
                   f"VALUES (?, {', '.join('?' for _ in CUSTOMER_COLUMNS)}) "
                   "ON CONFLICT (slot) DO UPDATE SET "
                   + ", ".join(f"{c} = excluded.{c}" for c in CUSTOMER_COLUMNS))
UPSERT_SIM_STATE = ("INSERT INTO sim_state (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


@dataclass(frozen=True)
class BatchRecord:
    """What was committed for one batch."""

    batch_id: int
    n_rows: int
    first_id: int | None
    last_id: int | None


@dataclass(frozen=True)
class GeneratorState:
    """The generator's committed state: where the clock stands and the customer pool."""

    next_tick: int
    baseline_done: bool
    baseline_days_done: int
    pool: CustomerPool | None
    settings_fingerprint: dict


def write_batch(conn: Connection, batch: Batch, *, kind: str, sim_start: float, sim_end: float,
                pool: CustomerPool, changed_slots: np.ndarray | None, state: dict,
                first_tick: int | None = None, n_ticks: int | None = None) -> BatchRecord:
    """Commit one batch atomically.

    Parameters
    ----------
    conn : Connection
        A writer connection.
    batch : Batch
        The interactions.
    kind : {"baseline", "live", "replay"}
    sim_start, sim_end : float
        Simulated interval the batch covers.
    pool : CustomerPool
        The pool after the batch.
    changed_slots : ndarray or None
        Pool rows to persist (``None``: all of them).
    state : dict
        ``sim_state`` keys to set (values are JSON-encoded).
    first_tick, n_ticks : int, optional
        Live ticks covered.
    """
    import numpy as np

    with transaction(conn):
        row = conn.execute("SELECT COALESCE(MAX(batch_id), 0) + 1 FROM generator_batches").fetchone()
        batch_id = int(row[0])
        cols = [batch.columns[c].tolist() for c in ROW_COLUMNS]
        bulk_insert(conn, "interactions", INTERACTION_COLUMNS, zip(itertools.repeat(batch_id), *cols))
        first_id = last_id = None
        if len(batch):  # one writer: the batch's ids are consecutive
            last_id = last_sequence_id(conn, "interactions")
            first_id = last_id - len(batch) + 1
        conn.execute(
            "INSERT INTO generator_batches (batch_id, kind, first_tick, n_ticks, sim_start, sim_end, "
            "n_rows, first_id, last_id, real_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (batch_id, kind, first_tick, n_ticks, sim_start, sim_end, len(batch), first_id, last_id,
             time.time()))
        slots = np.arange(len(pool)) if changed_slots is None else np.asarray(changed_slots)
        if len(slots):
            conn.executemany(UPSERT_CUSTOMER, ((int(s),) + r for s, r in zip(slots, pool.rows(slots))))
        state = dict(state, next_customer_id=pool.next_id)
        conn.executemany(UPSERT_SIM_STATE, ((k, json.dumps(v)) for k, v in state.items()))
    return BatchRecord(batch_id, len(batch), first_id, last_id)


def read_generator_state(conn: Connection) -> GeneratorState:
    """The committed generator state (an empty database gives tick 0, no baseline, no pool)."""
    from rtml.simulation import CustomerPool

    state = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM sim_state")}
    rows = conn.execute(f"SELECT {', '.join(CUSTOMER_COLUMNS)} FROM customers ORDER BY slot").fetchall()
    pool = CustomerPool.from_rows(rows, next_id=int(state.get("next_customer_id", len(rows) + 1))) if rows else None
    return GeneratorState(next_tick=int(state.get("next_tick", 0)),
                          baseline_done=bool(state.get("baseline_done", False)),
                          baseline_days_done=int(state.get("baseline_days_done", 0)), pool=pool,
                          settings_fingerprint=state.get("fingerprint", {}))


def insert_rows_raw(conn: Connection, rows: list[tuple]) -> None:
    """Insert prepared interaction tuples (``INTERACTION_COLUMNS`` order) in one transaction.

    The benchmark's baseline: the same rows, no simulation, no bookkeeping.
    """
    with transaction(conn):
        bulk_insert(conn, "interactions", INTERACTION_COLUMNS, rows)


def delete_old_interactions(conn: Connection, *, before_s: float, batch_rows: int,
                            max_batches: int | None = None) -> int:
    """Delete interactions with ``event_time < before_s`` in transactions of ``batch_rows`` rows.

    Returns the number deleted. Each round is one short transaction, so readers and the other
    writers are never blocked for long.
    """
    deleted = 0
    for _ in itertools.count() if max_batches is None else range(max_batches):
        with transaction(conn):
            cur = conn.execute(
                "DELETE FROM interactions WHERE id IN (SELECT id FROM interactions "
                "WHERE event_time < ? ORDER BY event_time LIMIT ?)", (before_s, batch_rows))
            n = cur.rowcount
        deleted += n
        if n < batch_rows:
            break
    return deleted


def count_interactions(conn: Connection) -> int:
    """Number of stored interactions (a full COUNT: ~0.1 s at 10 M rows; not for refresh loops)."""
    return int(conn.execute("SELECT COUNT(*) FROM interactions").fetchone()[0])


def time_range(conn: Connection) -> tuple[float | None, float | None]:
    """Oldest and newest ``event_time`` (index lookups)."""
    lo = conn.execute("SELECT MIN(event_time) FROM interactions").fetchone()[0]
    hi = conn.execute("SELECT MAX(event_time) FROM interactions").fetchone()[0]
    return lo, hi


def read_window(conn: Connection, *, start_s: float, end_s: float,
                columns: tuple[str, ...] = ("id", "event_time") + FEATURES + ("converted", "drift_intensity"),
                limit: int | None = None) -> Table:
    """Interactions with ``start_s <= event_time < end_s`` (index range scan), oldest first.

    ``limit`` keeps the newest ``limit`` rows of the window.
    """
    from rtml.table import Table

    _check_columns(columns)
    cols = ", ".join(columns)
    if limit is None:
        sql = f"SELECT {cols} FROM interactions WHERE event_time >= ? AND event_time < ? ORDER BY event_time"
        params: tuple = (start_s, end_s)
    else:
        sql = (f"SELECT {cols} FROM (SELECT {cols} FROM interactions WHERE event_time >= ? AND event_time < ? "
               "ORDER BY event_time DESC LIMIT ?) AS newest ORDER BY event_time")
        params = (start_s, end_s, int(limit))
    return Table.from_rows(conn.execute(sql, params).fetchall(), columns)


def read_after_id(conn: Connection, *, after_id: int, limit: int,
                  columns: tuple[str, ...] = ("id", "event_time") + FEATURES) -> Table:
    """Up to ``limit`` interactions with ``id > after_id``, in id order (for scoring)."""
    from rtml.table import Table

    _check_columns(columns)
    sql = f"SELECT {', '.join(columns)} FROM interactions WHERE id > ? ORDER BY id LIMIT ?"
    return Table.from_rows(conn.execute(sql, (after_id, limit)).fetchall(), columns)


_ALLOWED_COLUMNS = frozenset(("id", "batch_id", "customer_id") + ROW_COLUMNS)


def _check_columns(columns: tuple[str, ...]) -> None:
    bad = [c for c in columns if c not in _ALLOWED_COLUMNS]
    if bad:
        raise ValueError(f"Unknown interaction column(s) {bad}; known: {sorted(_ALLOWED_COLUMNS)}")


def baseline_done(conn: Connection) -> bool:
    """Whether the generator has committed the whole baseline (False on an unmigrated database)."""
    try:
        row = conn.execute("SELECT value FROM sim_state WHERE key = ?", ("baseline_done",)).fetchone()
    except DatabaseError:  # no sim_state table yet
        return False
    return bool(row and json.loads(row[0]))
