"""``python drift_detector.py evaluate``: false alarms and detection delay on replayed scenarios.

Everything runs in memory (no database): the simulator (:class:`rtml.simulation.Simulator`) is
driven in big chunks of ticks, the reference is profiled once per run, and each check's
statistics are computed once (:func:`rtml.drift.measure`) and judged under every policy
(:func:`rtml.drift.decide`), which gives exactly what :func:`rtml.drift.check` gives per policy.

Two measurements:

* **False alarms** (scenario ``none``): for each window size ``N`` the reference is
  ``max(3500, N)`` rows drawn over the ``simulation.baseline_days`` before the live start (as the
  system's baseline), and each check compares the ``N`` newest rows of the live stream with it.
  Windows advance by a stride of ``N`` rows (disjoint windows) while the stream stays within
  :data:`MAX_STREAM_ROWS` rows per seed; beyond that (100k and 1M rows) they overlap (sliding
  windows, stride ``MAX_STREAM_ROWS / checks``), so consecutive checks are correlated and the
  number of *independent* windows is reported next to the number of checks.
* **Detection delay** (scenarios ``sudden`` and ``gradual``): the current window is the last
  ``drift.window_minutes`` of simulated time (about 9,000 rows per hour at the default rates),
  checks run every ``drift.check_interval_minutes`` from the first full window on, and every
  check feeds an :class:`rtml.alerting.AlertGate` with the configured alert policy. The reference
  is ``max(3500, rows per window)`` baseline rows. The delay is measured from the drift onset to
  the first critical alert at or after it; for ``gradual`` also from the time the intensity reaches
  0.2.

Targets (issue 3): calibrated false alarms <= 1 % per check at every size; ``sudden``: first
critical alert within 2 checks; ``gradual``: within 6 simulated hours after the intensity reaches
0.2.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from rtml.alerting import AlertGate
from rtml.config import Settings
from rtml.drift import ReferenceProfile, decide, measure
from rtml.monitor import make_alert_policy, make_policy
from rtml.simulation import CATEGORICAL_FEATURES, DAY_S, FEATURES, NUMERICAL_FEATURES, DriftSchedule, Simulator

log = logging.getLogger(__name__)

PROG = "drift_detector.py evaluate"
MIN_REFERENCE_ROWS = 3500
#: Most live rows simulated per seed for one window size of the false-alarm sweep.
MAX_STREAM_ROWS = 2_000_000
#: Ticks simulated per call of ``Simulator.ticks`` (about 150k rows).
CHUNK_TICKS = 2000
DEFAULT_SIZES = (500, 5000, 100_000, 1_000_000)
DEFAULT_POLICIES = ("calibrated", "seed")
GRADUAL_LEVEL = 0.2
TARGET_FALSE_ALARM = 0.01
TARGET_SUDDEN_CHECKS = 2
TARGET_GRADUAL_HOURS = 6.0

Columns = dict[str, np.ndarray]
Progress = Callable[[int], Any]


def _no_progress(_: int) -> None:
    return None


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def make_simulator(settings: Settings, scenario: str, seed: int) -> Simulator:
    """A fresh simulator for ``scenario`` whose pool starts ``baseline_days`` before the live start."""
    sim = settings.simulation
    start = settings.sim_start_s
    schedule = DriftSchedule.from_settings(sim, start_s=start).with_scenario(scenario)
    return Simulator.new(schedule, seed=seed, n_customers=sim.n_customers, now_s=start - sim.baseline_days * DAY_S,
                         tick_s=sim.tick_seconds, batch_rows=(sim.batch_min_rows, sim.batch_max_rows))


def _concat(parts: list[Columns], names: Sequence[str]) -> Columns:
    return {c: np.concatenate([p[c] for p in parts]) for c in names}


def baseline_rows(simulator: Simulator, *, rows: int, days: float) -> Columns:
    """``rows`` baseline interactions over the ``days`` before the live start (pre-onset)."""
    parts = []
    for day in range(int(math.ceil(days))):
        batch, _ = simulator.baseline(day=day, days=days, rows=rows)
        parts.append(batch.columns)
    return _concat(parts, FEATURES)


def live_rows(simulator: Simulator, *, min_rows: int, first_tick: int = 0,
              names: Sequence[str] = FEATURES) -> tuple[Columns, int]:
    """At least ``min_rows`` live interactions from ``first_tick`` on; returns them and the next tick."""
    parts, n, tick = [], 0, first_tick
    while n < min_rows:
        batch, _ = simulator.ticks(first_tick=tick, n_ticks=CHUNK_TICKS)
        parts.append({c: batch.columns[c] for c in names})
        n += len(batch)
        tick += CHUNK_TICKS
    return _concat(parts, names), tick


def fit_reference(columns: Columns, bins: int) -> ReferenceProfile:
    """Profile the simulator's features once."""
    return ReferenceProfile.fit(columns, numerical=NUMERICAL_FEATURES, categorical=CATEGORICAL_FEATURES, bins=bins)


