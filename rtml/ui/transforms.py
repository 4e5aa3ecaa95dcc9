"""Pure transforms of the dashboard: snapshot values in, tables and plain-language facts out.

No I/O, no Streamlit and no pandas: tables are :class:`~rtml.table.Table` (named
numpy columns), so everything here is testable on hand-made ones.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from rtml.simulation import FEATURES
from rtml.table import Table, is_missing

#: Effect-size statistics (bigger = more drift) and p-values (smaller = more drift).
EFFECT_STATISTICS = ("psi", "js_distance", "ks_statistic")
PVALUE_STATISTICS = ("ks_pvalue", "chi2_pvalue")
STATISTICS = ("psi", "js_distance", "ks_statistic", "ks_pvalue", "chi2_pvalue")
STATISTIC_LABELS = {"psi": "PSI", "js_distance": "Jensen–Shannon distance", "ks_statistic": "KS statistic",
                    "ks_pvalue": "KS p-value", "chi2_pvalue": "χ² p-value"}

SEVERITY_ORDER = ("critical", "warning", "info")
SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff9f1c", "info": "#1f77b4"}
STATUS_COLOURS = {"critical": "#d62728", "warning": "#ff9f1c", "watch": "#e6c229", "ok": "#2ca02c",
                  "unknown": "#7f7f7f"}
#: Model events drawn as version-change markers.
VERSION_CHANGE_EVENTS = ("promoted", "rolled_back")


# -- formatting --------------------------------------------------------------------------------

def fmt_time(t_s: float | None, *, seconds: bool = False) -> str:
    """Simulated unix seconds as ``YYYY-MM-DD HH:MM`` (UTC); ``—`` for ``None``.

    Examples
    --------
    >>> fmt_time(1767225600.0)
    '2026-01-01 00:00'
    >>> fmt_time(None)
    '—'
    """
    if is_missing(t_s):
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.gmtime(float(t_s)))


def fmt_duration(seconds: float | None, *, compact: bool = False) -> str:
    """A duration in the two largest units (``compact``: ``4h 49m``).

    Examples
    --------
    >>> fmt_duration(42)
    '42 s'
    >>> fmt_duration(3 * 3600 + 20 * 60)
    '3 h 20 min'
    >>> fmt_duration(2 * 86400 + 3 * 3600)
    '2 d 3 h'
    >>> fmt_duration(4 * 3600 + 49 * 60, compact=True)
    '4h 49m'
    >>> fmt_duration(None)
    '—'
    """
    if compact:
        text = fmt_duration(seconds)
        for long, short in ((" min", "m"), (" h", "h"), (" d", "d"), (" s", "s")):
            text = text.replace(long, short)
        return text
    if is_missing(seconds):
        return "—"
    s = max(float(seconds), 0.0)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, rest = divmod(int(s), 60)
        return f"{m} min" if s >= 600 or rest == 0 else f"{m} min {rest} s"
    if s < 86400:
        h, m = divmod(int(s) // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(int(s) // 3600, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def fmt_bytes(n: float | None) -> str:
    """Bytes as MiB (``—`` for ``None``).

    Examples
    --------
    >>> fmt_bytes(73 * 2**20)
    '73 MiB'
    """
    return "—" if n is None else f"{n / 2**20:,.0f} MiB"


def to_datetime(seconds: np.ndarray | list) -> np.ndarray:
    """Unix seconds to naive UTC ``datetime64[us]`` (what the charts put on their x axis); ``nan`` → NaT.

    Examples
    --------
    >>> to_datetime([1767225600.5, None]).tolist()
    [datetime.datetime(2026, 1, 1, 0, 0, 0, 500000), None]
    """
    s = np.asarray(seconds, dtype=np.float64)
    microseconds = np.where(np.isnan(s), np.iinfo(np.int64).min, np.round(s * 1e6))  # int64 min is NaT
    return microseconds.astype(np.int64).view("datetime64[us]")


# -- drift -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DriftStatus:
    """The verdict the header shows: ``level`` is critical, warning, watch, ok or unknown."""

    level: str
    label: str
    drifted_features: tuple[str, ...]
    n_drifted: int
    n_features: int

    @property
    def colour(self) -> str:
        return STATUS_COLOURS[self.level]


def drift_status(latest_check: dict | None, latest_results: Table, *, critical_share: float,
                 critical_min_features: int) -> DriftStatus:
    """Classify the newest check the way the alert rules do.

    critical: dataset drift with at least ``critical_share`` of the features or
    ``critical_min_features`` of them drifting; warning: dataset drift; watch: some feature
    drifts but not enough for dataset drift; ok: nothing drifts; unknown: no check or not enough
    data.

    Parameters
    ----------
    latest_check : dict or None
        The newest row of ``drift_checks``.
    latest_results : Table
        Its per-feature results (``feature``, ``drifted``).
    critical_share : float
    critical_min_features : int
        The alert rules' thresholds for "critical".

    Returns
    -------
    DriftStatus

    Examples
    --------
    >>> check = {"dataset_drift": 1, "n_drifted": 4, "n_features": 10, "share_drifted": 0.4, "status": "ok"}
    >>> drift_status(check, Table({}), critical_share=0.3, critical_min_features=3).level
    'critical'
    >>> drift_status(None, Table({}), critical_share=0.3, critical_min_features=3).label
    'no checks yet'
    """
    if latest_check is None:
        return DriftStatus("unknown", "no checks yet", (), 0, 0)
    n_drifted, n_features = int(latest_check["n_drifted"]), int(latest_check["n_features"])
    names: tuple[str, ...] = ()
    if len(latest_results):
        names = tuple(latest_results["feature"][latest_results["drifted"].astype(bool)])
    if latest_check.get("status") == "not_enough_data" or n_features == 0:
        return DriftStatus("unknown", "not enough data", names, n_drifted, n_features)
    if latest_check["dataset_drift"]:
        critical = (latest_check["share_drifted"] >= critical_share or n_drifted >= critical_min_features)
        level = "critical" if critical else "warning"
        return DriftStatus(level, f"{level.upper()}: {n_drifted}/{n_features} drifting", names, n_drifted, n_features)
    if n_drifted:
        return DriftStatus("watch", f"watch: {n_drifted}/{n_features} drifting", names, n_drifted, n_features)
    return DriftStatus("ok", "no drift", names, n_drifted, n_features)


def drift_since(checks: Table, *, quiet_checks: int = 3) -> tuple[float | None, bool]:
    """When the current drift episode began: ``(checked_at, before_window)``.

    The episode is the run of checks ending at the newest one that contains no stretch of
    ``quiet_checks`` consecutive checks without dataset drift (isolated quiet checks do not end
    it). Returns ``(None, False)`` when the newest check shows no dataset drift;
    ``before_window`` is True when the run reaches back to the first check loaded.

    Parameters
    ----------
    checks : Table
        Drift checks oldest first (``checked_at``, ``dataset_drift``).
    quiet_checks : int, default=3

    Returns
    -------
    (float or None, bool)

    Examples
    --------
    >>> checks = Table({"checked_at": [0, 1, 2, 3, 4, 5, 6], "dataset_drift": [1, 0, 0, 0, 1, 0, 1]})
    >>> drift_since(checks)
    (4, False)
    """
    if not len(checks) or not checks["dataset_drift"][-1]:
        return None, False
    flags = checks["dataset_drift"].astype(bool)
    times = checks["checked_at"]
    start, quiet = len(flags) - 1, 0
    for i in range(len(flags) - 1, -1, -1):
        if flags[i]:
            start, quiet = i, 0
        else:
            quiet += 1
            if quiet >= quiet_checks:
                return times[start].item(), False
    return times[start].item(), True


def with_scores(results: Table) -> Table:
    """Add ``score`` (strongest effect size ÷ its threshold; ≥ 1 means past it) and ``strongest``.

    Parameters
    ----------
    results : Table
        Drift results with ``thresholds`` (dicts) and any of :data:`EFFECT_STATISTICS`.

    Returns
    -------
    Table
        ``results`` plus ``score`` (``float64``, ``nan`` without any statistic) and
        ``strongest`` (the statistic's name, ``""`` without any).

    Examples
    --------
    >>> r = Table({"psi": [0.2], "js_distance": [0.02], "ks_statistic": [None],
    ...              "thresholds": [{"psi": 0.1, "js_distance": 0.1}]})
    >>> out = with_scores(r)
    >>> float(out["score"][0]), out["strongest"][0]
    (2.0, 'psi')
    """
    statistics = {stat: results[stat] for stat in EFFECT_STATISTICS if stat in results}
    scores = np.full(len(results), np.nan)
    strongest = np.full(len(results), "", dtype=object)
    for i, thresholds in enumerate(results["thresholds"]):
        thresholds = thresholds if isinstance(thresholds, dict) else {}
        for stat, values in statistics.items():
            value, threshold = values[i], thresholds.get(stat)
            if is_missing(value) or threshold is None or not threshold:
                continue
            ratio = float(value) / float(threshold)
            if np.isnan(scores[i]) or ratio > scores[i]:
                scores[i], strongest[i] = ratio, stat
    return results.with_columns({"score": scores, "strongest": strongest})


def latest_results(results: Table, latest_check: dict | None) -> Table:
    """The per-feature rows of the newest check (empty when there is none).

    Parameters
    ----------
    results : Table
        Drift results (``check_id`` ...).
    latest_check : dict or None
        The newest check (``id``).

    Returns
    -------
    Table
    """
    if latest_check is None or not len(results):
        return results.take(slice(0, 0))
    return results.where(results["check_id"] == latest_check["id"])


def heatmap_matrix(results: Table, checks: Table) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Features × checks: ``(features, check_times, score, drifted)`` with NaN where a cell is missing.

    Score is :func:`with_scores`' ratio capped at 3 so one extreme value does not wash out the rest.
    Rows are the features present (in :data:`FEATURES` order, unknown ones after, sorted); columns
    are ``checks`` in their order; a cell holds the largest value of its (feature, check) results.

    Parameters
    ----------
    results : Table
        Drift results (``check_id``, ``feature``, ``drifted``, statistics, ``thresholds``).
    checks : Table
        Drift checks (``id``, ``checked_at``).

    Returns
    -------
    features : list of str
    check_times : numpy.ndarray of datetime64
    score, drifted : numpy.ndarray of float, shape (len(features), len(checks))
    """
    scored = with_scores(results)
    seen = set(scored["feature"].tolist())
    present = [f for f in FEATURES if f in seen] + sorted(seen - set(FEATURES))
    row_of = {feature: i for i, feature in enumerate(present)}
    column_of = {check_id: j for j, check_id in enumerate(checks["id"].tolist())}
    features, check_ids = scored["feature"].tolist(), scored["check_id"].tolist()
    kept = [k for k, check_id in enumerate(check_ids) if check_id in column_of]  # results of shown checks
    rows = np.array([row_of[features[k]] for k in kept], dtype=np.intp)
    columns = np.array([column_of[check_ids[k]] for k in kept], dtype=np.intp)
    kept = np.array(kept, dtype=np.intp)
    score = np.full((len(present), len(checks)), np.nan)
    drifted = np.full((len(present), len(checks)), np.nan)
    np.fmax.at(score, (rows, columns), scored["score"][kept])  # fmax: the largest value, nan only if all are
    np.fmax.at(drifted, (rows, columns), np.asarray(scored["drifted"], dtype=np.float64)[kept])
    return present, to_datetime(checks["checked_at"]), np.minimum(score, 3.0), drifted


SERIES_COLUMNS = ("checked_at", "statistic", "value", "threshold", "time")


def statistic_series(results: Table, checks: Table, feature: str) -> Table:
    """One feature's statistics over time in long form: ``checked_at, statistic, value, threshold, time``.

    Parameters
    ----------
    results : Table
        Drift results (``check_id``, ``feature``, statistics, ``thresholds``).
    checks : Table
        Drift checks (``id``, ``checked_at``); results of other checks are left out.
    feature : str

    Returns
    -------
    Table
        One block of rows per statistic of :data:`STATISTICS` that has a value (in that order),
        each in the order of ``results``; ``threshold`` is ``nan`` where none is set.
    """
    checked_at_of = dict(zip(checks["id"].tolist(), checks["checked_at"].tolist()))
    mine = results.where(results["feature"] == feature)
    rows = mine.where(np.array([c in checked_at_of for c in mine["check_id"].tolist()], dtype=bool))
    checked_at = np.array([checked_at_of[c] for c in rows["check_id"].tolist()], dtype=np.float64)
    blocks = []
    for stat in STATISTICS:
        values = np.asarray(rows[stat], dtype=np.float64) if stat in rows else np.array([])
        if not len(values) or np.isnan(values).all():
            continue
        thresholds = np.array([t.get(stat, np.nan) if isinstance(t, dict) else np.nan for t in rows["thresholds"]],
                              dtype=np.float64)
        blocks.append((checked_at, np.full(len(values), stat, dtype=object), values, thresholds))
    if not blocks:
        return Table.no_rows(SERIES_COLUMNS)
    checked, statistic, value, threshold = (np.concatenate(part) for part in zip(*blocks))
    return Table(dict(zip(SERIES_COLUMNS, (checked, statistic, value, threshold, to_datetime(checked)))))


def default_feature(latest: Table) -> str:
    """The feature to show first: the most drifted one in the newest check (else the first feature).

    Parameters
    ----------
    latest : Table
        The newest check's results.

    Returns
    -------
    str
        The first row by ``drifted`` then ``score``, both descending (missing last; ties keep
        their order).
    """
    if not len(latest):
        return FEATURES[0]
    scored = with_scores(latest)
    drifted = np.asarray(scored["drifted"], dtype=np.float64)
    score = scored["score"]
    ascending_keys = (np.where(np.isnan(score), np.inf, -score), np.where(np.isnan(drifted), np.inf, -drifted))
    feature = str(scored["feature"][np.lexsort(ascending_keys)[0]])  # lexsort: last key first; stable
    return feature if feature in FEATURES else FEATURES[0]


# -- alerts ------------------------------------------------------------------------------------

def alert_evidence(details: list | dict | None) -> str:
    """The features, values and thresholds behind an alert, as one readable line.

    Examples
    --------
    >>> alert_evidence([{"feature": "age", "statistic": "psi", "value": 0.213, "threshold": 0.05}])
    'age: psi 0.213 ≥ 0.05'
    >>> alert_evidence({"reason": "heartbeat stale"})
    'reason: heartbeat stale'
    """
    if isinstance(details, dict):
        items = details.get("features") if isinstance(details.get("features"), list) else None
        if items is None:
            return "; ".join(f"{k}: {v}" for k, v in details.items())
        details = items
    parts = []
    for item in details or []:
        if not isinstance(item, dict):
            parts.append(str(item))
            continue
        stat, value, threshold = item.get("statistic", ""), item.get("value"), item.get("threshold")
        rel = "<" if stat in PVALUE_STATISTICS else "≥"
        text = f"{item.get('feature', '?')}: {stat} {_num(value)}"
        if threshold is not None:
            text += f" {rel} {_num(threshold)}"
        parts.append(text)
    return "; ".join(parts)


def _num(value) -> str:
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.2e}"
    return f"{v:.3g}"


