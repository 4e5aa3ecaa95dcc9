"""Data access of the dashboard: one bounded read of everything a refresh shows.

:func:`load_snapshot` runs the statements of :mod:`rtml.storage.dashboard` on a read-only
connection and returns a :class:`Snapshot` of plain values and
:class:`~rtml.table.Table` (named numpy columns; picklable, so Streamlit's
``cache_data`` can share it between tabs). :func:`load_distribution` samples one
feature's reference and current windows. No Streamlit here: the benchmark calls these directly.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field

import numpy as np

from rtml.simulation import CATEGORICAL_FEATURES, FEATURES
from rtml.storage import dashboard as q
from rtml.storage.db import Connection
from rtml.storage.heartbeats import Heartbeat, read_heartbeats, sim_now
from rtml.table import Table, is_missing
from rtml.ui import transforms

HOUR_S = 3600.0
DAY_S = 86400.0

#: Most rows any one panel reads per refresh (a history window of 7 simulated days at one check
#: per 5 minutes is 2,016 checks).
MAX_CHECKS = 2500
MAX_ALERTS = 300
MAX_MODEL_EVENTS = 300
MAX_PERFORMANCE = 2500
MAX_MODELS = 50


@dataclass(frozen=True)
class Counts:
    """Interaction counts for the header."""

    last_hour: int
    generated: int
    kept: int


@dataclass(frozen=True)
class Onset:
    """Ground truth vs detection: when simulated drift began and when a critical alert followed."""

    onset_s: float
    first_critical_s: float | None
    first_critical_message: str | None

    @property
    def delay_s(self) -> float | None:
        """Simulated seconds from the onset to the first critical drift alert (``None``: not yet)."""
        return None if self.first_critical_s is None else self.first_critical_s - self.onset_s


@dataclass(frozen=True)
class Snapshot:
    """Everything one dashboard refresh shows, read in one go.

    ``now_s`` is simulated now (``None`` before the generator ever ran); every table is bounded
    to ``[since_s, now]`` or a LIMIT. The tables hold the columns of their query in
    :mod:`rtml.storage.dashboard` (``CHECK_COLUMNS``, ``RESULT_COLUMNS`` ...), with the JSON
    columns parsed: ``results["thresholds"]`` and ``models["metrics"]`` hold dicts,
    ``alerts["details"]`` lists (or dicts).
    """

    now_s: float | None
    speed: float
    real_now: float
    since_s: float
    counts: Counts
    latest_check: dict | None
    checks: Table
    results: Table
    alerts: Table
    alert_counts: dict[str, int]
    alert_counts_since_s: float
    champion: dict | None
    champion_performance: dict | None
    models: Table
    model_events: Table
    performance: Table
    heartbeats: dict[str, Heartbeat]
    onset: Onset | None
    baseline: tuple[float, float] | None
    load_ms: float = field(default=0.0)

    @property
    def has_data(self) -> bool:
        """Whether the generator has written anything yet."""
        return self.counts.generated > 0

    @functools.cached_property
    def latest_results(self) -> Table:
        """The newest check's per-feature results (:func:`rtml.ui.transforms.latest_results`), computed once."""
        return transforms.latest_results(self.results, self.latest_check)


@dataclass(frozen=True)
class Distribution:
    """Samples of one feature on the reference and the current side (missing values dropped).

    ``reference`` and ``current`` are ``float64`` arrays for a numerical feature, ``object``
    arrays of ``str`` for a categorical one.
    """

    feature: str
    kind: str
    reference: np.ndarray
    current: np.ndarray
    reference_window: tuple[float, float] | None
    current_window: tuple[float, float] | None
    reference_label: str
    current_label: str


