"""The conversion model: training pipeline, evaluation, time-ordered splits and version numbers.

Pure: no I/O, no global state. A model is a scikit-learn :class:`~sklearn.pipeline.Pipeline`
of a :class:`~sklearn.compose.ColumnTransformer` (one-hot encoding of the categoricals with
``handle_unknown="ignore"``, numericals passed through) and a seeded
:class:`~sklearn.ensemble.RandomForestClassifier`. Its input is the :func:`design_matrix` of a
:class:`rtml.table.Table` — an ``object`` array with one column per :data:`FEATURES` entry, in that
order — so neither training nor scoring needs pandas (see :mod:`rtml.lean`); the model it learns is
exactly the one a DataFrame pipeline would learn (a test checks). Training can be cancelled
between chunks of trees (the detector's SIGTERM must not wait for a whole forest); the chunked fit
gives exactly the forest a single fit would, because the forest draws every tree's seed from one stream.

Versions are ``v<major>.<minor>`` with integer parts: ``v1.9`` is followed by ``v1.10``.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from rtml.features import CATEGORICAL_FEATURES, FEATURES, LABEL, NUMERICAL_FEATURES
from rtml.table import Table

METRICS = ("accuracy", "roc_auc", "precision", "recall", "f1", "log_loss", "brier", "base_rate", "n_rows")
LOWER_IS_BETTER = frozenset({"log_loss", "brier"})
THRESHOLD = 0.5
TREES_PER_CHUNK = 10
_VERSION = re.compile(r"^v(\d+)\.(\d+)$")


class TrainingCancelled(RuntimeError):
    """Training stopped early because its ``cancel`` event was set."""


def build_pipeline(model_settings: Any, *, seed: int) -> Pipeline:
    """An unfitted pipeline: one-hot categoricals + passthrough numericals → random forest.

    Parameters
    ----------
    model_settings : rtml.config.ModelSettings
        ``n_estimators``, ``max_depth`` (0 = unlimited) and ``min_samples_leaf``.
    seed : int
        ``random_state`` of the forest.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"features"`` and ``"forest"``; the forest uses ``n_jobs=1`` so scoring keeps a core.
    """
    features = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), [FEATURES.index(c) for c in CATEGORICAL_FEATURES]),
         ("numerical", "passthrough", [FEATURES.index(c) for c in NUMERICAL_FEATURES])],
        sparse_threshold=0.0)
    forest = RandomForestClassifier(
        n_estimators=model_settings.n_estimators,
        max_depth=model_settings.max_depth or None,
        min_samples_leaf=model_settings.min_samples_leaf,
        random_state=seed, n_jobs=1)
    return Pipeline([("features", features), ("forest", forest)])


def design_matrix(frame: Table) -> np.ndarray:
    """The model's input: an ``(n_rows, len(FEATURES))`` ``object`` array, columns in :data:`FEATURES` order.

    Examples
    --------
    >>> t = Table({name: [1.0] if name in NUMERICAL_FEATURES else ["x"] for name in FEATURES})
    >>> design_matrix(t).shape
    (1, 10)
    """
    matrix = np.empty((len(frame), len(FEATURES)), dtype=object)
    for i, name in enumerate(FEATURES):
        matrix[:, i] = frame[name]
    return matrix


def train(frame: Table, *, model_settings: Any, seed: int,
          cancel: threading.Event | None = None) -> Pipeline:
    """Fit a pipeline on ``frame`` (every column of :data:`FEATURES` plus ``converted``).

    Parameters
    ----------
    frame : Table
        Labelled rows.
    model_settings : rtml.config.ModelSettings
    seed : int
    cancel : threading.Event, default=None
        Checked between chunks of :data:`TREES_PER_CHUNK` trees.

    Returns
    -------
    Pipeline
        Fitted; equal to ``build_pipeline(...).fit(X, y)``.

    Raises
    ------
    ValueError
        When ``frame`` is empty, lacks a column or holds a single class.
    TrainingCancelled
        When ``cancel`` is set before the forest is complete.
    """
    _check_frame(frame, need_label=True)
    y = np.asarray(frame[LABEL], dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError(f"Cannot train on {len(frame)} rows holding a single class ({int(y[0])}).")
    pipeline = build_pipeline(model_settings, seed=seed)
    features, forest = pipeline.named_steps["features"], pipeline.named_steps["forest"]
    # float32 is what the forest fits on; converting once spares a conversion per chunk of trees
    x = np.asarray(features.fit_transform(design_matrix(frame)), dtype=np.float32)
    total = forest.n_estimators
    forest.set_params(warm_start=True)
    for n_trees in range(min(TREES_PER_CHUNK, total), total + TREES_PER_CHUNK, TREES_PER_CHUNK):
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled(f"Training cancelled after {len(getattr(forest, 'estimators_', []))} "
                                    f"of {total} trees.")
        forest.set_params(n_estimators=min(n_trees, total))
        forest.fit(x, y)
    forest.set_params(warm_start=False)
    return pipeline


def predict_proba(model: Pipeline, frame: Table) -> np.ndarray:
    """Probability of conversion for each row of ``frame``."""
    _check_frame(frame, need_label=False)
    if len(frame) == 0:
        return np.zeros(0)
    return model.predict_proba(design_matrix(frame))[:, 1]


def evaluate(model: Pipeline, frame: Table) -> dict[str, float | int | None]:
    """Score ``model`` on the labelled rows of ``frame``; see :func:`classification_metrics`."""
    return classification_metrics(y_true=np.asarray(frame[LABEL], dtype=np.int64),
                                   probability=predict_proba(model, frame))


def classification_metrics(*, y_true: np.ndarray, probability: np.ndarray,
                           threshold: float = THRESHOLD) -> dict[str, float | int | None]:
    """Accuracy, ROC AUC, precision, recall, F1, log-loss, Brier, base rate and row count.

    Never raises on degenerate input: an undefined metric is ``None`` (ROC AUC with one class,
    every metric of an empty set, precision with no positive prediction, ...).

    Parameters
    ----------
    y_true : array of 0/1
    probability : array of float
        Predicted probability of class 1.
    threshold : float, default=0.5
        Predicted class is ``probability >= threshold``.

    Examples
    --------
    >>> m = classification_metrics(y_true=np.array([0, 0, 1, 1]), probability=np.array([.1, .6, .4, .9]))
    >>> m["roc_auc"], m["accuracy"], m["n_rows"]
    (0.75, 0.5, 4)
    >>> classification_metrics(y_true=np.array([1, 1]), probability=np.array([.2, .9]))["roc_auc"] is None
    True
    """
    y = np.asarray(y_true, dtype=np.int64)
    p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    n = int(len(y))
    out: dict[str, float | int | None] = dict.fromkeys(METRICS)
    out["n_rows"] = n
    if n == 0:
        return out
    pred = (p >= threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    eps = 1e-15
    pc = np.clip(p, eps, 1 - eps)
    out["accuracy"] = float(np.mean(pred == y))
    out["base_rate"] = float(np.mean(y))
    out["precision"] = tp / (tp + fp) if tp + fp else None
    out["recall"] = tp / (tp + fn) if tp + fn else None
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    out["log_loss"] = float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc)))
    out["brier"] = float(np.mean((p - y) ** 2))
    out["roc_auc"] = _roc_auc(y, p)
    return out


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Mann-Whitney form of ROC AUC (ties count one half); ``None`` with a single class."""
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(p, method="average")
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_standard_error(auc: float, *, n_pos: int, n_neg: int) -> float:
    """Standard error of an ROC AUC estimate (Hanley & McNeil, 1982).

    Examples
    --------
    >>> round(auc_standard_error(0.7, n_pos=140, n_neg=560), 4)
    0.0266
    """
    if n_pos < 1 or n_neg < 1:
        return math.inf
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def metrics_auc_standard_error(metrics: dict) -> float:
    """:func:`auc_standard_error` of a :func:`classification_metrics` result (``inf`` if undefined)."""
    auc, n, rate = metrics.get("roc_auc"), metrics.get("n_rows") or 0, metrics.get("base_rate")
    if auc is None or rate is None:
        return math.inf
    n_pos = int(round(n * rate))
    return auc_standard_error(float(auc), n_pos=n_pos, n_neg=n - n_pos)