def _texts(values) -> list[str]:
    """Each value as text (``None`` → ``"None"``)."""
    return [str(v) for v in values]


def _texts_or_blank(values) -> list[str]:
    """Each value as text, a missing one as ``""``."""
    return ["" if is_missing(v) else str(v) for v in values]


def alerts_table(alerts: Table) -> Table:
    """Alerts newest first with a readable ``evidence`` column (what crossed which threshold).

    Parameters
    ----------
    alerts : Table
        Alert rows (``created_at``, ``severity``, ``source``, ``message``, parsed ``details``).

    Returns
    -------
    Table
        The table the dashboard shows, one text column per heading.
    """
    return Table({
        "time (sim, UTC)": [fmt_time(t) for t in alerts["created_at"]],
        "severity": _texts(alerts["severity"]),
        "source": _texts(alerts["source"]),
        "message": _texts(alerts["message"]),
        "features · value vs threshold": [alert_evidence(d) for d in alerts["details"]],
    })


# -- models ------------------------------------------------------------------------------------

def _metric(metrics: dict | None, name: str) -> float:
    """A model metric as a float (the first value of a per-split dict); ``nan`` when absent."""
    value = (metrics or {}).get(name)
    if isinstance(value, dict):  # e.g. {"holdout": 0.8, ...}
        value = next(iter(value.values()), None)
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def models_table(models: Table) -> Table:
    """The version history: one row per model, newest first.

    Parameters
    ----------
    models : Table
        Model rows (``version``, ``status``, times, ``n_train``, parsed ``metrics``, ``reason``).

    Returns
    -------
    Table
        ``ROC AUC`` and ``accuracy`` are floats (``nan`` when unknown); the rest is text and counts.
    """
    return Table({
        "version": _texts(models["version"]),
        "status": _texts(models["status"]),
        "created (sim)": [fmt_time(t) for t in models["created_at"]],
        "promoted (sim)": [fmt_time(t) for t in models["promoted_at"]],
        "training window (sim)": [f"{fmt_time(a)} → {fmt_time(b)}" for a, b in zip(models["train_start"],
                                                                                   models["train_end"])],
        "rows": models["n_train"],
        "ROC AUC": np.array([_metric(m, "roc_auc") for m in models["metrics"]], dtype=np.float64),
        "accuracy": np.array([_metric(m, "accuracy") for m in models["metrics"]], dtype=np.float64),
        "reason": _texts_or_blank(models["reason"]),
    })


