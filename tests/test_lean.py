"""The detector service runs without pandas and pyarrow (rtml.lean), and rtml.table replaces them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rtml.table import Table, column_array
from tests.conftest import PROJECT


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=PROJECT, capture_output=True,
                          text=True, timeout=240)


def test_detector_code_paths_run_with_pandas_hidden():
    """Training, scoring, evaluation, splits and a drift check — in a process where pandas cannot load."""
    result = run_python("""
        import sys
        from rtml.lean import hide_dataframe_libraries
        hide_dataframe_libraries()
        import rtml.detector, rtml.monitor, rtml.metrics  # everything the service imports
        from types import SimpleNamespace
        from rtml import modeling
        from rtml.drift import ReferenceProfile, check
        from rtml.simulation import CATEGORICAL_FEATURES, NUMERICAL_FEATURES, DriftSchedule, Simulator
        from rtml.table import Table

        def simulate(seed, kind="none"):
            sim = Simulator.new(DriftSchedule(kind, start_s=0.0), seed=seed, n_customers=300, now_s=0.0)
            batch, _ = sim.ticks(first_tick=0, n_ticks=30)
            return Table({name: list(values) for name, values in batch.columns.items()})

        frame = simulate(1)
        train, holdout, _ = modeling.split_holdout(frame, holdout_fraction=0.25)
        settings = SimpleNamespace(n_estimators=10, max_depth=4, min_samples_leaf=5)
        model = modeling.train(modeling.subsample(train, max_rows=5000, seed=1), model_settings=settings, seed=1)
        metrics = modeling.evaluate(model, holdout)
        profile = ReferenceProfile.fit(train.as_mapping(), numerical=NUMERICAL_FEATURES,
                                       categorical=CATEGORICAL_FEATURES)
        result = check(reference=profile, current=simulate(2, "sudden").as_mapping())
        try:
            import pandas
        except ModuleNotFoundError as exc:
            hidden = "hidden" in str(exc)
        print(metrics["n_rows"], result.n_features, hidden,
              [m for m in sys.modules if m.split(".")[0] in ("pandas", "pyarrow")])
    """)
    assert result.returncode == 0, result.stderr
    n_rows, n_features, hidden, loaded = result.stdout.split(maxsplit=3)
    assert int(n_rows) > 0 and int(n_features) == 10 and hidden == "True" and loaded.strip() == "[]"


def test_hiding_after_pandas_was_imported_is_refused():
    result = run_python("""
        import pandas
        from rtml.lean import hide_dataframe_libraries
        hide_dataframe_libraries()
    """)
    assert result.returncode != 0 and "already imported" in result.stderr


def test_table_from_rows_types_columns_like_a_dataframe_would():
    t = Table.from_rows([(1, 0.5, "north", 3, 1), (2, 1.5, "east", None, 0)],
                        ["id", "event_time", "region", "age", "converted"])
    assert [t[c].dtype.kind for c in t.names] == ["i", "f", "O", "f", "i"]
    assert np.isnan(t["age"][1]) and len(t) == 2
    empty = Table.from_rows([], ["id", "region"])
    assert len(empty) == 0 and empty.names == ("id", "region")
    assert Table.no_rows(["a"]).equals(empty.select(["id"]).with_columns({"a": []}).drop(["id"]))


def test_table_rows_stay_whole():
    t = Table({"event_time": [3.0, 1.0, 2.0], "region": ["c", "a", "b"], "id": [30, 10, 20]})
    ordered = t.sorted_by("event_time")
    assert ordered["region"].tolist() == ["a", "b", "c"] and ordered["id"].tolist() == [10, 20, 30]
    assert t.where(t["id"] > 15).equals(Table({"event_time": [3.0, 2.0], "region": ["c", "b"], "id": [30, 20]}))
    assert t.take([2]).select(["id"]).equals(Table({"id": [20]}))
    assert not t.equals(t.select(["id", "region", "event_time"]))  # column order matters
    assert t.reversed()["id"].tolist() == [20, 10, 30] and t.row(-1) == {"event_time": 2.0, "region": "b", "id": 20}
    assert dict(t.as_mapping()).keys() == {"event_time", "region", "id"}


def test_table_refuses_ragged_columns_and_unknown_names():
    with pytest.raises(ValueError, match="same length"):
        Table({"a": [1.0], "b": [1.0, 2.0]})
    with pytest.raises(KeyError, match="No column"):
        Table({"a": [1.0]})["x"]
    with pytest.raises(ValueError, match="shape"):
        Table({"a": [1.0, 2.0]}).where(np.array([True]))
    assert column_array(["mobile", None]).dtype == object
    with pytest.raises(ValueError, match="values"):
        Table.from_rows([(1, "a"), (2,)], ["id", "name"])
    with pytest.raises(TypeError, match="where"):
        Table({"a": [1, 2]}).take(np.array([True, False]))


def test_table_is_immutable_and_names_are_names():
    t = Table({"a": [1.0, 2.0], "ab": [3.0, 4.0]})
    with pytest.raises(ValueError, match="read-only"):
        t.select(["a"])["a"][0] = 99.0
    assert t["a"].tolist() == [1.0, 2.0]
    assert t.drop("ab").names == ("a",) and t.select("ab").names == ("ab",)
    import pickle
    copy = pickle.loads(pickle.dumps(t))
    assert copy.equals(t) and not copy["a"].flags.writeable