def improvement(metric: str, *, challenger: float | None, champion: float | None) -> float | None:
    """How much better ``challenger`` is than ``champion`` on ``metric`` (positive = better).

    Examples
    --------
    >>> round(improvement("roc_auc", challenger=0.80, champion=0.75), 3)
    0.05
    >>> round(improvement("log_loss", challenger=0.40, champion=0.45), 3)
    0.05
    """
    if challenger is None or champion is None:
        return None
    diff = float(challenger) - float(champion)
    return -diff if metric in LOWER_IS_BETTER else diff


def split_holdout(frame: Table, *, holdout_fraction: float,
                  not_before_s: float | None = None) -> tuple[Table, Table, float]:
    """Split time-ordered rows into an older training part and the newest held-out slice.

    Parameters
    ----------
    frame : Table
        Has ``event_time``.
    holdout_fraction : float
        Share of rows (the newest) held out.
    not_before_s : float, default=None
        The holdout never starts before this time (the champion's training end), so no row
        of the holdout was seen by the champion either.

    Returns
    -------
    train, holdout : Table
        ``train.event_time < holdout_start <= holdout.event_time``.
    holdout_start : float

    Examples
    --------
    >>> f = Table({"event_time": [1.0, 2.0, 3.0, 4.0, 5.0]})
    >>> tr, ho, start = split_holdout(f, holdout_fraction=0.4)
    >>> tr["event_time"].tolist(), ho["event_time"].tolist(), start
    ([1.0, 2.0, 3.0], [4.0, 5.0], 4.0)
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError("The 'holdout_fraction' parameter of split_holdout must be in (0, 1). "
                         f"Got {holdout_fraction!r} instead.")
    ordered = frame.sorted_by("event_time")
    if len(ordered) == 0:
        return ordered, ordered, math.inf
    n_hold = max(1, int(math.ceil(len(ordered) * holdout_fraction)))
    times = ordered["event_time"]
    start = float(times[len(ordered) - n_hold])
    if not_before_s is not None and not_before_s > start:
        start = float(not_before_s)
    return ordered.where(times < start), ordered.where(times >= start), start


def subsample(frame: Table, *, max_rows: int, seed: int) -> Table:
    """At most ``max_rows`` rows of ``frame``, drawn without replacement (deterministic), time-ordered."""
    if len(frame) <= max_rows:
        return frame
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
    return frame.take(keep)


# -- versions ------------------------------------------------------------------------------------
def parse_version(text: str) -> tuple[int, int]:
    """``"v1.10"`` → ``(1, 10)``.

    Examples
    --------
    >>> parse_version("v1.10")
    (1, 10)
    >>> parse_version("1.2")
    Traceback (most recent call last):
    ...
    ValueError: A model version looks like 'v1.10' (v, integer major, dot, integer minor). Got '1.2' instead.
    """
    match = _VERSION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError("A model version looks like 'v1.10' (v, integer major, dot, integer minor). "
                         f"Got {text!r} instead.")
    return int(match.group(1)), int(match.group(2))


def format_version(major: int, minor: int) -> str:
    """``(1, 10)`` → ``"v1.10"``."""
    if int(major) < 0 or int(minor) < 0:
        raise ValueError(f"Version parts must be integers >= 0. Got ({major!r}, {minor!r}) instead.")
    return f"v{int(major)}.{int(minor)}"


def next_version(latest: str | None) -> str:
    """The version after ``latest`` (integer minor + 1); ``v1.0`` when there is none.

    Examples
    --------
    >>> next_version(None), next_version("v1.0"), next_version("v1.9")
    ('v1.0', 'v1.1', 'v1.10')
    """
    if latest is None:
        return format_version(1, 0)
    major, minor = parse_version(latest)
    return format_version(major, minor + 1)


def _check_frame(frame: Table, *, need_label: bool) -> None:
    needed = list(FEATURES) + ([LABEL] if need_label else [])
    missing = [c for c in needed if c not in frame]
    if missing:
        raise ValueError(f"The frame lacks column(s) {missing}; a model needs {needed}.")
    if need_label and len(frame) == 0:
        raise ValueError("Cannot train on an empty frame.")
