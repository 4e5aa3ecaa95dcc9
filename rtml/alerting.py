"""Alert policy for drift checks: severity, m-of-n agreement and cooldown.

Pure module: no I/O. :class:`AlertPolicy` is an immutable, validated set of hyper-parameters;
:class:`AlertGate` holds the only mutable state (the severities of the last ``n`` checks and the
last alert) and turns a stream of :class:`rtml.drift.DatasetResult` into a few :class:`Alert`.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from rtml.drift import DatasetResult, InvalidParameterError, validate_float, validate_int

logger = logging.getLogger(__name__)

#: Severities from lowest to highest.
SEVERITIES = ("info", "warning", "critical")
_RANK = {None: 0, "info": 1, "warning": 2, "critical": 3}
_ICON = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


@dataclass(frozen=True)
class AlertPolicy:
    """How a drift check maps to a severity, and how many checks must agree before alerting.

    Severity of one check (``None`` when no usable feature drifted):

    * ``critical``: dataset drift AND (``share_drifted >= critical_share`` OR
      ``n_drifted >= critical_min_features``);
    * ``warning``: dataset drift AND ``share_drifted >= warning_share`` (default 0: any dataset drift);
    * ``info``: at least one feature drifted, but not a warning.

    Parameters
    ----------
    m, n : int, default=2, 3
        An alert needs ``m`` of the last ``n`` checks at that severity or higher.
    cooldown_s : float, default=3600.0
        Simulated seconds during which an alert of the same or lower severity is not repeated.
    warning_share : float, default=0.0
        Extra share of drifted features required for a warning (0 keeps the drift policy's decision).
    critical_share : float, default=0.3
        Share of drifted features that makes dataset drift critical.
    critical_min_features : int, default=3
        Number of drifted features that makes dataset drift critical.

    Examples
    --------
    >>> AlertPolicy(m=4, n=3)
    Traceback (most recent call last):
    ...
    rtml.drift.InvalidParameterError: The 'm' parameter of AlertPolicy must be an int in [1, 3]. Got 4 instead.
    """

    m: int = 2
    n: int = 3
    cooldown_s: float = 3600.0
    warning_share: float = 0.0
    critical_share: float = 0.3
    critical_min_features: int = 3

    def __post_init__(self) -> None:
        owner = type(self).__name__
        validate_int(owner, "n", self.n, low=1)
        if not (isinstance(self.m, int) and not isinstance(self.m, bool) and 1 <= self.m <= self.n):
            raise InvalidParameterError(
                f"The 'm' parameter of {owner} must be an int in [1, {self.n}]. Got {self.m!r} instead."
            )
        validate_float(owner, "cooldown_s", self.cooldown_s, low=0, low_open=False)
        validate_float(owner, "critical_share", self.critical_share, low=0, high=1, high_open=False)
        validate_float(
            owner, "warning_share", self.warning_share, low=0, high=self.critical_share, low_open=False, high_open=False
        )
        validate_int(owner, "critical_min_features", self.critical_min_features, low=1)

    def severity(self, result: DatasetResult) -> str | None:
        """Severity of one check, or ``None`` if no usable feature drifted.

        Examples
        --------
        >>> import numpy as np
        >>> from rtml.drift import ReferenceProfile, check
        >>> rng = np.random.default_rng(0)
        >>> cols = [f"x{i}" for i in range(5)]
        >>> profile = ReferenceProfile.fit({c: rng.normal(size=3500) for c in cols}, numerical=cols)
        >>> current = {c: rng.normal(0.5 if c in ("x0", "x1") else 0.0, size=500) for c in cols}
        >>> AlertPolicy().severity(check(reference=profile, current=current))
        'critical'
        >>> AlertPolicy(critical_share=0.5).severity(check(reference=profile, current=current))
        'warning'
        """
        if not isinstance(result, DatasetResult):
            raise InvalidParameterError(
                f"The 'result' parameter of AlertPolicy.severity must be a DatasetResult. Got {type(result).__name__} instead."
            )
        if result.n_features == 0 or result.n_drifted == 0:
            return None
        if result.dataset_drift:
            if result.share_drifted >= self.critical_share or result.n_drifted >= self.critical_min_features:
                return "critical"
            if result.share_drifted >= self.warning_share:
                return "warning"
        return "info"


@dataclass(frozen=True)
class Alert:
    """One alert: ``details`` lists, per drifted feature, the statistic that decided its verdict."""

    severity: str
    message: str
    details: tuple[dict[str, Any], ...]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "message": self.message,
            "details": [dict(d) for d in self.details],
            "created_at": self.created_at,
        }


def _message(severity: str, n_drifted: int) -> str:
    features = f"{n_drifted} feature{'s' if n_drifted != 1 else ''}"
    if severity == "critical":
        return f"{_ICON[severity]} Significant drift detected in {features}!"
    if severity == "warning":
        return f"{_ICON[severity]} Drift detected in {features}."
    return f"{_ICON[severity]} Drift detected in {features}, below the dataset-drift threshold."


class AlertGate:
    """Raise an alert when ``m`` of the last ``n`` checks agree, with a cooldown per severity.

    The alert's severity is the highest severity ``s`` such that the current check is at ``s`` or
    higher and at least ``m`` of the last ``n`` checks (the current one included) are at ``s`` or
    higher. It is suppressed if an alert of the same or higher severity fired less than
    ``cooldown_s`` ago; an escalation fires at once and restarts the cooldown at its severity.
    Checks whose status is ``not_enough_data`` count as "no drift".

    Parameters
    ----------
    policy : AlertPolicy, default=None
        ``None`` means ``AlertPolicy()``. Stored unchanged as ``self.policy``.

    Examples
    --------
    >>> import numpy as np
    >>> from rtml.drift import ReferenceProfile, check
    >>> rng = np.random.default_rng(0)
    >>> cols = [f"x{i}" for i in range(4)]
    >>> profile = ReferenceProfile.fit({c: rng.normal(size=3500) for c in cols}, numerical=cols)
    >>> gate = AlertGate()
    >>> for i in range(6):
    ...     shift = 0.5 if i >= 3 else 0.0
    ...     result = check(reference=profile, current={c: rng.normal(shift, size=500) for c in cols})
    ...     alert = gate.update(result, now_s=300.0 * i)
    ...     if alert is not None:
    ...         print(i, alert.severity, alert.message)
    4 critical 🚨 Significant drift detected in 4 features!
    """

    def __init__(self, policy: AlertPolicy | None = None):
        if policy is not None and not isinstance(policy, AlertPolicy):
            raise InvalidParameterError(
                f"The 'policy' parameter of AlertGate must be an AlertPolicy. Got {type(policy).__name__} instead."
            )
        self.policy = AlertPolicy() if policy is None else policy
        self._reset()

    def _reset(self) -> None:
        self._ranks: deque[int] = deque(maxlen=self.policy.n)
        self._last_alert: Alert | None = None
        self._last_now_s = -math.inf
        self._n_checks = 0

    @property
    def last_alert(self) -> Alert | None:
        """The last alert raised, if any."""
        return self._last_alert

    @property
    def n_checks(self) -> int:
        """Number of checks seen since the last reset."""
        return self._n_checks

    def update(self, result: DatasetResult, now_s: float) -> Alert | None:
        """Feed one check result at simulated time ``now_s``; return the alert it raises, if any."""
        now_s = validate_float("AlertGate.update", "now_s", now_s)
        if now_s < self._last_now_s:
            raise ValueError(f"now_s must not decrease: got {now_s} after {self._last_now_s}.")
        rank = _RANK[self.policy.severity(result)]
        self._ranks.append(rank)
        self._n_checks += 1
        self._last_now_s = now_s

        supported = 0
        for level in (3, 2, 1):
            if rank >= level and sum(r >= level for r in self._ranks) >= self.policy.m:
                supported = level
                break
        if supported == 0:
            return None
        last = self._last_alert
        if last is not None and now_s - last.created_at < self.policy.cooldown_s and supported <= _RANK[last.severity]:
            return None

        severity = SEVERITIES[supported - 1]
        details = tuple(
            {
                "feature": f.feature,
                "statistic": f.evidence.statistic,
                "value": f.evidence.value,
                "threshold": f.evidence.threshold,
            }
            for f in result.features
            if f.drifted and f.evidence is not None
        )
        alert = Alert(severity, _message(severity, result.n_drifted), details, now_s)
        self._last_alert = alert
        logger.debug("alert %s at %s: %s", severity, now_s, alert.message)
        return alert


def format_alert_log_lines(alert: Alert) -> list[str]:
    """Log lines for an alert: the message, then ``- feature: value (threshold: t)`` per feature.

    ``value`` is the statistic that decided the feature's verdict (named in ``alert.details``):
    under the calibrated policy the effect size (PSI, JS distance or KS statistic) with the
    largest ratio to its floor, the significance test having passed; under the seed policy the
    criterion with the largest exceedance (a p-value is then shown against its alpha).

    Examples
    --------
    >>> alert = Alert("critical", "🚨 Significant drift detected in 1 feature!",
    ...               ({"feature": "age", "statistic": "ks_statistic", "value": 0.0873, "threshold": 0.05},), 0.0)
    >>> print("\\n".join(format_alert_log_lines(alert)))
    🚨 Significant drift detected in 1 feature!
    - age: 0.0873 (threshold: 0.05)
    """
    return [alert.message] + [
        f"- {d['feature']}: {d['value']:.3g} (threshold: {d['threshold']:.3g})" for d in alert.details
    ]