def _window(columns: Columns, start: int, stop: int) -> Columns:
    return {c: columns[c][start:stop] for c in FEATURES}


# ------------------------------------------------------------------------------------------
# False alarms on `none`
# ------------------------------------------------------------------------------------------


def upper_bound_95(n_alarms: int, n_checks: int) -> float:
    """One-sided 95 % Clopper-Pearson upper bound of a rate from ``n_alarms`` of ``n_checks``.

    Examples
    --------
    >>> round(upper_bound_95(0, 300), 4)
    0.0099
    """
    if n_checks <= 0:
        return 1.0
    return 1.0 if n_alarms >= n_checks else float(stats.beta.ppf(0.95, n_alarms + 1, n_checks - n_alarms))


@dataclass
class FalseAlarmResult:
    """False alarms of one policy at one window size, over every seed."""

    policy: str
    window_rows: int
    reference_rows: int
    stride_rows: int
    n_checks: int = 0
    n_alarms: int = 0
    independent_windows: float = 0.0

    @property
    def rate(self) -> float:
        return self.n_alarms / self.n_checks if self.n_checks else 0.0

    @property
    def upper_95(self) -> float:
        """Clopper-Pearson bound treating checks as independent (optimistic for overlapping windows)."""
        return upper_bound_95(self.n_alarms, self.n_checks)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": self.rate, "upper_95": self.upper_95,
                "target_met": self.rate <= TARGET_FALSE_ALARM if self.policy == "calibrated" else None}


