"""Pure transforms of the dashboard: snapshot values in, tables and plain-language facts out.

No I/O and no Streamlit: everything here is testable on hand-made DataFrames.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rtml.simulation import FEATURES

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
    if t_s is None or (isinstance(t_s, float) and math.isnan(t_s)):
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
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
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


def to_datetime(seconds: pd.Series | np.ndarray | list) -> pd.Series:
    """Unix seconds to naive UTC datetimes (what the charts put on their x axis)."""
    return pd.Series(pd.to_datetime(pd.Series(seconds, dtype="float64"), unit="s"))


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


def drift_status(latest_check: dict | None, latest_results: pd.DataFrame, *, critical_share: float,
                 critical_min_features: int) -> DriftStatus:
    """Classify the newest check the way the alert rules do.

    critical: dataset drift with at least ``critical_share`` of the features or
    ``critical_min_features`` of them drifting; warning: dataset drift; watch: some feature
    drifts but not enough for dataset drift; ok: nothing drifts; unknown: no check or not enough
    data.

    Examples
    --------
    >>> check = {"dataset_drift": 1, "n_drifted": 4, "n_features": 10, "share_drifted": 0.4, "status": "ok"}
    >>> drift_status(check, pd.DataFrame(), critical_share=0.3, critical_min_features=3).level
    'critical'
    >>> drift_status(None, pd.DataFrame(), critical_share=0.3, critical_min_features=3).label
    'no checks yet'
    """
    if latest_check is None:
        return DriftStatus("unknown", "no checks yet", (), 0, 0)
    n_drifted, n_features = int(latest_check["n_drifted"]), int(latest_check["n_features"])
    names: tuple[str, ...] = ()
    if len(latest_results):
        names = tuple(latest_results.loc[latest_results["drifted"].astype(bool), "feature"])
    if latest_check.get("status") == "not_enough_data" or n_features == 0:
        return DriftStatus("unknown", "not enough data", names, n_drifted, n_features)
    if latest_check["dataset_drift"]:
        critical = (latest_check["share_drifted"] >= critical_share or n_drifted >= critical_min_features)
        level = "critical" if critical else "warning"
        return DriftStatus(level, f"{level.upper()}: {n_drifted}/{n_features} drifting", names, n_drifted, n_features)
    if n_drifted:
        return DriftStatus("watch", f"watch: {n_drifted}/{n_features} drifting", names, n_drifted, n_features)
    return DriftStatus("ok", "no drift", names, n_drifted, n_features)


def drift_since(checks: pd.DataFrame, *, quiet_checks: int = 3) -> tuple[float | None, bool]:
    """When the current drift episode began: ``(checked_at, before_window)``.

    The episode is the run of checks ending at the newest one that contains no stretch of
    ``quiet_checks`` consecutive checks without dataset drift (isolated quiet checks do not end
    it). Returns ``(None, False)`` when the newest check shows no dataset drift;
    ``before_window`` is True when the run reaches back to the first check loaded.

    Examples
    --------
    >>> checks = pd.DataFrame({"checked_at": [0, 1, 2, 3, 4, 5, 6], "dataset_drift": [1, 0, 0, 0, 1, 0, 1]})
    >>> drift_since(checks)
    (4, False)
    """
    if not len(checks) or not checks["dataset_drift"].iloc[-1]:
        return None, False
    flags = checks["dataset_drift"].astype(bool).to_numpy()
    times = checks["checked_at"].to_numpy()
    start, quiet = len(flags) - 1, 0
    for i in range(len(flags) - 1, -1, -1):
        if flags[i]:
            start, quiet = i, 0
        else:
            quiet += 1
            if quiet >= quiet_checks:
                return times[start].item(), False
    return times[start].item(), True


def with_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``score`` (strongest effect size ÷ its threshold; ≥ 1 means past it) and ``strongest``.

    Examples
    --------
    >>> r = pd.DataFrame({"psi": [0.2], "js_distance": [0.02], "ks_statistic": [None],
    ...                   "thresholds": [{"psi": 0.1, "js_distance": 0.1}]})
    >>> out = with_scores(r)
    >>> float(out["score"][0]), out["strongest"][0]
    (2.0, 'psi')
    """
    out = results.copy()
    scores, strongest = [], []
    for row in out.itertuples(index=False):
        best, best_name = np.nan, ""
        thresholds = row.thresholds if isinstance(row.thresholds, dict) else {}
        for stat in EFFECT_STATISTICS:
            value, threshold = getattr(row, stat, None), thresholds.get(stat)
            if value is None or threshold is None or not threshold or pd.isna(value):
                continue
            ratio = float(value) / float(threshold)
            if np.isnan(best) or ratio > best:
                best, best_name = ratio, stat
        scores.append(best)
        strongest.append(best_name)
    out["score"] = pd.Series(scores, index=out.index, dtype="float64")
    out["strongest"] = pd.Series(strongest, index=out.index, dtype=object)
    return out


