"""SQL of the model lifecycle tables: models, model_events, predictions, performance, detector_state.

Also ``model_references``: the drift-reference sample of each champion.

Writers: the detector (all six) and the rollback command (models, model_events). Every query
is bounded (primary key, an indexed time range or a LIMIT). Functions whose name ends in
``_in_transaction`` expect the caller to hold a :func:`rtml.storage.transaction`; the others
open their own short one when they write.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rtml.storage.db import Connection, bulk_insert, insert_returning_id, transaction

MODEL_STATUSES = ("champion", "archived", "rejected", "candidate")
MODEL_EVENTS = ("trained", "promoted", "rejected", "rolled_back", "refused")
MODEL_COLUMNS = ("version", "major", "minor", "file", "sha256", "created_at", "promoted_at", "train_start",
                 "train_end", "n_train", "features", "library_versions", "metrics", "status", "reason")
EVENT_COLUMNS = ("id", "at", "real_time", "event", "version", "from_version", "actor", "reason", "details")
PERFORMANCE_COLUMNS = ("window_start", "window_end", "model_version", "n_rows", "base_rate", "accuracy",
                       "roc_auc", "precision", "recall", "f1", "log_loss", "brier", "computed_at")
PREDICTION_COLUMNS = ("interaction_id", "event_time", "model_version", "probability", "predicted", "scored_at")
_UPSERT_STATE = ("INSERT INTO detector_state (key, value) VALUES (?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


@dataclass(frozen=True)
class ModelRow:
    """One registry row (JSON columns decoded)."""

    version: str
    major: int
    minor: int
    file: str
    sha256: str
    created_at: float
    promoted_at: float | None
    train_start: float | None
    train_end: float | None
    n_train: int | None
    features: list
    library_versions: dict
    metrics: dict
    status: str
    reason: str | None


@dataclass(frozen=True)
class ModelEvent:
    """One row of the model_events log."""

    id: int
    at: float
    real_time: float
    event: str
    version: str | None
    from_version: str | None
    actor: str
    reason: str | None
    details: dict


def _model_row(r: Sequence) -> ModelRow:
    return ModelRow(r[0], int(r[1]), int(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                    json.loads(r[10] or "[]"), json.loads(r[11] or "{}"), json.loads(r[12] or "{}"), r[13], r[14])


_SELECT_MODEL = f"SELECT {', '.join(MODEL_COLUMNS)} FROM models"


# -- models -------------------------------------------------------------------------------------
def insert_model_in_transaction(conn: Connection, row: ModelRow) -> None:
    """Insert a registry row (the version must be new)."""
    if row.status not in MODEL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(MODEL_STATUSES)}, got {row.status!r}")
    conn.execute(
        f"INSERT INTO models ({', '.join(MODEL_COLUMNS)}) VALUES ({', '.join('?' for _ in MODEL_COLUMNS)})",
        (row.version, row.major, row.minor, row.file, row.sha256, row.created_at, row.promoted_at,
         row.train_start, row.train_end, row.n_train, json.dumps(row.features),
         json.dumps(row.library_versions), json.dumps(row.metrics), row.status, row.reason))


def set_model_status_in_transaction(conn: Connection, version: str, *, status: str, reason: str | None,
                                    promoted_at: float | None = None) -> None:
    """Change one model's status (and reason; ``promoted_at`` too when given)."""
    if status not in MODEL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(MODEL_STATUSES)}, got {status!r}")
    if promoted_at is None:
        conn.execute("UPDATE models SET status = ?, reason = ? WHERE version = ?", (status, reason, version))
    else:
        conn.execute("UPDATE models SET status = ?, reason = ?, promoted_at = ? WHERE version = ?",
                     (status, reason, promoted_at, version))


def champion_versions_in_transaction(conn: Connection) -> list[str]:
    """Versions whose status is champion (normally one; the registry keeps it so)."""
    return [r[0] for r in conn.execute("SELECT version FROM models WHERE status = ? ORDER BY major, minor",
                                       ("champion",))]


def read_model(conn: Connection, version: str) -> ModelRow | None:
    """The registry row of ``version`` (primary key lookup), or ``None``."""
    r = conn.execute(f"{_SELECT_MODEL} WHERE version = ?", (version,)).fetchone()
    return _model_row(r) if r else None


