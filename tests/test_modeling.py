"""Training pipeline, metrics, time-ordered splits and version numbers (pure; no database)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, f1_score, log_loss, roc_auc_score

from rtml import modeling
from rtml.simulation import CATEGORICAL_FEATURES, FEATURES, NUMERICAL_FEATURES, DriftSchedule, Simulator
from rtml.table import Table
from tests.conftest import make_settings


def simulate(n_ticks: int = 40, *, seed: int = 5) -> Table:
    sim = Simulator.new(DriftSchedule("none", start_s=0.0), seed=seed, n_customers=500, now_s=0.0)
    batch, _ = sim.ticks(first_tick=0, n_ticks=n_ticks)
    return Table({name: list(values) for name, values in batch.columns.items()})


def with_column(table: Table, name: str, values) -> Table:
    return Table({**{c: table[c] for c in table.names}, name: values})


@pytest.fixture(scope="module")
def frame():
    return simulate()


@pytest.fixture
def model_settings(tmp_path):
    return make_settings(tmp_path, **{"model.n_estimators": 25, "model.max_depth": 6}).model


def test_build_pipeline_uses_settings(tmp_path):
    ms = make_settings(tmp_path, **{"model.n_estimators": 7, "model.max_depth": 0,
                                    "model.min_samples_leaf": 3}).model
    forest = modeling.build_pipeline(ms, seed=11).named_steps["forest"]
    assert (forest.n_estimators, forest.max_depth, forest.min_samples_leaf) == (7, None, 3)
    assert (forest.random_state, forest.n_jobs) == (11, 1)


def test_train_is_seeded_and_chunked_fit_equals_one_fit(frame, model_settings):
    a = modeling.train(frame, model_settings=model_settings, seed=1)
    b = modeling.train(frame, model_settings=model_settings, seed=1)
    one = modeling.build_pipeline(model_settings, seed=1).fit(modeling.design_matrix(frame), frame["converted"])
    holdout = simulate(seed=6)
    pa = modeling.predict_proba(a, holdout)
    np.testing.assert_array_equal(pa, modeling.predict_proba(b, holdout))
    np.testing.assert_allclose(pa, modeling.predict_proba(one, holdout))
    assert len(a.named_steps["forest"].estimators_) == 25
    assert a.n_features_in_ == len(FEATURES) and not hasattr(a, "feature_names_in_")


def test_array_pipeline_is_the_same_model_as_a_dataframe_pipeline(frame, model_settings):
    """Feeding the forest a design matrix instead of a DataFrame changes nothing it learns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    named = modeling.build_pipeline(model_settings, seed=1)
    named.steps[0] = ("features", ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
         ("numerical", "passthrough", list(NUMERICAL_FEATURES))], sparse_threshold=0.0))
    as_frame = pd.DataFrame({c: frame[c] for c in frame.names})
    named.fit(as_frame[list(FEATURES)], as_frame["converted"])
    holdout = simulate(seed=6)
    expected = named.predict_proba(pd.DataFrame({c: holdout[c] for c in holdout.names})[list(FEATURES)])[:, 1]
    model = modeling.train(frame, model_settings=model_settings, seed=1)
    np.testing.assert_array_equal(modeling.predict_proba(model, holdout), expected)


def test_train_can_be_cancelled(frame, model_settings):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(modeling.TrainingCancelled, match="cancelled"):
        modeling.train(frame, model_settings=model_settings, seed=1, cancel=cancel)


def test_train_refuses_one_class_and_missing_columns(frame, model_settings):
    with pytest.raises(ValueError, match="single class"):
        modeling.train(with_column(frame, "converted", np.zeros(len(frame), np.int64)),
                       model_settings=model_settings, seed=1)
    with pytest.raises(ValueError, match="lacks column"):
        modeling.train(frame.select([c for c in frame.names if c != "age"]), model_settings=model_settings, seed=1)


def test_unknown_category_is_ignored(frame, model_settings):
    model = modeling.train(frame, model_settings=model_settings, seed=1)
    odd = with_column(frame.take(range(5)), "device_type", ["smartwatch"] * 5)
    assert modeling.predict_proba(model, odd).shape == (5,)


