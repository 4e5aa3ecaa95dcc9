"""Tests for rtml.drift: statistics vs independent computations, edge cases, policies."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from rtml.drift import (
    EPSILON,
    UNSEEN,
    CalibratedPolicy,
    DatasetResult,
    InvalidParameterError,
    ReferenceProfile,
    SeedPolicy,
    check,
    chi2_homogeneity,
    false_alarm_rate,
    js_distance,
    ks_2samp_sorted,
    ks_critical_distance,
    psi,
    quantile_edges,
)

NUMERICAL = [f"n{i}" for i in range(10)]
CATEGORICAL = ["device_type", "traffic_source", "region", "customer_segment"]
CATEGORIES = {
    "device_type": (["desktop", "mobile", "tablet"], [0.30, 0.60, 0.10]),
    "traffic_source": (["direct", "search", "social", "email", "ads"], [0.35, 0.30, 0.20, 0.12, 0.03]),
    "region": (["north", "south", "east", "west"], [0.25, 0.25, 0.25, 0.25]),
    "customer_segment": (["new", "regular", "premium"], [0.50, 0.45, 0.05]),
}


def make_window(rng: np.random.Generator, n: int, *, shift: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """10 numerical columns (integer-valued, skewed, correlated, heavy-tailed) + 4 categorical."""
    z = rng.standard_normal(n)
    cols = {
        "n0": np.round(40 + 12 * (0.6 * z + 0.8 * rng.standard_normal(n))),  # integer age, correlated
        "n1": rng.lognormal(5.0, 1.0, n),  # skewed session duration
        "n2": rng.poisson(np.exp(1.5 + 0.3 * z)).astype(float),  # integer pages viewed, correlated
        "n3": rng.exponential(10.0, n),  # skewed days since last visit
        "n4": z,
        "n5": rng.random(n),
        "n6": rng.standard_t(3, n),
        "n7": rng.gamma(2.0, 40.0, n),  # skewed cart value
        "n8": rng.normal(3.0, 1.0, n),
        "n9": 0.5 * z + rng.normal(0.0, 1.0, n),
    }
    for name, delta in (shift or {}).items():
        cols[name] = cols[name] + delta * np.std(cols[name])
    for name, (values, shares) in CATEGORIES.items():
        cols[name] = rng.choice(np.array(values, dtype=object), n, p=shares)
    return cols


def fit(frame, **kwargs) -> ReferenceProfile:
    return ReferenceProfile.fit(frame, numerical=NUMERICAL, categorical=CATEGORICAL, **kwargs)


def feature(result: DatasetResult, name: str):
    return next(f for f in result.features if f.feature == name)


# ---------------------------------------------------------------------------------------------
# Statistics vs independent computations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: (rng.normal(size=3500), rng.normal(size=500)),
        lambda rng: (rng.normal(size=3500), rng.normal(0.2, 1.3, size=500)),
        lambda rng: (rng.poisson(3, 4000).astype(float), rng.poisson(3.3, 700).astype(float)),  # ties
        lambda rng: (np.round(rng.normal(size=50), 1), np.round(rng.normal(size=31), 1)),
        lambda rng: (rng.normal(size=20000), rng.normal(size=20000)),
    ],
)
def test_ks_matches_scipy_asymp(make):
    reference, current = make(np.random.default_rng(0))
    expected = stats.ks_2samp(reference, current, method="asymp")
    got = ks_2samp_sorted(reference_sorted=np.sort(reference), current_sorted=np.sort(current))
    assert got.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


def test_ks_through_profile_matches_scipy_on_finite_values():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=2000)
    current = rng.normal(0.1, size=600)
    current[:10] = np.nan
    current[10:12] = [np.inf, -np.inf]
    profile = ReferenceProfile.fit({"x": reference}, numerical=["x"])
    result = feature(check(reference=profile, current={"x": current}), "x")
    expected = stats.ks_2samp(reference, current[np.isfinite(current)], method="asymp")
    assert result.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.ks_pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


def test_chi2_matches_scipy_without_pooling():
    reference, current = np.array([300, 500, 200, 100]), np.array([45, 35, 20, 12])
    expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    got = chi2_homogeneity(reference=reference, current=current)
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-9)
    assert got.dof == expected.dof == 3


def test_chi2_2x2_has_no_yates_correction():
    expected = stats.chi2_contingency([[300, 700], [45, 55]], correction=False)
    got = chi2_homogeneity(reference=[300, 700], current=[45, 55])
    assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi2_pools_columns_with_small_expected_counts():
    # columns 3 and 4 have expected counts 3.2 and 2.8 < 5 in the current row: pooled (6.0)
    reference, current = np.array([400, 400, 30, 25]), np.array([50, 40, 2, 3])
    pooled = np.array([[400, 400, 55], [50, 40, 5]])
    expected = stats.chi2_contingency(pooled, correction=False)
    got = chi2_homogeneity(reference=reference, current=current)
    assert got.dof == 2
    # a pool still below 5 absorbs the smallest remaining column
    assert chi2_homogeneity(reference=[400, 400, 10, 8], current=[50, 40, 1, 3]).dof == 1
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-9)


def test_chi2_without_a_possible_test_returns_pvalue_one():
    assert chi2_homogeneity(reference=[100, 0], current=[20, 0]) == (0.0, 1.0, 0)
    assert chi2_homogeneity(reference=[100, 1], current=[20, 1]) == (0.0, 1.0, 0)


def test_js_matches_scipy():
    rng = np.random.default_rng(2)
    for _ in range(5):
        reference, current = rng.integers(0, 50, 8), rng.integers(0, 50, 8)
        assert js_distance(reference=reference, current=current) == pytest.approx(
            jensenshannon(reference, current, base=2), rel=1e-12
        )
    assert js_distance(reference=[3, 0], current=[0, 4]) == pytest.approx(1.0)


def test_psi_golden_numbers():
    # hand computed: (0.75 - 0.5) ln(1.5) + (0.25 - 0.5) ln(0.5) = 0.25 (ln 1.5 + ln 2)
    assert psi(reference=[50, 50], current=[25, 75]) == pytest.approx(0.25 * math.log(3.0), rel=1e-12)
    assert psi(reference=[50, 50], current=[25, 75]) == pytest.approx(0.274653072, abs=1e-9)
    # empty reference bin: its share becomes EPSILON (no renormalisation)
    expected = (0.4 - 0.5) * math.log(0.8) + (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    assert psi(reference=[5, 5, 0], current=[4, 5, 1]) == pytest.approx(expected, rel=1e-12)
    assert psi(reference=[5, 5, 0], current=[4, 5, 1]) == pytest.approx(0.712399108, abs=1e-9)
    assert psi(reference=[1, 2, 3], current=[10, 20, 30]) == 0.0


def test_numerical_psi_and_js_use_cached_quantile_bins():
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=3500), rng.normal(0.3, size=500)
    profile = ReferenceProfile.fit({"x": reference}, numerical=["x"])
    result = feature(check(reference=profile, current={"x": current}), "x")
    edges = quantile_edges(reference, bins=10)
    # independent binning: right-closed bins (e_i, e_{i+1}] via np.histogram on -x
    bins = np.concatenate([[-np.inf], edges, [np.inf]])
    ref_counts = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=bins.size - 1)
    cur_counts = np.bincount(np.searchsorted(edges, current, side="left"), minlength=bins.size - 1)
    assert result.js_distance == pytest.approx(jensenshannon(ref_counts, cur_counts, base=2), rel=1e-12)
    r, c = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    assert result.psi == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-12)


def test_quantile_edges_ties_constant_and_outer_bins():
    assert quantile_edges(np.arange(1, 11), bins=5).tolist() == [2.0, 4.0, 6.0, 8.0]
    # heavy ties at the minimum keep their own bin; duplicate edges are removed
    assert quantile_edges([0, 0, 0, 0, 0, 0, 0, 1, 2, 3], bins=4).tolist() == [0.0, 1.0]
    # an edge equal to the maximum would leave the top bin empty: moved to the value below it
    assert quantile_edges([0, 1, 1, 1, 1, 1, 1, 1, 1, 1], bins=4).tolist() == [0.0]
    assert quantile_edges([0, 1, 2, 3, 3, 3, 3, 3, 3, 3], bins=4).tolist() == [2.0]
    edges = quantile_edges([5.0, 5.0, 5.0], bins=10)
    assert edges.tolist() == [np.nextafter(5.0, -np.inf), 5.0]
    assert quantile_edges([np.nan, np.inf], bins=10).size == 0
    with pytest.raises(InvalidParameterError, match="The 'bins' parameter of quantile_edges must be an int >= 2. Got 1 instead."):
        quantile_edges([1, 2, 3], bins=1)


def test_categorical_statistics_match_independent_computation():
    rng = np.random.default_rng(4)
    reference = rng.choice(["a", "b", "c"], 3500, p=[0.3, 0.6, 0.1])
    current = rng.choice(["a", "b", "c"], 500, p=[0.45, 0.45, 0.10])
    profile = ReferenceProfile.fit({"cat": reference}, categorical=["cat"])
    result = feature(check(reference=profile, current={"cat": current}), "cat")
    ref_counts = np.array([(reference == v).sum() for v in "abc"] + [0])
    cur_counts = np.array([(current == v).sum() for v in "abc"] + [0])
    expected = stats.chi2_contingency(np.vstack([ref_counts[:3], cur_counts[:3]]), correction=False)
    assert result.chi2_statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.chi2_pvalue == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.js_distance == pytest.approx(jensenshannon(ref_counts, cur_counts, base=2), rel=1e-12)
    assert result.psi == pytest.approx(psi(reference=ref_counts, current=cur_counts))
    assert result.drifted  # share 0.30 -> 0.45 at 500 rows


# ---------------------------------------------------------------------------------------------
# Edge cases: unseen categories, missing values, constant, empty and tiny windows
# ---------------------------------------------------------------------------------------------


def test_unseen_categories_get_their_own_bin():
    rng = np.random.default_rng(5)
    profile = ReferenceProfile.fit({"c": rng.choice(["a", "b"], 2000)}, categorical=["c"])
    current = np.concatenate([rng.choice(["a", "b"], 400), np.array(["zzz"] * 100)])
    result = feature(check(reference=profile, current={"c": current}), "c")
    assert result.unseen_share == pytest.approx(0.2)
    assert result.drifted and result.chi2_pvalue < 1e-10
    assert UNSEEN == "__unseen__"
    same = feature(check(reference=profile, current={"c": rng.choice(["a", "b"], 500)}), "c")
    assert same.unseen_share == 0.0 and not same.drifted


def test_nan_and_inf_are_missing_and_reported():
    rng = np.random.default_rng(6)
    ref_x = rng.normal(size=3000)
    ref_x[:30] = np.nan  # 1 % missing
    ref_c = rng.choice(np.array(["a", "b"], dtype=object), 3000)
    ref_c[:30] = None
    profile = ReferenceProfile.fit({"x": ref_x, "c": ref_c}, numerical=["x"], categorical=["c"])
    cur_x = rng.normal(size=1000)
    cur_x[:150] = np.nan
    cur_x[150:200] = np.inf  # 20 % missing
    cur_c = rng.choice(np.array(["a", "b"], dtype=object), 1000)
    cur_c[:15] = np.nan  # 1.5 % missing: +0.5 point, below the 0.01 absolute floor
    result = check(reference=profile, current={"x": cur_x, "c": cur_c})
    x, c = feature(result, "x"), feature(result, "c")
    assert (x.missing_rate_reference, x.missing_rate_current) == (pytest.approx(0.01), pytest.approx(0.2))
    assert x.n_reference == 2970 and x.n_current == 800
    assert x.missing_changed and not c.missing_changed
    assert c.missing_rate_current == pytest.approx(0.015)
    assert not x.drifted  # the values themselves did not change


def test_constant_reference_detects_a_non_constant_current():
    rng = np.random.default_rng(7)
    profile = ReferenceProfile.fit(
        {"x": np.full(1000, 2.0), "c": np.array(["only"] * 1000, dtype=object)}, numerical=["x"], categorical=["c"]
    )
    same = check(reference=profile, current={"x": np.full(500, 2.0), "c": np.array(["only"] * 500, dtype=object)})
    assert [f.status for f in same.features] == ["constant_reference", "constant_reference"]
    assert same.n_features == 2 and not same.dataset_drift and same.status == "ok"
    moved = check(
        reference=profile,
        current={"x": rng.normal(2.0, 1.0, 500), "c": rng.choice(np.array(["only", "new"], dtype=object), 500)},
    )
    assert all(f.drifted for f in moved.features) and moved.dataset_drift
    assert feature(moved, "x").psi > 1.0


def test_empty_tiny_and_missing_columns_give_a_status_not_a_crash():
    rng = np.random.default_rng(8)
    profile = ReferenceProfile.fit(
        {"x": rng.normal(size=1000), "y": rng.normal(size=1000), "c": rng.choice(["a", "b"], 1000)},
        numerical=["x", "y"], categorical=["c"],
    )
    empty = check(reference=profile, current={"x": np.array([]), "y": np.array([]), "c": np.array([])})
    assert [f.status for f in empty.features] == ["not_enough_data"] * 3
    assert empty.status == "not_enough_data" and not empty.dataset_drift and empty.n_features == 0
    assert empty.features[0].missing_rate_current is None and empty.features[0].psi is None

    tiny = check(reference=profile, current={"x": rng.normal(5, size=29), "y": rng.normal(5, size=29), "c": ["a"] * 29})
    assert {f.status for f in tiny.features} == {"not_enough_data"}
    assert not tiny.dataset_drift and tiny.features[0].ks_statistic > 0.9  # stats still reported

    all_nan = {"x": np.full(500, np.nan), "y": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)}
    partial = check(reference=profile, current=all_nan)
    assert partial.status == "partial" and partial.n_features == 2
    assert feature(partial, "x").missing_rate_current == 1.0 and feature(partial, "x").missing_changed

    no_column = check(reference=profile, current={"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    assert feature(no_column, "y").status == "missing_column" and no_column.status == "partial"

    small_ref = ReferenceProfile.fit({"x": rng.normal(size=10)}, numerical=["x"])
    assert check(reference=small_ref, current={"x": rng.normal(size=500)}).status == "not_enough_data"


def test_dataframe_and_mapping_give_the_same_result():
    rng = np.random.default_rng(9)
    reference, current = make_window(rng, 3500), make_window(rng, 500, shift={"n4": 0.5})
    from_frame = check(reference=fit(pd.DataFrame(reference)), current=pd.DataFrame(current))
    from_dict = check(reference=fit(reference), current=current)
    assert from_frame.to_dict() == from_dict.to_dict()


def test_categorical_columns_accept_strings_categoricals_and_integers():
    rng = np.random.default_rng(10)
    ref = rng.choice(["a", "b", "c"], 2000)
    cur = rng.choice(["a", "b", "c", "d"], 500)
    profile = ReferenceProfile.fit({"c": ref}, categorical=["c"])
    results = [
        feature(check(reference=profile, current={"c": values}), "c").to_dict()
        for values in (cur, cur.astype(object), pd.Series(cur, dtype="category"), pd.Series(cur, dtype="str"))
    ]
    assert all(r == results[0] for r in results)
    int_profile = ReferenceProfile.fit({"c": rng.integers(0, 3, 2000)}, categorical=["c"])
    assert feature(check(reference=int_profile, current={"c": rng.integers(0, 3, 500)}), "c").status == "ok"


def test_results_are_json_serialisable_plain_types():
    rng = np.random.default_rng(11)
    result = check(reference=fit(make_window(rng, 3500)), current=make_window(rng, 500, shift={"n1": 1.0}))
    as_dict = result.to_dict()
    json.dumps(as_dict, allow_nan=False)
    assert as_dict["policy"]["name"] == "calibrated"
    assert [f["feature"] for f in as_dict["features"]] == NUMERICAL + CATEGORICAL
    n1 = as_dict["features"][1]
    assert type(n1["ks_pvalue"]) is float and type(n1["n_current"]) is int and n1["chi2_pvalue"] is None
    assert set(n1["thresholds"]) == {"ks_pvalue", "psi", "js_distance", "ks_statistic"}
    assert n1["evidence"]["statistic"] in n1["thresholds"]


def test_min_detectable_shift_uses_ks_critical_distance_and_floor():
    rng = np.random.default_rng(12)
    policy = CalibratedPolicy()
    for n_ref, n_cur in ((3500, 500), (200_000, 200_000)):
        profile = ReferenceProfile.fit({"x": rng.normal(size=n_ref), "y": rng.normal(size=n_ref)}, numerical=["x", "y"])
        x = feature(check(reference=profile, current={"x": rng.normal(size=n_cur), "y": rng.normal(size=n_cur)}), "x")
        alpha = policy.feature_alpha("numerical", 2)
        assert x.thresholds["ks_pvalue"] == alpha == 0.01
        assert x.min_detectable_shift == pytest.approx(max(ks_critical_distance(alpha, n_ref, n_cur), 0.05))
    assert x.min_detectable_shift == 0.05  # large samples: the floor binds
    c = feature(check(reference=fit(make_window(rng, 3500)), current=make_window(rng, 500)), "device_type")
    assert 0.05 < c.min_detectable_shift < 0.15  # a 0.30 -> 0.45 share change is detectable


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CalibratedPolicy(false_alarm_rate=2),
         r"The 'false_alarm_rate' parameter of CalibratedPolicy must be a float in \(0, 0.5\)\. Got 2 instead\."),
        (lambda: CalibratedPolicy(min_drifted_features=0),
         r"The 'min_drifted_features' parameter of CalibratedPolicy must be an int >= 1\. Got 0 instead\."),
        (lambda: CalibratedPolicy(psi_floor=-0.1), r"The 'psi_floor' parameter of CalibratedPolicy must be a float >= 0\."),
        (lambda: CalibratedPolicy(ks_floor=True), r"The 'ks_floor' parameter of CalibratedPolicy .* Got True instead\."),
        (lambda: CalibratedPolicy(min_rows=1), r"The 'min_rows' parameter of CalibratedPolicy must be an int >= 2\."),
        (lambda: SeedPolicy(ks_pvalue=1.5), r"The 'ks_pvalue' parameter of SeedPolicy must be a float in \(0, 1\)\."),
        (lambda: SeedPolicy(js_threshold="0.1"), r"The 'js_threshold' parameter of SeedPolicy .* Got '0.1' instead\."),
        (lambda: ReferenceProfile.fit({"x": [1.0]}, numerical=["x"], bins=1),
         r"The 'bins' parameter of ReferenceProfile.fit must be an int >= 2\. Got 1 instead\."),
        (lambda: ReferenceProfile.fit([1, 2], numerical=["x"]), r"The 'reference' parameter of ReferenceProfile.fit"),
        (lambda: ReferenceProfile.fit({"x": [1.0]}), r"at least one numerical or categorical feature"),
        (lambda: ReferenceProfile.fit({"x": [1.0]}, numerical=["x", "y"]), r"Columns missing from the reference: \['y'\]"),
        (lambda: ReferenceProfile.fit({"x": [1.0], "y": [1.0, 2.0]}, numerical=["x", "y"]), r"same length"),
        (lambda: ReferenceProfile.fit({"x": ["a", "b"]}, numerical=["x"]), r"Column 'x' is declared numerical"),
        (lambda: check(reference={"x": [1]}, current={"x": [1]}), r"The 'reference' parameter of check must be a ReferenceProfile"),
        (lambda: check(reference=ReferenceProfile.fit({"x": [1.0]}, numerical=["x"]), current=[1.0]),
         r"The 'current' parameter of check must be a pandas DataFrame"),
        (lambda: check(reference=ReferenceProfile.fit({"x": [1.0]}, numerical=["x"]), current={"x": [1.0]}, policy="seed"),
         r"The 'policy' parameter of check must be a SeedPolicy or a CalibratedPolicy"),
        (lambda: psi(reference=[1, 2], current=[1, 2, 3]), r"same number of bins"),
        (lambda: psi(reference=[0, 0], current=[1, 2]), r"positive sum"),
        (lambda: false_alarm_rate(make_windows=lambda i: None, n_checks=0), r"The 'n_checks' parameter"),
    ],
)
def test_invalid_inputs_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_policy_describes_itself():
    assert SeedPolicy().to_dict() == {
        "name": "seed",
        "params": {"psi_threshold": 0.1, "ks_pvalue": 0.05, "js_threshold": 0.1, "chi2_pvalue": 0.05,
                   "min_drifted_features": 2, "min_rows": 30, "missing_min_change": 0.01},
    }
    assert CalibratedPolicy().feature_alpha("categorical", 14) == pytest.approx(2 * 0.01 / 14)
    assert CalibratedPolicy().feature_alpha("numerical", 1) == pytest.approx(0.01)  # k = min(2, 1)


# ---------------------------------------------------------------------------------------------
# Policies: stationary false alarms and detection
# ---------------------------------------------------------------------------------------------


def stationary_windows(n_reference: int, n_current: int, seed: int):
    def make_windows(i: int):
        rng = np.random.default_rng([seed, i])
        return fit(make_window(rng, n_reference)), make_window(rng, n_current)

    return make_windows


def test_stationary_false_alarm_rate_calibrated_vs_seed():
    make_windows = stationary_windows(3500, 500, seed=2026)
    windows = [make_windows(i) for i in range(200)]  # fit once, check with both policies
    calibrated = false_alarm_rate(make_windows=windows.__getitem__, n_checks=200, policy=CalibratedPolicy())
    seed = false_alarm_rate(make_windows=windows.__getitem__, n_checks=200, policy=SeedPolicy())
    assert calibrated.n_alarms <= 2  # <= 1 % of 200 checks
    assert seed.rate >= 0.05  # the seed's fixed thresholds alarm on 10-14 % of stationary checks (>= 5 % is robust)


def test_large_samples_do_not_flag_trivial_shifts():
    rng = np.random.default_rng(13)
    cols = ["x", "y", "z"]
    profile = ReferenceProfile.fit({c: rng.normal(size=200_000) for c in cols}, numerical=cols)
    current = {c: rng.normal(0.03, size=200_000) for c in cols}  # significant but trivial
    calibrated = check(reference=profile, current=current)
    seed = check(reference=profile, current=current, policy=SeedPolicy())
    assert all(f.ks_pvalue < 0.001 for f in calibrated.features)
    assert not calibrated.dataset_drift and calibrated.n_drifted == 0
    assert seed.dataset_drift


def test_calibrated_detects_a_small_shift_in_small_windows():
    for i in range(20):
        rng = np.random.default_rng([77, i])
        profile = fit(make_window(rng, 3500))
        current = make_window(rng, 500, shift={"n1": 0.3, "n4": 0.3, "n8": 0.3})
        result = check(reference=profile, current=current)
        assert result.dataset_drift, i
        assert {f.feature for f in result.features if f.drifted} <= {"n1", "n4", "n8", "n9"}  # n9 correlates with n4


# ---------------------------------------------------------------------------------------------
# Fast paths (issue 3): the same numbers as scipy and as the straightforward computation
# ---------------------------------------------------------------------------------------------


def test_kstwo_sf_fast_branches_match_scipy():
    from rtml.drift import _kstwo_sf

    rng = np.random.default_rng(11)
    for n in (141, 200, 438, 1000, 5000, 24_999, *rng.integers(141, 25_000, 8).tolist()):
        n = int(n)
        pelz_good = np.sqrt(rng.uniform(1.0 / n, 2.2, 40) / n)  # n x^2 < 2.2
        durbin = (1.4 / n) ** (2 / 3) * rng.uniform(0.3, 1.0, 10)  # n x^1.5 <= 1.4
        others = [0.0, 0.3 / n, 1.5 / n, np.sqrt(3.0 / n), 0.5, 0.7, 1.0]  # delegated to scipy
        for x in [*pelz_good, *durbin, *others]:
            assert _kstwo_sf(n, float(x)) == pytest.approx(stats.kstwo.sf(float(x), n), rel=0, abs=1e-12), (n, x)
    for n in (30, 100, 140):  # small n: scipy itself
        assert _kstwo_sf(n, 0.2) == stats.kstwo.sf(0.2, n)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: (rng.normal(size=60_000), rng.normal(size=50_000)),  # blocks, all distinct
        lambda rng: (rng.normal(size=60_000), rng.normal(0.02, size=50_000)),
        lambda rng: (  # blocks with ties inside the current sample and with the reference
            np.where(rng.random(40_000) < 0.4, 0.0, np.round(rng.exponential(5.0, 40_000), 3)),
            np.where(rng.random(30_000) < 0.4, 0.0, np.round(rng.exponential(5.1, 30_000), 3)),
        ),
        lambda rng: (np.arange(20_000.0), np.arange(20_000.0)[::-1].copy()),  # D = 0: every block opened
        lambda rng: (rng.normal(size=5_000), rng.normal(3.0, size=9_000)),  # far apart
    ],
)
def test_ks_statistic_with_blocks_is_scipys(make):
    reference, current = make(np.random.default_rng(12))
    expected = stats.ks_2samp(reference, current, method="asymp")
    got = ks_2samp_sorted(reference_sorted=np.sort(reference), current_sorted=np.sort(current))
    assert got.statistic == expected.statistic
    if reference.size * current.size / (reference.size + current.size) <= 25_000:
        assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


def test_arrow_strings_are_counted_like_objects():
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(13)
    values = np.array(["a", "b", "c", None, "d"], dtype=object)
    reference = rng.choice(values[:4], 3000, p=[0.5, 0.3, 0.15, 0.05])
    current = rng.choice(values, 700, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    results = []
    for dtype in (object, "string[pyarrow]", "str"):
        ref, cur = pd.Series(reference, dtype=dtype), pd.Series(current, dtype=dtype)
        profile = ReferenceProfile.fit({"c": ref}, categorical=["c"])
        results.append(check(reference=profile, current={"c": cur}).to_dict())
    assert results[1] == results[0] and results[2] == results[0]
    f = results[0]["features"][0]
    assert f["missing_rate_current"] == pytest.approx((current == None).mean())  # noqa: E711
    assert f["unseen_share"] == pytest.approx((current == "d").sum() / (current != None).sum())  # noqa: E711
