"""Exactly-once scoring: every interaction gets one prediction from the champion of its time.

The cursor (the highest scored interaction id) lives in ``detector_state['scoring_cursor']``
and is written in the *same* transaction as the predictions it covers, so a process killed at
any moment leaves the cursor and the predictions consistent: a restarted detector continues
right after the last committed batch — nothing is scored twice (the primary key would refuse
it anyway) and nothing is skipped. Interaction ids grow with commit order (one generator, one
writer transaction per batch), so "id > cursor" is exactly "not scored yet".

The baseline is training data, not traffic: a fresh cursor starts after the last baseline row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sklearn.pipeline import Pipeline

from rtml import modeling
from rtml.storage import models as store
from rtml.storage import transaction
from rtml.storage.interactions import read_after_id
from rtml.storage.db import Connection

log = logging.getLogger(__name__)

CURSOR_KEY = "scoring_cursor"


@dataclass(frozen=True)
class ScoreResult:
    """What one call of :func:`score_pending` did."""

    n_scored: int
    cursor: int
    more_pending: bool


def load_cursor(conn: Connection) -> int:
    """The committed scoring cursor; a first call fixes it just after the baseline.

    Returns the highest interaction id already scored (or deliberately skipped as baseline).
    """
    stored = store.read_state(conn, CURSOR_KEY)
    scored = store.max_scored_id(conn)
    if stored is not None:
        if scored > int(stored):  # cannot happen while both are written together; be safe anyway
            log.warning("Scoring cursor %s behind the newest prediction %d; moving it", stored, scored)
        return max(int(stored), scored)
    _, _, last_baseline_id = store.baseline_span(conn)
    cursor = max(int(last_baseline_id or 0), scored)
    with transaction(conn):
        if store.read_state(conn, CURSOR_KEY) is None:
            store.write_state_in_transaction(conn, CURSOR_KEY, cursor)
    log.info("Scoring starts after interaction %d (the end of the baseline)", cursor)
    return cursor


def score_pending(conn: Connection, *, model: Pipeline, version: str, cursor: int, batch_rows: int,
                  max_batches: int = 1) -> ScoreResult:
    """Score up to ``max_batches`` batches of interactions with ``id > cursor``.

    Parameters
    ----------
    conn : Connection
        The detector's writer connection.
    model : Pipeline
        The serving model.
    version : str
        Its version, stored with each prediction.
    cursor : int
        The committed cursor (from :func:`load_cursor` or the previous call).
    batch_rows : int
        Interactions per transaction (``model.score_batch_rows``).
    max_batches : int, default=1

    Returns
    -------
    ScoreResult
        Rows scored, the new cursor, and whether a full batch suggests more are waiting.
    """
    total = 0
    more = False
    for _ in range(max_batches):
        frame = read_after_id(conn, after_id=cursor, limit=batch_rows)
        if len(frame) == 0:
            more = False
            break
        probability = modeling.predict_proba(model, frame)
        predicted = (probability >= modeling.THRESHOLD).astype(int)
        scored_at = time.time()
        ids = frame["id"].astype(int).tolist()
        rows = zip(ids, frame["event_time"].astype(float).tolist(), [version] * len(ids),
                   probability.astype(float).tolist(), predicted.tolist(), [scored_at] * len(ids))
        with transaction(conn):
            store.insert_predictions_in_transaction(conn, rows)
            store.write_state_in_transaction(conn, CURSOR_KEY, ids[-1])
        cursor = ids[-1]
        total += len(ids)
        more = len(ids) == batch_rows
        if not more:
            break
    return ScoreResult(total, cursor, more)
