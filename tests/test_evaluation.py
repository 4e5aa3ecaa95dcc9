"""`drift_detector.py evaluate`: a small, fast version of the false-alarm and detection targets."""

from __future__ import annotations

import json

import pytest

from rtml import evaluation
from rtml.evaluation import (
    TARGET_GRADUAL_HOURS,
    TARGET_SUDDEN_CHECKS,
    detection,
    false_alarms,
    format_text,
    run_evaluation,
    sweep_stride,
    upper_bound_95,
)
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return make_settings(tmp_path_factory.mktemp("eval"))


def test_calibrated_false_alarms_on_none_stay_within_bound(settings):
    for size, checks in ((500, 60), (5000, 20)):
        results = {r.policy: r for r in false_alarms(settings, window_rows=size, n_checks=checks, seeds=[7],
                                                     policies=["calibrated", "seed"])}
        calibrated = results["calibrated"]
        assert calibrated.n_checks == checks and calibrated.stride_rows == size  # disjoint windows
        assert calibrated.reference_rows == max(3500, size)
        assert calibrated.n_alarms <= 1, calibrated  # target 1 %; expected 0 here
        assert results["seed"].n_checks == checks


def test_sudden_first_critical_alert_within_two_checks_with_20_minute_window(settings):
    s = settings.replace(**{"drift.window_minutes": 20})  # 2 checks for seeds 7-14; 30 min gives 3 for seed 7
    [r] = detection(s, scenario="sudden", seed=7, policies=["calibrated"])
    assert r.alerts_before_onset == 0
    assert r.delay_checks is not None and 1 <= r.delay_checks <= TARGET_SUDDEN_CHECKS and r.target_met


@pytest.mark.parametrize("seed", [7, 8])
def test_sudden_first_critical_alert_within_two_checks_at_default_window(settings, seed):
    """The default 20-minute window holds a quarter drifted rows at the first check after a sudden
    onset, enough to be critical; two agreeing checks then raise the alert at check 2."""
    [r] = detection(settings, scenario="sudden", seed=seed, policies=["calibrated"])
    assert r.alerts_before_onset == 0 and r.delay_checks is not None and r.delay_checks <= TARGET_SUDDEN_CHECKS


def test_gradual_first_critical_alert_within_6_hours_after_d_02(settings):
    [r] = detection(settings, scenario="gradual", seed=7, policies=["calibrated"])
    assert r.level_hours == pytest.approx(settings.simulation.drift_onset_hours
                                          + 0.2 * settings.simulation.drift_ramp_hours)
    assert r.alerts_before_onset == 0
    assert r.delay_after_level_hours is not None and r.delay_after_level_hours <= TARGET_GRADUAL_HOURS
    assert r.delay_hours > 0 and r.target_met


def test_sliding_windows_beyond_the_stream_budget():
    assert sweep_stride(500, 200) == 500
    assert sweep_stride(1_000_000, 200) == evaluation.MAX_STREAM_ROWS // 200
    assert upper_bound_95(0, 299) < 0.01 < upper_bound_95(0, 200)


def test_run_evaluation_report_and_json(settings):
    ev = run_evaluation(settings, seeds=[3], policies=["calibrated"], sizes=[500], checks=10, scenarios=("sudden",))
    text = format_text(ev)
    assert "False alarms per check" in text and "Detection on `sudden`" in text and "calibrated" in text
    doc = json.loads(json.dumps(ev.to_dict()))
    assert doc["false_alarms"][0]["n_checks"] == 10 and doc["detection"][0]["scenario"] == "sudden"
    assert set(doc["summary"]["calibrated"]) >= {"max_false_alarm_rate", "sudden"}


def test_cli_quick_and_bad_override(settings, capsys):
    assert evaluation.main(["--quick", "--no-progress", "--policies", "calibrated", "--seeds", "1"],
                           settings=settings) == 0
    assert "False alarms per check" in capsys.readouterr().out
    assert evaluation.main(["--set", "nonsense"], settings=settings) == 2
    assert evaluation.main(["--policies", "magic"], settings=settings) == 2
