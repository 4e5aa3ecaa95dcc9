"""Tests for rtml.alerting: severity, m-of-n agreement, cooldown, escalation, log lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtml.alerting import Alert, AlertGate, AlertPolicy, format_alert_log_lines
from rtml.drift import DatasetResult, Evidence, FeatureResult, ReferenceProfile, check

CHECK_INTERVAL_S = 300.0


def make_result(n_drifted: int, *, n_features: int = 10, dataset_drift: bool | None = None, status: str = "ok") -> DatasetResult:
    """A synthetic check result with ``n_drifted`` of ``n_features`` drifted (default: drift if >= 2)."""
    features = tuple(
        FeatureResult(
            feature=f"f{i}", kind="numerical", status="ok", drifted=i < n_drifted, n_reference=3500,
            n_current=500, missing_rate_reference=0.0, missing_rate_current=0.0, missing_changed=False,
            evidence=Evidence("ks_statistic", 0.0873 + i, 0.05) if i < n_drifted else None,
        )
        for i in range(n_features)
    )
    return DatasetResult(
        dataset_drift=n_drifted >= 2 if dataset_drift is None else dataset_drift, n_drifted=n_drifted,
        n_features=n_features, share_drifted=n_drifted / n_features if n_features else 0.0, features=features, policy={},
        status=status, n_reference=3500, n_current=500,
    )


def run(gate: AlertGate, drifted_counts, *, interval_s: float = CHECK_INTERVAL_S):
    """Feed the counts as checks every ``interval_s``; return {check index: severity} of alerts."""
    alerts = {}
    for i, n_drifted in enumerate(drifted_counts):
        alert = gate.update(make_result(n_drifted), now_s=interval_s * i)
        if alert is not None:
            alerts[i] = alert.severity
    return alerts


def test_severity_levels():
    policy = AlertPolicy()
    assert policy.severity(make_result(0)) is None
    assert policy.severity(make_result(1)) == "info"
    assert policy.severity(make_result(2)) == "warning"
    assert policy.severity(make_result(3)) == "critical"  # n_drifted >= critical_min_features
    assert policy.severity(make_result(2, n_features=5)) == "critical"  # share 0.4 >= 0.3
    assert policy.severity(make_result(5, dataset_drift=False)) == "info"  # no dataset drift, no warning
    assert AlertPolicy(warning_share=0.25).severity(make_result(2)) == "info"
    assert policy.severity(make_result(0, n_features=0, status="not_enough_data")) is None


def test_golden_detection_index_on_a_seeded_stream():
    """Drift (0.3 sd in 3 of 8 features) starts at check 20; m=2 of n=3 alerts at check 21."""
    rng = np.random.default_rng(2026)
    names = [f"x{i}" for i in range(6)]
    draw = lambda n, shift: {  # noqa: E731
        **{c: rng.normal(shift if c in ("x0", "x1", "x2") else 0.0, 1.0, n) for c in names},
        "device": rng.choice(np.array(["desktop", "mobile", "tablet"], dtype=object), n, p=[0.3, 0.6, 0.1]),
        "region": rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n),
    }
    profile = ReferenceProfile.fit(draw(3500, 0.0), numerical=names, categorical=["device", "region"])
    gate = AlertGate()
    alerts = {}
    for i in range(40):
        alert = gate.update(check(reference=profile, current=draw(500, 0.3 if i >= 20 else 0.0)), now_s=CHECK_INTERVAL_S * i)
        if alert is not None:
            alerts[i] = alert
    assert list(alerts) == [21, 33]  # first alert one check after the change; repeated after the 1 h cooldown
    first = alerts[21]
    assert first.severity == "critical" and first.created_at == 21 * CHECK_INTERVAL_S
    assert [d["feature"] for d in first.details] == ["x0", "x1", "x2"]
    assert first.message == "🚨 Significant drift detected in 3 features!"


def test_m_of_n_agreement():
    assert run(AlertGate(), [0, 2, 0, 0, 2, 0, 2]) == {6: "warning"}  # checks 4 and 6 agree
    assert run(AlertGate(), [2, 0, 0, 2, 0, 0, 2]) == {}  # never 2 of the last 3
    assert run(AlertGate(), [1, 1]) == {1: "info"}
    assert run(AlertGate(AlertPolicy(m=1, n=1)), [0, 2]) == {1: "warning"}
    assert run(AlertGate(AlertPolicy(m=3, n=3)), [3, 3, 2, 3]) == {2: "warning"}


def test_the_current_check_must_support_the_alert():
    # 2 of the last 3 are warnings, but the current check is clean: no alert (nothing to report)
    gate = AlertGate(AlertPolicy(cooldown_s=0.0))
    assert run(gate, [2, 2, 0]) == {1: "warning"}


def test_alert_takes_the_highest_severity_supported_by_m_of_n():
    assert run(AlertGate(), [3, 2]) == {1: "warning"}  # only one critical so far
    assert run(AlertGate(), [3, 3]) == {1: "critical"}
    assert run(AlertGate(), [3, 1, 3]) == {1: "info", 2: "critical"}  # both agree on "some drift"


def test_cooldown_suppresses_same_or_lower_severity():
    # a warning every check: alert at check 1, then only once the 3600 s cooldown has elapsed
    assert run(AlertGate(), [2] * 30) == {1: "warning", 13: "warning", 25: "warning"}
    # after a critical alert, warnings stay quiet during the cooldown
    assert run(AlertGate(), [3, 3, 2, 2, 2, 2]) == {1: "critical"}
    assert run(AlertGate(AlertPolicy(cooldown_s=0.0)), [2, 2, 2]) == {1: "warning", 2: "warning"}


def test_escalation_fires_inside_the_cooldown():
    alerts = run(AlertGate(), [2, 2, 3, 3, 3, 1, 1, 3, 3])
    assert alerts == {1: "warning", 3: "critical"}
    # info first, then warning escalates, then critical escalates
    assert run(AlertGate(), [1, 1, 2, 2, 3, 3]) == {1: "info", 3: "warning", 5: "critical"}


def test_gate_state_and_reset():
    gate = AlertGate()
    run(gate, [2, 2])
    assert gate.n_checks == 2 and gate.last_alert.severity == "warning"
    gate._reset()
    assert gate.n_checks == 0 and gate.last_alert is None
    assert gate.policy == AlertPolicy()  # hyper-parameters stored unchanged


def test_not_enough_data_counts_as_no_drift():
    gate = AlertGate()
    gate.update(make_result(2), now_s=0.0)
    assert gate.update(make_result(0, n_features=0, status="not_enough_data"), now_s=300.0) is None
    assert gate.update(make_result(2), now_s=600.0).severity == "warning"  # 2 of the last 3


def test_alert_details_and_log_lines():
    gate = AlertGate()
    gate.update(make_result(3), now_s=0.0)
    alert = gate.update(make_result(3), now_s=300.0)
    assert alert.details[0] == {"feature": "f0", "statistic": "ks_statistic", "value": 0.0873, "threshold": 0.05}
    assert format_alert_log_lines(alert) == [
        "🚨 Significant drift detected in 3 features!",
        "- f0: 0.0873 (threshold: 0.05)",
        "- f1: 1.09 (threshold: 0.05)",
        "- f2: 2.09 (threshold: 0.05)",
    ]
    json.dumps(alert.to_dict(), allow_nan=False)
    warning = Alert("warning", "⚠️ Drift detected in 2 features.", (), 0.0)
    assert format_alert_log_lines(warning) == ["⚠️ Drift detected in 2 features."]
    info = run(AlertGate(), [1, 1])
    assert info == {1: "info"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: AlertPolicy(m=4, n=3), r"The 'm' parameter of AlertPolicy must be an int in \[1, 3\]\. Got 4 instead\."),
        (lambda: AlertPolicy(n=0), r"The 'n' parameter of AlertPolicy must be an int >= 1\. Got 0 instead\."),
        (lambda: AlertPolicy(cooldown_s=-1), r"The 'cooldown_s' parameter of AlertPolicy must be a float >= 0\. Got -1 instead\."),
        (lambda: AlertPolicy(critical_share=1.5), r"The 'critical_share' parameter of AlertPolicy must be a float in \(0, 1\]\."),
        (lambda: AlertPolicy(warning_share=0.5), r"The 'warning_share' parameter of AlertPolicy must be a float in \[0, 0.3\]\."),
        (lambda: AlertPolicy(critical_min_features=0), r"The 'critical_min_features' parameter of AlertPolicy"),
        (lambda: AlertGate(policy={"m": 2}), r"The 'policy' parameter of AlertGate must be an AlertPolicy"),
        (lambda: AlertGate().update(make_result(0), now_s=float("nan")), r"The 'now_s' parameter of AlertGate.update"),
        (lambda: AlertGate().update({"dataset_drift": True}, now_s=0.0), r"must be a DatasetResult"),
    ],
)
def test_invalid_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_time_must_not_go_backwards():
    gate = AlertGate()
    gate.update(make_result(0), now_s=600.0)
    with pytest.raises(ValueError, match="now_s must not decrease"):
        gate.update(make_result(0), now_s=300.0)