def test_evaluate_matches_sklearn(frame, model_settings):
    model = modeling.train(frame, model_settings=model_settings, seed=1)
    holdout = simulate(seed=9)
    m = modeling.evaluate(model, holdout)
    p, y = modeling.predict_proba(model, holdout), holdout["converted"]
    assert set(m) == set(modeling.METRICS)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-6)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["f1"] == pytest.approx(f1_score(y, p >= 0.5, zero_division=0.0))
    assert m["base_rate"] == pytest.approx(y.mean())
    assert m["n_rows"] == len(holdout)
    assert 0.6 < m["roc_auc"] < 0.85


def test_metrics_never_crash_on_degenerate_input():
    one_class = modeling.classification_metrics(y_true=np.zeros(5, int), probability=np.full(5, 0.2))
    assert one_class["roc_auc"] is None and one_class["accuracy"] == 1.0 and one_class["precision"] is None
    empty = modeling.classification_metrics(y_true=np.array([], int), probability=np.array([]))
    assert empty["n_rows"] == 0 and empty["roc_auc"] is None and empty["accuracy"] is None


def test_improvement_direction():
    assert modeling.improvement("roc_auc", challenger=0.8, champion=0.7) == pytest.approx(0.1)
    assert modeling.improvement("brier", challenger=0.1, champion=0.2) == pytest.approx(0.1)
    assert modeling.improvement("roc_auc", challenger=None, champion=0.7) is None


def test_split_holdout_is_newest_and_respects_not_before():
    f = Table({"event_time": np.arange(10.0)[::-1], "x": np.arange(10)})
    train, holdout, start = modeling.split_holdout(f, holdout_fraction=0.2)
    assert holdout["event_time"].tolist() == [8.0, 9.0] and start == 8.0 and train["event_time"].max() < start
    assert holdout["x"].tolist() == [1, 0]  # rows stay whole
    train, holdout, start = modeling.split_holdout(f, holdout_fraction=0.2, not_before_s=9.0)
    assert holdout["event_time"].tolist() == [9.0] and train["event_time"].max() == 8.0
    with pytest.raises(ValueError, match="holdout_fraction"):
        modeling.split_holdout(f, holdout_fraction=1.5)


def test_subsample_is_deterministic_and_bounded(frame):
    a = modeling.subsample(frame, max_rows=100, seed=3)
    b = modeling.subsample(frame, max_rows=100, seed=3)
    assert len(a) == 100 and all(np.array_equal(a[c], b[c]) for c in frame.names)
    assert np.all(np.diff(a["event_time"]) >= 0)
    assert modeling.subsample(frame, max_rows=10**6, seed=3) is frame


@pytest.mark.parametrize("text, parts", [("v1.0", (1, 0)), ("v1.9", (1, 9)), ("v1.10", (1, 10)), ("v2.123", (2, 123))])
def test_parse_and_format_version(text, parts):
    assert modeling.parse_version(text) == parts
    assert modeling.format_version(*parts) == text


def test_next_version_uses_integer_minor():
    versions = [modeling.next_version(None)]
    for _ in range(11):
        versions.append(modeling.next_version(versions[-1]))
    assert versions[9:12] == ["v1.9", "v1.10", "v1.11"]
    assert sorted(versions, key=modeling.parse_version) == versions


@pytest.mark.parametrize("bad", ["1.2", "v1", "v1.2.3", "v1.x", "", "v-1.0"])
def test_parse_version_rejects(bad):
    with pytest.raises(ValueError, match="looks like 'v1.10'"):
        modeling.parse_version(bad)


def test_auc_standard_error_shrinks_with_rows():
    small = modeling.auc_standard_error(0.7, n_pos=20, n_neg=80)
    large = modeling.auc_standard_error(0.7, n_pos=2000, n_neg=8000)
    assert small > large > 0
    assert modeling.metrics_auc_standard_error({"roc_auc": None, "n_rows": 5, "base_rate": 0.0}) == float("inf")
