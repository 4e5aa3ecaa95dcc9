"""The detector's drift monitor: fetch the current window, check it against the cached reference,
store the check, its per-feature results and any alert.

The statistics and policies are pure (``rtml.drift``, ``rtml.alerting``); this module adds the
I/O around them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rtml.alerting import AlertGate, AlertPolicy, format_alert_log_lines
from rtml.config import DriftSettings, Settings
from rtml.drift import CalibratedPolicy, DatasetResult, ReferenceProfile, SeedPolicy, check
from rtml.simulation import CATEGORICAL_FEATURES, NUMERICAL_FEATURES
from rtml.storage import interactions as interaction_store
from rtml.storage import monitoring as store
from rtml.storage.db import Connection
from rtml.table import Table

log = logging.getLogger(__name__)


def make_policy(drift: DriftSettings) -> CalibratedPolicy | SeedPolicy:
    """The decision policy named by ``drift.policy``, with its configured thresholds."""
    if drift.policy == "seed":
        return SeedPolicy(psi_threshold=drift.seed_psi_threshold, ks_pvalue=drift.seed_ks_pvalue,
                          js_threshold=drift.seed_js_threshold, chi2_pvalue=drift.seed_chi2_pvalue,
                          min_drifted_features=drift.min_drifted_features, min_rows=drift.min_rows)
    return CalibratedPolicy(false_alarm_rate=drift.false_alarm_rate, min_drifted_features=drift.min_drifted_features,
                            psi_floor=drift.psi_floor, js_floor=drift.js_floor, ks_floor=drift.ks_floor,
                            min_rows=drift.min_rows)


def make_alert_policy(settings: Settings) -> AlertPolicy:
    """The alert policy from ``settings.alerts``."""
    a = settings.alerts
    return AlertPolicy(m=a.m, n=a.n, cooldown_s=a.cooldown_minutes * 60.0, critical_share=a.critical_share,
                       critical_min_features=a.critical_min_features)


@dataclass(frozen=True)
class CheckOutcome:
    """What one check found: ``alert_severity`` is set only when an alert was raised."""

    check_id: int | None
    dataset_drift: bool
    alert_severity: str | None
    result: DatasetResult | None


def result_rows(result: DatasetResult) -> list[dict]:
    """Per-feature rows for ``drift_results`` from a :class:`DatasetResult`."""
    rows = []
    for f in result.features:
        d = f.to_dict()
        rows.append({"feature": f.feature, "kind": f.kind, "status": f.status, "drifted": int(f.drifted),
                     "psi": d["psi"], "ks_statistic": d["ks_statistic"], "ks_pvalue": d["ks_pvalue"],
                     "js_distance": d["js_distance"], "chi2_statistic": d["chi2_statistic"],
                     "chi2_pvalue": d["chi2_pvalue"], "missing_rate_reference": d["missing_rate_reference"],
                     "missing_rate_current": d["missing_rate_current"],
                     "min_detectable_shift": d["min_detectable_shift"], "thresholds": d["thresholds"],
                     "details": {"n_reference": f.n_reference, "n_current": f.n_current,
                                 "missing_changed": f.missing_changed, "unseen_share": d["unseen_share"],
                                 "chi2_dof": d["chi2_dof"], "evidence": d["evidence"]}})
    return rows


class DriftMonitor:
    """Checks the newest window against the serving model's training window.

    Parameters
    ----------
    settings : Settings
    conn : Connection
        The detector's writer connection.
    """

    def __init__(self, settings: Settings, conn: Connection):
        self.settings = settings
        self.conn = conn
        self.policy = make_policy(settings.drift)
        self.gate = AlertGate(make_alert_policy(settings))
        self.profile: ReferenceProfile | None = None
        self.reference: tuple[float, float, str] | None = None

    def set_reference(self, frame: Table, *, start_s: float, end_s: float, version: str) -> None:
        """Profile a new reference once (bins, sorted values, category counts) and reset the alert
        history, so a drift the new model has absorbed stops alarming."""
        self.profile = ReferenceProfile.fit(frame.as_mapping(), numerical=NUMERICAL_FEATURES,
                                            categorical=CATEGORICAL_FEATURES, bins=self.settings.drift.bins)
        self.reference = (start_s, end_s, version)
        self.gate = AlertGate(make_alert_policy(self.settings))
        log.info("Drift reference set to %s's training window: %d rows", version, len(frame))

    def current_window(self, now_s: float) -> tuple[Table, float, float]:
        """The current window ending at ``now_s``: ``window_rows`` newest rows, or ``window_minutes``."""
        drift = self.settings.drift
        limit = drift.window_rows or None
        # With window_rows the window is the newest rows, looked for within retention's reach.
        reach_s = self.settings.storage.retention_days * 86400.0 if limit else drift.window_minutes * 60.0
        start = now_s - reach_s
        frame = interaction_store.read_window(self.conn, start_s=start, end_s=now_s, limit=limit,
                                              columns=("event_time",) + NUMERICAL_FEATURES + CATEGORICAL_FEATURES
                                              + ("drift_intensity",))
        if limit:
            start = float(frame["event_time"][0]) if len(frame) else now_s
        return frame, start, now_s

    def check(self, now_s: float) -> CheckOutcome:
        """Run one check at simulated time ``now_s`` and store it (and its alert)."""
        if self.profile is None or self.reference is None:
            raise RuntimeError("DriftMonitor.check called before set_reference")
        frame, start, end = self.current_window(now_s)
        result = check(reference=self.profile, current=frame.as_mapping(), policy=self.policy)
        alert = self.gate.update(result, now_s) if result.status != "not_enough_data" else None
        ref_start, ref_end, version = self.reference
        true_intensity = float(np.mean(frame["drift_intensity"])) if len(frame) else None
        check_row = {"checked_at": now_s, "window_start": start, "window_end": end, "reference_start": ref_start,
                     "reference_end": ref_end, "reference_version": version, "n_reference": self.profile.n_rows,
                     "n_current": len(frame), "policy": self.policy.name, "dataset_drift": int(result.dataset_drift),
                     "n_drifted": result.n_drifted, "n_features": result.n_features,
                     "share_drifted": result.share_drifted, "status": result.status,
                     "true_intensity": true_intensity}
        alert_row = None
        if alert is not None:
            alert_row = {"created_at": alert.created_at, "severity": alert.severity, "source": "drift",
                         "message": alert.message, "details": [dict(d) for d in alert.details]}
        check_id, _ = store.insert_check(self.conn, check=check_row, results=result_rows(result), alert=alert_row)
        if result.status == "not_enough_data":
            log.info("Drift check %d: not enough data in the current window (%d rows)", check_id, len(frame))
        else:
            log.info("Drift check %d: %d/%d features drifted, dataset drift %s (%d rows vs %d)", check_id,
                     result.n_drifted, result.n_features, "yes" if result.dataset_drift else "no", len(frame),
                     self.profile.n_rows)
        if alert is not None:
            for line in format_alert_log_lines(alert):
                (log.warning if alert.severity != "info" else log.info)("%s", line)
        return CheckOutcome(check_id, result.dataset_drift, alert.severity if alert else None, result)