def latest_results(results: pd.DataFrame, latest_check: dict | None) -> pd.DataFrame:
    """The per-feature rows of the newest check (empty when there is none)."""
    if latest_check is None or not len(results):
        return results.iloc[0:0]
    return results[results["check_id"] == latest_check["id"]].reset_index(drop=True)


def heatmap_matrix(results: pd.DataFrame, checks: pd.DataFrame) -> tuple[list[str], pd.Series, np.ndarray, np.ndarray]:
    """Features × checks: ``(features, check_times, score, drifted)`` with NaN where a cell is missing.

    Score is :func:`with_scores`' ratio capped at 3 so one extreme value does not wash out the rest.
    """
    scored = with_scores(results)
    check_ids = checks["id"].to_numpy()
    present = [f for f in FEATURES if f in set(scored["feature"])] + sorted(set(scored["feature"]) - set(FEATURES))
    score = scored.pivot_table(index="feature", columns="check_id", values="score", aggfunc="max", dropna=False)
    drifted = scored.assign(drifted=scored["drifted"].astype(float)).pivot_table(
        index="feature", columns="check_id", values="drifted", aggfunc="max", dropna=False)
    score = score.reindex(index=present, columns=check_ids)
    drifted = drifted.reindex(index=present, columns=check_ids)
    return present, to_datetime(checks["checked_at"]), np.minimum(score.to_numpy(dtype=float), 3.0), \
        drifted.to_numpy(dtype=float)


def statistic_series(results: pd.DataFrame, checks: pd.DataFrame, feature: str) -> pd.DataFrame:
    """One feature's statistics over time in long form: ``time, statistic, value, threshold``."""
    rows = results[results["feature"] == feature].merge(
        checks[["id", "checked_at"]], left_on="check_id", right_on="id", how="inner")
    frames = []
    for stat in STATISTICS:
        if stat not in rows or rows[stat].isna().all():
            continue
        frames.append(pd.DataFrame({
            "checked_at": rows["checked_at"].to_numpy(dtype=float),
            "statistic": stat,
            "value": rows[stat].to_numpy(dtype=float),
            "threshold": [(t or {}).get(stat, np.nan) if isinstance(t, dict) else np.nan for t in rows["thresholds"]],
        }))
    if not frames:
        return pd.DataFrame(columns=["checked_at", "statistic", "value", "threshold", "time"])
    out = pd.concat(frames, ignore_index=True)
    out["threshold"] = out["threshold"].astype(float)
    out["time"] = to_datetime(out["checked_at"])
    return out


def default_feature(latest: pd.DataFrame) -> str:
    """The feature to show first: the most drifted one in the newest check (else the first feature)."""
    if not len(latest):
        return FEATURES[0]
    scored = with_scores(latest).sort_values(["drifted", "score"], ascending=False, na_position="last")
    feature = str(scored["feature"].iloc[0])
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