def _json(text: str | None, default):
    """``text`` parsed as JSON, or ``default`` when it is empty or not JSON."""
    if not text:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def load_snapshot(conn: Connection, *, window_s: float, alert_counts_s: float = DAY_S,
                  real_now: float | None = None) -> Snapshot:
    """Read everything one refresh shows (bounded: cost independent of the length of history).

    Parameters
    ----------
    conn : Connection
        A read-only connection (``rtml.storage.connect_readonly``).
    window_s : float
        History shown, in simulated seconds back from now (drift, alerts, performance).
    alert_counts_s : float, default=86400
        The "open alerts" count covers this many simulated seconds back from now.
    real_now : float, optional
        Wall-clock now (tests); default ``time.time()``.

    Returns
    -------
    Snapshot
    """
    started = time.perf_counter()
    real_now = time.time() if real_now is None else real_now
    heartbeats = read_heartbeats(conn)
    clock, speed = sim_now(conn, real_now=real_now)
    latest = q.latest_check(conn)
    if clock is None:  # no generator heartbeat yet: fall back to the newest check, else nothing
        clock = latest["checked_at"] if latest else None
    now = clock if clock is not None else real_now
    since = now - window_s
    generated, kept = q.interaction_totals(conn)
    counts = Counts(last_hour=q.count_interactions_between(conn, start_s=now - HOUR_S, end_s=now + 1e-6),
                    generated=generated, kept=kept)
    checks = q.checks_since(conn, since_s=since, limit=MAX_CHECKS)
    if len(checks):
        results = q.results_for_checks(conn, first_check_id=int(checks["id"].min()),
                                       last_check_id=int(checks["id"].max()))
    else:
        results = Table.no_rows(q.RESULT_COLUMNS)
    results = results.with_columns({"thresholds": _parsed_thresholds(results["thresholds"])})
    alerts = q.alerts_since(conn, since_s=since, limit=MAX_ALERTS)
    alerts = alerts.with_columns({"details": _object_column([_json(d, []) for d in alerts["details"]])})
    counts_since = now - alert_counts_s
    alert_counts = q.alert_counts_since(conn, since_s=counts_since)
    champ = q.champion(conn)
    if champ is not None:
        champ["metrics"] = _json(champ.get("metrics"), {})
    champ_perf = (q.latest_performance(conn, since_s=since, model_version=champ["version"])
                  if champ is not None else None)
    models = q.recent_models(conn, limit=MAX_MODELS)
    models = models.with_columns({"metrics": _object_column([_json(m, {}) for m in models["metrics"]])})
    events = q.model_events_since(conn, since_s=since, limit=MAX_MODEL_EVENTS)
    performance = q.performance_since(conn, since_s=since, limit=MAX_PERFORMANCE)
    onset = _onset(conn)
    baseline = q.baseline_window(conn)
    return Snapshot(now_s=clock, speed=speed, real_now=real_now, since_s=since, counts=counts, latest_check=latest,
                    checks=checks, results=results, alerts=alerts, alert_counts=alert_counts,
                    alert_counts_since_s=counts_since, champion=champ, champion_performance=champ_perf,
                    models=models, model_events=events, performance=performance, heartbeats=heartbeats,
                    onset=onset, baseline=baseline, load_ms=(time.perf_counter() - started) * 1000.0)


def _object_column(values: list) -> np.ndarray:
    """``values`` (parsed JSON: dicts, lists) as one ``object`` cell each."""
    return np.fromiter(values, dtype=object, count=len(values))


def _parsed_thresholds(texts: np.ndarray) -> np.ndarray:
    """The thresholds JSON of each result as a dict; they repeat from check to check, so each
    distinct text is parsed once (and its dict shared)."""
    parsed: dict = {}
    return _object_column([parsed[t] if t in parsed else parsed.setdefault(t, _json(t, {})) for t in texts])


def _onset(conn: Connection) -> Onset | None:
    """First simulated drift (from the checks' true intensity, refined on the raw rows) and the
    first critical drift alert at or after it."""
    first = q.first_check_with_true_drift(conn)
    if first is None:
        return None
    onset = first["checked_at"]
    if first["window_start"] is not None and first["window_end"] is not None:
        exact = q.first_drifted_event_time(conn, start_s=first["window_start"], end_s=first["window_end"] + 1e-6)
        if exact is not None:  # None when retention already deleted those rows
            onset = exact
    alert = q.first_alert_after(conn, since_s=onset, severity="critical", source="drift")
    return Onset(onset_s=float(onset), first_critical_s=None if alert is None else float(alert["created_at"]),
                 first_critical_message=None if alert is None else alert["message"])