def sweep_stride(window_rows: int, checks_per_seed: int, max_stream_rows: int = MAX_STREAM_ROWS) -> int:
    """Rows between consecutive windows: disjoint windows when they fit in ``max_stream_rows``.

    Examples
    --------
    >>> sweep_stride(500, 100), sweep_stride(100_000, 67), sweep_stride(1_000_000, 67)
    (500, 29850, 29850)
    """
    if window_rows * checks_per_seed <= max_stream_rows:
        return window_rows
    return max(1, max_stream_rows // checks_per_seed)


def false_alarms(settings: Settings, *, window_rows: int, n_checks: int, seeds: Sequence[int],
                 policies: Sequence[str], progress: Progress = _no_progress) -> list[FalseAlarmResult]:
    """Measure the dataset-drift rate per check on the ``none`` scenario at one window size.

    ``n_checks`` is split evenly over ``seeds``; each seed has its own simulator, reference
    (``max(3500, window_rows)`` baseline rows) and live stream.

    Parameters
    ----------
    settings : Settings
    window_rows : int
        ``N``: each check uses the ``N`` newest rows.
    n_checks : int
        Total checks over all seeds.
    seeds : sequence of int
    policies : sequence of {"calibrated", "seed"}
    progress : callable, default=no-op
        Called with the number of checks done since the last call.
    """
    per_seed = [n_checks // len(seeds) + (1 if i < n_checks % len(seeds) else 0) for i in range(len(seeds))]
    stride = sweep_stride(window_rows, max(per_seed))
    ref_rows = max(MIN_REFERENCE_ROWS, window_rows)
    judges = {name: make_policy(_drift_with_policy(settings, name)) for name in policies}
    results = {name: FalseAlarmResult(name, window_rows, ref_rows, stride) for name in policies}
    for seed, k in zip(seeds, per_seed):
        if k == 0:
            continue
        sim = make_simulator(settings, "none", seed)
        profile = fit_reference(baseline_rows(sim, rows=ref_rows, days=settings.simulation.baseline_days),
                                settings.drift.bins)
        stream, _ = live_rows(sim, min_rows=window_rows + (k - 1) * stride)
        for i in range(k):
            stats_ = measure(reference=profile, current=_window(stream, i * stride, i * stride + window_rows))
            for name, policy in judges.items():
                r = results[name]
                r.n_checks += 1
                r.n_alarms += decide(stats_, policy).dataset_drift
            progress(1)
        span = window_rows + (k - 1) * stride
        for r in results.values():
            r.independent_windows += span / window_rows
    return list(results.values())


def _drift_with_policy(settings: Settings, name: str):
    return settings.replace(**{"drift.policy": name}).drift


# ------------------------------------------------------------------------------------------
# Detection delay on `sudden` and `gradual`
# ------------------------------------------------------------------------------------------


@dataclass
class DetectionResult:
    """When one policy first raised a critical alert in one scenario run."""

    policy: str
    scenario: str
    seed: int
    reference_rows: int
    mean_window_rows: float
    onset_hours: float
    alert_hours: float | None = None  # simulated hours after the live start
    alerts_before_onset: int = 0
    checks_before_onset: int = 0
    level_hours: float | None = None  # gradual: when the intensity reaches GRADUAL_LEVEL
    interval_minutes: float = 5.0
    severities: dict[str, int] = field(default_factory=dict)

    @property
    def delay_hours(self) -> float | None:
        return None if self.alert_hours is None else self.alert_hours - self.onset_hours

    @property
    def delay_checks(self) -> int | None:
        if self.delay_hours is None:
            return None
        return int(round(self.delay_hours * 60.0 / self.interval_minutes))

    @property
    def delay_after_level_hours(self) -> float | None:
        if self.alert_hours is None or self.level_hours is None:
            return None
        return self.alert_hours - self.level_hours

    @property
    def target_met(self) -> bool:
        if self.alert_hours is None:
            return False
        if self.scenario == "sudden":
            return self.delay_checks <= TARGET_SUDDEN_CHECKS
        return self.delay_after_level_hours <= TARGET_GRADUAL_HOURS

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delay_hours": self.delay_hours, "delay_checks": self.delay_checks,
                "delay_after_level_hours": self.delay_after_level_hours, "target_met": self.target_met}


def detection_horizon_hours(settings: Settings, scenario: str) -> float:
    """Simulated hours after the live start after which a run gives up (no alert)."""
    sim = settings.simulation
    if scenario == "gradual":
        return sim.drift_onset_hours + GRADUAL_LEVEL * sim.drift_ramp_hours + 2 * TARGET_GRADUAL_HOURS
    return sim.drift_onset_hours + 6.0


def detection(settings: Settings, *, scenario: str, seed: int, policies: Sequence[str],
              progress: Progress = _no_progress, horizon_hours: float | None = None) -> list[DetectionResult]:
    """Replay ``scenario`` with checks every ``check_interval_minutes`` and an alert gate per policy.

    Stops at the horizon or once every policy has raised a critical alert after the onset.
    """
    drift, sim_settings = settings.drift, settings.simulation
    interval_s = drift.check_interval_minutes * 60.0
    window_s = drift.window_minutes * 60.0
    horizon = detection_horizon_hours(settings, scenario) if horizon_hours is None else horizon_hours
    start = settings.sim_start_s
    onset_s = start + sim_settings.drift_onset_hours * 3600.0

    sim = make_simulator(settings, scenario, seed)
    # baseline first (it advances the pool to the live start), then the live stream
    ref_days = sim_settings.baseline_days
    rows_per_window = window_s / sim_settings.tick_seconds * (sim_settings.batch_min_rows + sim_settings.batch_max_rows) / 2
    ref_rows = max(MIN_REFERENCE_ROWS, int(round(rows_per_window)))
    profile = fit_reference(baseline_rows(sim, rows=ref_rows, days=ref_days), drift.bins)
    n_ticks_total = int(math.ceil(horizon * 3600.0 / sim_settings.tick_seconds))
    names = FEATURES + ("event_time",)
    stream, _ = _live_ticks(sim, n_ticks_total, names)
    times = stream["event_time"]

    judges = {name: make_policy(_drift_with_policy(settings, name)) for name in policies}
    gates = {name: AlertGate(make_alert_policy(settings)) for name in policies}
    level_hours = (sim_settings.drift_onset_hours + GRADUAL_LEVEL * sim_settings.drift_ramp_hours
                   if scenario == "gradual" else None)
    results = {name: DetectionResult(name, scenario, seed, profile.n_rows, 0.0, sim_settings.drift_onset_hours,
                                     level_hours=level_hours, interval_minutes=drift.check_interval_minutes)
               for name in policies}
    n_windows, total_rows = 0, 0
    n_planned = int((horizon * 3600.0 - window_s) // interval_s) + 1
    t = start + window_s
    while t <= start + horizon * 3600.0 + 1e-6:
        lo, hi = np.searchsorted(times, [t - window_s, t], side="right")
        stats_ = measure(reference=profile, current=_window(stream, lo, hi))
        n_windows, total_rows = n_windows + 1, total_rows + (hi - lo)
        for name, policy in judges.items():
            r = results[name]
            if r.alert_hours is not None:
                continue
            result = decide(stats_, policy)
            alert = gates[name].update(result, t) if result.status != "not_enough_data" else None
            if t <= onset_s:
                r.checks_before_onset += 1
            if alert is None:
                continue
            r.severities[alert.severity] = r.severities.get(alert.severity, 0) + 1
            if t <= onset_s:
                r.alerts_before_onset += 1
            elif alert.severity == "critical":
                r.alert_hours = (t - start) / 3600.0
        progress(1)
        if all(r.alert_hours is not None for r in results.values()):
            break
        t += interval_s
    progress(max(n_planned - n_windows, 0))  # checks skipped after every policy alerted
    for r in results.values():
        r.mean_window_rows = total_rows / max(n_windows, 1)
    return list(results.values())


def _live_ticks(sim: Simulator, n_ticks: int, names: Sequence[str]) -> tuple[Columns, int]:
    parts, tick = [], 0
    while tick < n_ticks:
        k = min(CHUNK_TICKS, n_ticks - tick)
        batch, _ = sim.ticks(first_tick=tick, n_ticks=k)
        parts.append({c: batch.columns[c] for c in names})
        tick += k
    return _concat(parts, names), tick


# ------------------------------------------------------------------------------------------
# The whole evaluation
# ------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Everything ``evaluate`` measured."""

    seeds: list[int]
    policies: list[str]
    sizes: list[int]
    checks: dict[int, int]
    false_alarms: list[FalseAlarmResult]
    detections: list[DetectionResult]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "policies": self.policies, "sizes": self.sizes, "checks_per_size": {str(k): v for k, v in self.checks.items()},
                "settings": self.settings,
                "false_alarms": [r.to_dict() for r in self.false_alarms],
                "detection": [r.to_dict() for r in self.detections],
                "summary": summary(self)}


def default_checks(window_rows: int) -> int:
    """Checks per window size when ``--checks`` is not given (>= 200 everywhere, more where cheap)."""
    return 600 if window_rows <= 5000 else 300 if window_rows <= 100_000 else 200


def run_evaluation(settings: Settings, *, seeds: Sequence[int], policies: Sequence[str], sizes: Sequence[int],
                   checks: int | None, scenarios: Sequence[str] = ("sudden", "gradual"),
                   progress_factory: Callable[[int], Any] | None = None) -> Evaluation:
    """Run the false-alarm sweep over ``sizes`` and the detection runs over ``scenarios``.

    ``progress_factory(total)`` may return a tqdm-like object (``update``, ``close``).
    """
    drift = settings.drift
    horizon_checks = {s: int((detection_horizon_hours(settings, s) * 60 - drift.window_minutes)
                             // drift.check_interval_minutes) + 1 for s in scenarios}
    per_size = {size: checks or default_checks(size) for size in sizes}
    total = sum(per_size.values()) + sum(horizon_checks.values()) * len(seeds)
    bar = progress_factory(total) if progress_factory else None
    progress = bar.update if bar is not None else _no_progress
    fa: list[FalseAlarmResult] = []
    try:
        for size in sizes:
            fa += false_alarms(settings, window_rows=size, n_checks=per_size[size], seeds=seeds, policies=policies,
                               progress=progress)
        det: list[DetectionResult] = []
        for scenario in scenarios:
            for seed in seeds:
                det += detection(settings, scenario=scenario, seed=seed, policies=policies, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    sim, drift, alerts = settings.simulation, settings.drift, settings.alerts
    used = {"check_interval_minutes": drift.check_interval_minutes, "window_minutes": drift.window_minutes,
            "bins": drift.bins, "false_alarm_rate": drift.false_alarm_rate,
            "min_drifted_features": drift.min_drifted_features, "drift_onset_hours": sim.drift_onset_hours,
            "drift_ramp_hours": sim.drift_ramp_hours, "alerts": {"m": alerts.m, "n": alerts.n,
                                                                 "critical_share": alerts.critical_share,
                                                                 "critical_min_features": alerts.critical_min_features}}
    return Evaluation(list(seeds), list(policies), list(sizes), per_size, fa, det, used)


def summary(ev: Evaluation) -> dict[str, Any]:
    """Per policy: worst false-alarm rate, and per scenario the worst delay and whether targets are met."""
    out: dict[str, Any] = {}
    for policy in ev.policies:
        fa = [r for r in ev.false_alarms if r.policy == policy]
        entry: dict[str, Any] = {"max_false_alarm_rate": max((r.rate for r in fa), default=None)}
        for scenario in ("sudden", "gradual"):
            runs = [r for r in ev.detections if r.policy == policy and r.scenario == scenario]
            if not runs:
                continue
            delays = [r.delay_hours for r in runs]
            entry[scenario] = {"runs": len(runs), "detected": sum(d is not None for d in delays),
                               "max_delay_hours": None if None in delays else max(delays),
                               "all_within_target": all(r.target_met for r in runs)}
        out[policy] = entry
    return out


# ------------------------------------------------------------------------------------------
# Text output
# ------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _hours(x: float | None) -> str:
    return "—" if x is None else f"{x:+.2f} h" if x < 0 else f"{x:.2f} h"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def format_text(ev: Evaluation) -> str:
    """The human-readable report."""
    s = ev.settings
    lines = [f"Seeds {', '.join(map(str, ev.seeds))}; drift every {s['check_interval_minutes']:g} simulated min; "
             f"alert policy m={s['alerts']['m']} of n={s['alerts']['n']}.", "",
             "False alarms per check on scenario `none` (window = N newest rows; reference = max(3,500, N) "
             "baseline rows)"]
    rows = []
    for r in sorted(ev.false_alarms, key=lambda r: (ev.policies.index(r.policy), r.window_rows)):
        target = "" if r.policy != "calibrated" else ("yes" if r.rate <= TARGET_FALSE_ALARM else "NO")
        rows.append([r.policy, f"{r.window_rows:,}", f"{r.reference_rows:,}", f"{r.stride_rows:,}", str(r.n_checks),
                     f"{r.independent_windows:.0f}", str(r.n_alarms), _pct(r.rate), _pct(r.upper_95), target])
    lines += _table(["policy", "window N", "reference", "stride", "checks", "indep. windows", "alarms", "rate",
                     "95% upper", "≤ 1 %"], rows)
    lines += ["", "95 % upper: one-sided Clopper-Pearson bound treating checks as independent; windows overlap "
              "when stride < N (sliding windows), so it is optimistic there: see 'indep. windows'.", ""]
    for scenario in ("sudden", "gradual"):
        runs = [r for r in ev.detections if r.scenario == scenario]
        if not runs:
            continue
        title = {"sudden": f"Detection on `sudden` (onset at {s['drift_onset_hours']:g} h; target: first critical "
                           f"alert within {TARGET_SUDDEN_CHECKS} checks)",
                 "gradual": f"Detection on `gradual` (onset at {s['drift_onset_hours']:g} h, ramp "
                            f"{s['drift_ramp_hours']:g} h, d = {GRADUAL_LEVEL} at "
                            f"{s['drift_onset_hours'] + GRADUAL_LEVEL * s['drift_ramp_hours']:g} h; target: first "
                            f"critical alert within {TARGET_GRADUAL_HOURS:g} h after d = {GRADUAL_LEVEL})"}[scenario]
        lines.append(title + f"; window {s['window_minutes']:g} min ≈ {runs[0].mean_window_rows:,.0f} rows, "
                             f"reference {runs[0].reference_rows:,} rows")
        rows = []
        for r in sorted(runs, key=lambda r: (ev.policies.index(r.policy), r.seed)):
            rows.append([r.policy, str(r.seed), _hours(r.alert_hours), _hours(r.delay_hours),
                         "—" if r.delay_checks is None else str(r.delay_checks),
                         _hours(r.delay_after_level_hours) if scenario == "gradual" else "",
                         f"{r.alerts_before_onset} of {r.checks_before_onset}", "yes" if r.target_met else "NO"])
        header = ["policy", "seed", "critical alert at", "after onset", "checks", f"after d={GRADUAL_LEVEL}" if
                  scenario == "gradual" else "", "alerts before onset", "target"]
        if scenario != "gradual":
            header, rows = header[:5] + header[6:], [r[:5] + r[6:] for r in rows]
        lines += _table(header, rows) + [""]
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 30:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 30, got {text!r}")
    return values


def _policies(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in ("seed", "calibrated")]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"policies must be seed and/or calibrated, got {text!r}")
    return list(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="False alarms per check on `none` per window size, and detection delay on "
                               "`sudden` and `gradual`, replayed in memory over several seeds.")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--policies", type=_policies, default=list(DEFAULT_POLICIES),
                        help="comma-separated: calibrated,seed (default both)")
    parser.add_argument("--sizes", type=_int_list, default=list(DEFAULT_SIZES),
                        help="window sizes N of the false-alarm sweep (default 500,5000,100000,1000000)")
    parser.add_argument("--checks", type=int, default=None,
                        help="checks per window size over all seeds (default: 600 up to 5k rows, 300 up to "
                             "100k, 200 above: a check at 1M rows takes about a second)")
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, sizes 500,5000, 40 checks per size (a smoke run of a few seconds)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a setting for this run, e.g. --set drift.window_minutes=30 (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None, *, settings: Settings) -> int:
    """Run the ``evaluate`` subcommand; the report goes to stdout, the progress bar to stderr."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.quick:
        args.seeds, args.sizes, args.checks = 1, [500, 5000], 40
    if args.seeds < 1 or (args.checks is not None and args.checks < 1):
        print(f"{PROG}: error: --seeds and --checks must be >= 1", file=sys.stderr)
        return 2
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"{PROG}: error: --set expects SECTION.KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        overrides[key.strip()] = value.strip()
    if overrides:
        settings = settings.replace(**overrides)  # ConfigError -> exit 2 in drift_detector.py
    seeds = [settings.simulation.seed + i for i in range(args.seeds)]

    def bar(total: int):
        if args.no_progress:
            return None
        from tqdm import tqdm
        return tqdm(total=total, desc="evaluate", unit="check", file=sys.stderr, dynamic_ncols=True)

    ev = run_evaluation(settings, seeds=seeds, policies=args.policies, sizes=args.sizes, checks=args.checks,
                        progress_factory=bar)
    if args.format == "json":
        sys.stdout.write(json.dumps(ev.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(format_text(ev))
    return 0