def events_table(events: Table) -> Table:
    """Model events newest first.

    Parameters
    ----------
    events : Table
        Model-event rows (``at``, ``event``, ``version``, ``from_version``, ``actor``, ``reason``).

    Returns
    -------
    Table
        Text columns; a missing version or reason is ``""``.
    """
    return Table({
        "time (sim, UTC)": [fmt_time(t) for t in events["at"]],
        "event": _texts(events["event"]),
        "version": _texts_or_blank(events["version"]),
        "from": _texts_or_blank(events["from_version"]),
        "by": _texts(events["actor"]),
        "reason": _texts_or_blank(events["reason"]),
    })


def _chronological(events: Table) -> Table:
    """Model events (read newest first: ``at``, then ``id``, descending) oldest first, by ``at``
    (ties in the order they happened)."""
    return events.reversed().sorted_by("at")


def version_changes(events: Table) -> Table:
    """Promotions and rollbacks (``at, event, version, from_version``), oldest first.

    Parameters
    ----------
    events : Table
        Model events, newest first.

    Returns
    -------
    Table
    """
    changes = events.where([event in VERSION_CHANGE_EVENTS for event in events["event"]])
    return _chronological(changes.select(["at", "event", "version", "from_version"]))


def serving_performance(performance: Table, changes: Table) -> Table:
    """The performance windows of the version that was serving when each window ended.

    After a promotion or rollback the detector still measures the previous version over the
    window its last predictions fill; drawn as one line per metric, the two versions would
    alternate (a sawtooth). Windows ending before the first known change are all kept.

    Parameters
    ----------
    performance : Table
        Has ``window_end`` and ``model_version``.
    changes : Table
        :func:`version_changes` (``at`` and ``version``, oldest first).

    Returns
    -------
    Table

    Examples
    --------
    >>> perf = Table({"window_end": [10.0, 20.0, 20.0, 30.0], "model_version": ["v1.0", "v1.0", "v1.1", "v1.0"]})
    >>> serving_performance(perf, Table({"at": [15.0], "version": ["v1.1"]}))["model_version"].tolist()
    ['v1.0', 'v1.1']
    """
    if not len(performance) or not len(changes):
        return performance
    change_at = np.asarray(changes["at"], dtype=np.float64)
    serving = np.asarray(changes["version"], dtype=object)
    latest = np.searchsorted(change_at, np.asarray(performance["window_end"], dtype=np.float64), side="right") - 1
    keep = [i < 0 or version == serving[i] for i, version in zip(latest.tolist(), performance["model_version"])]
    return performance.where(np.asarray(keep, dtype=bool))