def read_champion(conn: Connection) -> ModelRow | None:
    """The champion's registry row, or ``None`` before the first model.

    The models table holds one row per trained model (a few per simulated day at most), so
    this small scan is cheap; the detector calls it only when :func:`last_event_id` moved.
    """
    r = conn.execute(f"{_SELECT_MODEL} WHERE status = ? ORDER BY major DESC, minor DESC LIMIT 1",
                     ("champion",)).fetchone()
    return _model_row(r) if r else None


def latest_version(conn: Connection) -> str | None:
    """The highest version ever registered (``models_major_minor`` index), or ``None``."""
    r = conn.execute("SELECT version FROM models ORDER BY major DESC, minor DESC LIMIT 1").fetchone()
    return r[0] if r else None


def list_models(conn: Connection, *, limit: int = 100) -> list[ModelRow]:
    """The newest ``limit`` registry rows, newest first."""
    rows = conn.execute(f"{_SELECT_MODEL} ORDER BY major DESC, minor DESC LIMIT ?", (limit,)).fetchall()
    return [_model_row(r) for r in rows]


# -- model_events -------------------------------------------------------------------------------
def insert_event_in_transaction(conn: Connection, *, at: float, event: str, version: str | None,
                                from_version: str | None = None, actor: str = "detector",
                                reason: str | None = None, details: dict | None = None) -> int:
    """Append a model event; returns its id."""
    if event not in MODEL_EVENTS:
        raise ValueError(f"event must be one of {', '.join(MODEL_EVENTS)}, got {event!r}")
    return insert_returning_id(
        conn, "INSERT INTO model_events (at, real_time, event, version, from_version, actor, reason, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (at, time.time(), event, version, from_version, actor, reason, json.dumps(details or {})))


def insert_event(conn: Connection, **kwargs) -> int:
    """:func:`insert_event_in_transaction` in its own transaction."""
    with transaction(conn):
        return insert_event_in_transaction(conn, **kwargs)


def last_event_id(conn: Connection) -> int:
    """Id of the newest model event (0 when none): the detector's cheap "did the registry change?"."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM model_events").fetchone()[0])


def recent_events(conn: Connection, *, limit: int = 50, events: Iterable[str] | None = None
                  ) -> list[ModelEvent]:
    """Newest model events first (optionally only the given kinds)."""
    cols = ", ".join(EVENT_COLUMNS)
    if events is None:
        rows = conn.execute(f"SELECT {cols} FROM model_events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    else:
        kinds = list(events)
        marks = ", ".join("?" for _ in kinds)
        rows = conn.execute(f"SELECT {cols} FROM model_events WHERE event IN ({marks}) ORDER BY id DESC LIMIT ?",
                            (*kinds, limit)).fetchall()
    return [ModelEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8] or "{}")) for r in rows]


# -- detector_state -----------------------------------------------------------------------------
def read_state(conn: Connection, key: str, default=None):
    """A JSON value of ``detector_state`` (``default`` when absent)."""
    r = conn.execute("SELECT value FROM detector_state WHERE key = ?", (key,)).fetchone()
    return default if r is None else json.loads(r[0])


def write_state_in_transaction(conn: Connection, key: str, value) -> None:
    """Upsert one ``detector_state`` key (JSON-encoded)."""
    conn.execute(_UPSERT_STATE, (key, json.dumps(value)))


def write_state(conn: Connection, key: str, value) -> None:
    """:func:`write_state_in_transaction` in its own transaction."""
    with transaction(conn):
        write_state_in_transaction(conn, key, value)


# -- predictions --------------------------------------------------------------------------------
def insert_predictions_in_transaction(conn: Connection, rows: Iterable[tuple]) -> None:
    """Insert ``(interaction_id, event_time, model_version, probability, predicted, scored_at)`` rows.

    A plain INSERT: the primary key makes a second score of the same interaction an error,
    never a silent overwrite.
    """
    bulk_insert(conn, "predictions", PREDICTION_COLUMNS, rows)


def max_scored_id(conn: Connection) -> int:
    """The highest scored interaction id (primary key lookup), 0 when nothing was scored."""
    return int(conn.execute("SELECT COALESCE(MAX(interaction_id), 0) FROM predictions").fetchone()[0])


def read_labelled_predictions(conn: Connection, *, start_s: float, end_s: float) -> list[tuple]:
    """``(model_version, probability, predicted, converted)`` of predictions with
    ``start_s <= event_time < end_s``, joined with their interactions by id.

    Range scan of ``predictions_event_time``, then a primary-key lookup per row.
    """
    return conn.execute(
        "SELECT p.model_version, p.probability, p.predicted, i.converted FROM predictions AS p "
        "JOIN interactions AS i ON i.id = p.interaction_id WHERE p.event_time >= ? AND p.event_time < ?",
        (start_s, end_s)).fetchall()


def delete_predictions_before(conn: Connection, *, before_s: float, batch_rows: int,
                              max_batches: int | None = None) -> int:
    """Delete predictions with ``event_time < before_s`` (retention) in transactions of
    ``batch_rows`` rows, at most ``max_batches`` of them; returns how many were deleted."""
    deleted = 0
    for _ in itertools.count() if max_batches is None else range(max_batches):
        with transaction(conn):
            cur = conn.execute("DELETE FROM predictions WHERE interaction_id IN (SELECT interaction_id FROM "
                               "predictions WHERE event_time < ? ORDER BY event_time LIMIT ?)",
                               (before_s, batch_rows))
            n = cur.rowcount
        deleted += n
        if n < batch_rows:
            break
    return deleted


# -- performance --------------------------------------------------------------------------------
def insert_performance_in_transaction(conn: Connection, *, window_start: float, window_end: float,
                                      model_version: str, metrics: dict) -> int:
    """Append one window's metrics for one model version; returns the row id."""
    return insert_returning_id(
        conn, f"INSERT INTO performance ({', '.join(PERFORMANCE_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in PERFORMANCE_COLUMNS)})",
        (window_start, window_end, model_version, int(metrics["n_rows"]), metrics.get("base_rate"),
         metrics.get("accuracy"), metrics.get("roc_auc"), metrics.get("precision"), metrics.get("recall"),
         metrics.get("f1"), metrics.get("log_loss"), metrics.get("brier"), time.time()))


def recent_performance(conn: Connection, *, since_s: float, limit: int = 1000) -> list[dict]:
    """Performance rows with ``window_end >= since_s``, oldest first (at most ``limit``)."""
    rows = conn.execute(
        f"SELECT {', '.join(PERFORMANCE_COLUMNS)} FROM performance WHERE window_end >= ? "
        "ORDER BY window_end LIMIT ?", (since_s, limit)).fetchall()
    return [dict(zip(PERFORMANCE_COLUMNS, r)) for r in rows]


# -- the generator's baseline (read-only view of generator_batches) ------------------------------
def baseline_span(conn: Connection) -> tuple[float | None, float | None, int | None]:
    """``(sim_start, sim_end, last_id)`` covered by the generator's baseline batches (all ``None``
    before the backfill). Read-only; the generator owns the table."""
    r = conn.execute("SELECT MIN(sim_start), MAX(sim_end), MAX(last_id) FROM generator_batches WHERE kind = ?",
                     ("baseline",)).fetchone()
    return (r[0], r[1], r[2]) if r else (None, None, None)


def write_reference_sample(conn: Connection, version: str, frame) -> int:
    """Store ``frame`` (a Table with ``event_time``, every feature, ``drift_intensity``) as ``version``'s drift
    reference, replacing any earlier sample of that version, in one transaction. Returns the rows written."""
    from rtml.features import FEATURES

    columns = ("event_time",) + FEATURES + ("drift_intensity",)
    values = [frame[c].tolist() if c in frame else [None] * len(frame) for c in columns]
    with transaction(conn):
        conn.execute("DELETE FROM model_references WHERE version = ?", (version,))
        bulk_insert(conn, "model_references", ("version", "seq", *columns),
                    ((version, i, *row) for i, row in enumerate(zip(*values))))
    return len(frame)


def read_reference_sample(conn: Connection, version: str, *, limit: int):
    """``version``'s stored drift-reference sample (at most ``limit`` rows, in stored order), a Table."""
    from rtml.features import FEATURES
    from rtml.table import Table

    columns = ("event_time",) + FEATURES + ("drift_intensity",)
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM model_references WHERE version = ? ORDER BY seq LIMIT ?",
                        (version, int(limit))).fetchall()
    return Table.from_rows(rows, columns)
