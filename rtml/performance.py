"""Live model performance: per window and per model version, from predictions and their labels.

A label may be used only once ``label_delay_minutes`` of simulated time have passed since its
interaction, so the window ending at simulated ``now`` covers interactions with
``now - delay - window <= event_time < now - delay``. The join is bounded by that time range
(index on ``predictions.event_time``, then a primary-key lookup per row).
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

from rtml import modeling
from rtml.config import Settings
from rtml.storage import models as store
from rtml.storage import transaction
from rtml.storage.db import Connection

log = logging.getLogger(__name__)


def usable_window(settings: Settings, now_s: float) -> tuple[float, float]:
    """``(start_s, end_s)`` of the performance window whose labels are usable at ``now_s``."""
    end = now_s - settings.model.label_delay_minutes * 60.0
    return end - settings.model.perf_window_minutes * 60.0, end


def compute_performance(conn: Connection, *, start_s: float, end_s: float
                        ) -> dict[str, dict[str, float | int | None]]:
    """Metrics of every model version that scored rows in ``[start_s, end_s)``, keyed by version."""
    grouped: dict[str, list[tuple]] = defaultdict(list)
    for version, probability, _predicted, converted in store.read_labelled_predictions(
            conn, start_s=start_s, end_s=end_s):
        grouped[version].append((probability, converted))
    out = {}
    for version, pairs in grouped.items():
        arr = np.asarray(pairs, dtype=float)
        out[version] = modeling.classification_metrics(y_true=arr[:, 1].astype(np.int64), probability=arr[:, 0])
    return out


def update_performance(conn: Connection, settings: Settings, *, now_s: float
                       ) -> dict[str, dict[str, float | int | None]]:
    """Compute the window ending at ``now_s`` (minus the label delay) and store one row per version.

    Returns the metrics keyed by version (empty when no labelled prediction is in the window).
    """
    start, end = usable_window(settings, now_s)
    results = compute_performance(conn, start_s=start, end_s=end)
    if results:
        with transaction(conn):
            for version, metrics in sorted(results.items()):
                store.insert_performance_in_transaction(conn, window_start=start, window_end=end,
                                                        model_version=version, metrics=metrics)
    return results