def alerts_table(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts newest first with a readable ``evidence`` column (what crossed which threshold)."""
    return pd.DataFrame({
        "time (sim, UTC)": [fmt_time(t) for t in alerts["created_at"]],
        "severity": alerts["severity"].astype(str).to_numpy(),
        "source": alerts["source"].astype(str).to_numpy(),
        "message": alerts["message"].astype(str).to_numpy(),
        "features · value vs threshold": [alert_evidence(d) for d in alerts["details"]],
    })


# -- models ------------------------------------------------------------------------------------

def models_table(models: pd.DataFrame) -> pd.DataFrame:
    """The version history: one row per model, newest first."""
    def metric(m: dict, name: str) -> float:
        value = (m or {}).get(name)
        if isinstance(value, dict):  # e.g. {"holdout": 0.8, ...}
            value = next(iter(value.values()), None)
        try:
            return float(value)
        except (TypeError, ValueError):
            return np.nan

    return pd.DataFrame({
        "version": models["version"].astype(str).to_numpy(),
        "status": models["status"].astype(str).to_numpy(),
        "created (sim)": [fmt_time(t) for t in models["created_at"]],
        "promoted (sim)": [fmt_time(t) for t in models["promoted_at"]],
        "training window (sim)": [f"{fmt_time(a)} → {fmt_time(b)}" for a, b in zip(models["train_start"],
                                                                                   models["train_end"])],
        "rows": models["n_train"].to_numpy(),
        "ROC AUC": [metric(m, "roc_auc") for m in models["metrics"]],
        "accuracy": [metric(m, "accuracy") for m in models["metrics"]],
        "reason": models["reason"].fillna("").astype(str).to_numpy(),
    })


def events_table(events: pd.DataFrame) -> pd.DataFrame:
    """Model events newest first."""
    return pd.DataFrame({
        "time (sim, UTC)": [fmt_time(t) for t in events["at"]],
        "event": events["event"].astype(str).to_numpy(),
        "version": events["version"].fillna("").astype(str).to_numpy(),
        "from": events["from_version"].fillna("").astype(str).to_numpy(),
        "by": events["actor"].astype(str).to_numpy(),
        "reason": events["reason"].fillna("").astype(str).to_numpy(),
    })


def version_changes(events: pd.DataFrame) -> pd.DataFrame:
    """Promotions and rollbacks (``at, event, version``), oldest first."""
    changes = events[events["event"].isin(VERSION_CHANGE_EVENTS)]
    return changes[["at", "event", "version", "from_version"]].sort_values("at").reset_index(drop=True)


# -- health ------------------------------------------------------------------------------------

def supervised_components(heartbeats: dict) -> dict[str, dict]:
    """Per-component records the supervisor publishes in its heartbeat (``details["components"]``)."""
    sup = heartbeats.get("supervisor")
    details = sup.details if sup is not None and isinstance(sup.details, dict) else {}
    components = details.get("components")
    return components if isinstance(components, dict) else {}


def health_table(heartbeats: dict, stats: dict, *, real_now: float, stale_s: float) -> pd.DataFrame:
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
    table = pd.DataFrame(rows, columns=["component", "health", "state", "pid", "CPU %", "RSS", "uptime", "restarts",
                                        "last heartbeat", "stale"])
    for column in ("pid", "CPU %", "restarts"):  # numbers with gaps (NaN shows as an empty cell, not "None")
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("Float64")
    return table


# -- summary -----------------------------------------------------------------------------------

def model_action_sentence(events: pd.DataFrame, since_s: float | None) -> str | None:
    """What the system did about the drift: the model events since ``since_s`` in one sentence."""
    if since_s is None or not len(events):
        return None
    recent = events[events["at"] >= since_s].sort_values("at")
    if not len(recent):
        return None
    counts = recent["event"].value_counts()
    parts = [f"{n} {event.replace('_', ' ')}" for event, n in counts.items()]
    last = recent.iloc[-1]
    text = f"model events since then: {', '.join(parts)}; latest: {last['event'].replace('_', ' ')} " \
           f"{last['version'] or ''} at {fmt_time(last['at'])}"
    if isinstance(last["reason"], str) and last["reason"]:
        text += f" ({last['reason']})"
    return text