# -- health ------------------------------------------------------------------------------------

def supervised_components(heartbeats: dict) -> dict[str, dict]:
    """Per-component records the supervisor publishes in its heartbeat (``details["components"]``)."""
    sup = heartbeats.get("supervisor")
    details = sup.details if sup is not None and isinstance(sup.details, dict) else {}
    components = details.get("components")
    return components if isinstance(components, dict) else {}


HEALTH_COLUMNS = ("component", "health", "state", "pid", "CPU %", "RSS", "uptime", "restarts", "last heartbeat",
                  "stale")


def health_table(heartbeats: dict, stats: dict, *, real_now: float, stale_s: float) -> Table:
    """One row per component: state, pid, CPU %, RSS, uptime, restarts, heartbeat age, ``stale``.

    Components come from the heartbeat rows and from the supervisor's per-component records
    (the dashboard writes no heartbeat: its freshness is the supervisor's last successful health
    probe, ``health_ok_at``). Restarts come from the supervisor's record, else the row's details.

    Parameters
    ----------
    heartbeats : dict of str to Heartbeat
    stats : dict of int to dict or None
        :func:`rtml.health.process_stats` readings by pid (``cpu_percent``, ``rss_bytes``,
        ``uptime_s``; ``None``: not running on this host).
    real_now : float
        Wall-clock now.
    stale_s : float
        A heartbeat older than this is stale.

    Returns
    -------
    Table
        :data:`HEALTH_COLUMNS`; ``pid``, ``CPU %`` and ``restarts`` are floats with ``nan`` where
        unknown, ``stale`` is a bool.
    """
    managed = supervised_components(heartbeats)
    names = list(heartbeats) + [n for n in managed if n not in heartbeats]
    rows = []
    for name in names:
        beat, record = heartbeats.get(name), managed.get(name) or {}
        if beat is not None:
            pid, state, seen_at, started_at = beat.pid, beat.state, beat.real_time, beat.started_at
            own = beat.details if isinstance(beat.details, dict) else {}
        else:
            pid, state, own = record.get("pid"), str(record.get("state") or "unknown"), {}
            seen_at, started_at = record.get("health_ok_at"), record.get("started_at")
        proc = stats.get(pid) if pid else None
        age = None if seen_at is None else max(real_now - float(seen_at), 0.0)
        stopped = state in ("stopped", "exited", "down", "failed", "gave_up")
        stale = not stopped and age is not None and age > stale_s
        if stopped:
            health = "stopped"
        elif stale:
            health = "STALE"
        elif pid and proc is None:
            health = "not running"
        else:
            health = "healthy"
        uptime = proc["uptime_s"] if proc is not None else None
        restarts = record.get("restarts", own.get("restarts"))
        rows.append({
            "component": name,
            "health": health,
            "state": state,
            "pid": pid,
            "CPU %": None if proc is None or proc.get("cpu_percent") is None else round(proc["cpu_percent"], 1),
            "RSS": fmt_bytes(proc["rss_bytes"]) if proc is not None else "—",
            "uptime": fmt_duration(uptime) if uptime is not None else "—",
            "restarts": None if restarts is None else int(restarts),
            "last heartbeat": f"{fmt_duration(age)} ago" if age is not None else "—",
            "stale": stale,
        })
    columns = {name: [row[name] for row in rows] for name in HEALTH_COLUMNS}
    for name in ("pid", "CPU %", "restarts"):  # numbers with gaps: nan where unknown
        columns[name] = np.array(columns[name], dtype=np.float64)
    columns["stale"] = np.array(columns["stale"], dtype=bool)
    return Table(columns)


# -- summary -----------------------------------------------------------------------------------

def model_action_sentence(events: Table, since_s: float | None) -> str | None:
    """What the system did about the drift: the model events since ``since_s`` in one sentence.

    Parameters
    ----------
    events : Table
        Model events, newest first.
    since_s : float or None
        Simulated start of the drift episode (``None``: no sentence).

    Returns
    -------
    str or None
        ``None`` when nothing happened since then. Event kinds are counted most frequent first
        (ties in order of first occurrence).
    """
    if since_s is None or not len(events):
        return None
    recent = _chronological(events.where(np.asarray(events["at"], dtype=np.float64) >= since_s))
    if not len(recent):
        return None
    counts = Counter(recent["event"].tolist()).most_common()  # ties keep their first occurrence's order
    parts = [f"{n} {event.replace('_', ' ')}" for event, n in counts]
    last = recent.row(-1)
    text = f"model events since then: {', '.join(parts)}; latest: {last['event'].replace('_', ' ')} " \
           f"{last['version'] or ''} at {fmt_time(last['at'])}"
    if isinstance(last["reason"], str) and last["reason"]:
        text += f" ({last['reason']})"
    return text