def reference_and_current_windows(snapshot: Snapshot, *, current_window_s: float
                                  ) -> tuple[tuple[float, float] | None, str, tuple[float, float] | None, str]:
    """Which windows the distribution panel compares, and how to name them.

    Reference: the latest check's reference window (the champion's training window), else the
    champion's training window, else the baseline backfill. Current: the latest check's window,
    else the newest ``current_window_s`` simulated seconds.
    """
    check, champ = snapshot.latest_check, snapshot.champion
    if check and check.get("reference_start") is not None and check.get("reference_end") is not None:
        version = check.get("reference_version")
        ref = (check["reference_start"], check["reference_end"])
        ref_label = f"reference ({version} training window)" if version else "reference (baseline)"
    elif champ and champ.get("train_start") is not None and champ.get("train_end") is not None:
        ref, ref_label = (champ["train_start"], champ["train_end"]), f"reference ({champ['version']} training window)"
    elif snapshot.baseline is not None:
        ref, ref_label = snapshot.baseline, "reference (baseline, before live data)"
    else:
        ref, ref_label = None, "reference"
    if check and check.get("window_start") is not None and check.get("window_end") is not None:
        cur, cur_label = (check["window_start"], check["window_end"]), "current (latest check's window)"
    elif snapshot.now_s is not None:
        cur, cur_label = (snapshot.now_s - current_window_s, snapshot.now_s), "current (newest window)"
    else:
        cur, cur_label = None, "current"
    return ref, ref_label, cur, cur_label


def load_distribution(conn: Connection, *, feature: str, reference_window: tuple[float, float] | None,
                      current_window: tuple[float, float] | None, limit: int = 5000,
                      reference_label: str = "reference", current_label: str = "current",
                      reference_version: str | None = None) -> Distribution:
    """Sample ``feature`` on both sides: the newest ``limit`` rows of each window (never more).

    Parameters
    ----------
    conn : Connection
    feature : str
        One of :data:`rtml.simulation.FEATURES`.
    reference_window, current_window : (float, float) or None
        Simulated ``[start, end]``; ``None`` gives an empty side.
    limit : int, default=5000
    reference_label, current_label : str
        Legend names.
    reference_version : str, optional
        The model whose stored drift-reference sample is the reference (what the detector checks
        against; it outlives interaction retention). Without one, or when it has no sample, the
        reference window's interactions are sampled.
    """
    if feature not in FEATURES:
        raise ValueError(f"The 'feature' parameter of load_distribution must be one of {', '.join(FEATURES)}. "
                         f"Got {feature!r} instead.")

    kind = "categorical" if feature in CATEGORICAL_FEATURES else "numerical"

    def side(window: tuple[float, float] | None) -> np.ndarray:
        if window is None:
            return _present_values(np.array([], dtype=object), kind)
        rows = q.sample_feature(conn, feature=feature, start_s=window[0], end_s=window[1] + 1e-6, limit=limit)
        return _present_values(rows[feature], kind)

    reference = _present_values(np.array([], dtype=object), kind)
    if reference_version:
        reference = _present_values(q.reference_sample_feature(conn, version=reference_version, feature=feature,
                                                               limit=limit)[feature], kind)
    if not len(reference):
        reference = side(reference_window)
    return Distribution(feature=feature, kind=kind, reference=reference, current=side(current_window),
                        reference_window=reference_window, current_window=current_window,
                        reference_label=reference_label, current_label=current_label)


def _present_values(values: np.ndarray, kind: str) -> np.ndarray:
    """``values`` without missing ones (``None``, ``nan``): ``float64`` for a numerical feature,
    ``object`` (``str``) for a categorical one."""
    if kind == "numerical":
        numbers = np.asarray(values, dtype=np.float64)
        return numbers[~np.isnan(numbers)]
    kept = [v for v in values if not is_missing(v)]
    return np.fromiter(kept, dtype=object, count=len(kept))
