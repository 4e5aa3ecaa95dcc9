"""Drift statistics and decision policies.

Pure module: no I/O, no global mutable state, only a module logger. The reference window is
summarised once by :class:`ReferenceProfile.fit`; :func:`check` then compares a current window
against it at a cost proportional to the current window: sorting it; Kolmogorov-Smirnov from
``searchsorted`` against the cached sorted reference, first at the ends of blocks of 64 distinct
current values and then only inside the blocks whose bound can still hold the maximum (exact, see
:func:`_ks_statistic`); bin counts read off the sorted current values; one hash count per
categorical column (in Arrow for pandas' Arrow-backed string columns). Small-sample KS p-values
evaluate scipy's ``kstwo.sf`` formulas on Python floats (:func:`_kstwo_sf`), chi-square and normal
tail probabilities come straight from ``scipy.special``.

Statistics
----------
* numerical: Population Stability Index (PSI), two-sample Kolmogorov-Smirnov (statistic and
  asymptotic p-value, identical to ``scipy.stats.ks_2samp(..., method="asymp")``) and
  Jensen-Shannon distance (base 2) on quantile bins of the reference;
* categorical: chi-square test of homogeneity (``scipy.stats.chi2_contingency`` semantics without
  Yates' correction, sparse columns pooled first), PSI and Jensen-Shannon on category shares.

Two decision policies turn the statistics into verdicts: :class:`SeedPolicy` (the historical
fixed thresholds) and :class:`CalibratedPolicy` (the default, which bounds the dataset-level
false-alarm rate at every window size). The README ("Drift detection") explains both.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NamedTuple

import numpy as np
from scipy import optimize, special, stats
from scipy.special import rel_entr

from rtml.table import is_missing

try:  # what ``scipy.stats.kstwo.sf`` evaluates, without the distribution-object overhead
    from scipy.stats._ksstats import kolmogn as _kolmogn
except ImportError:  # pragma: no cover - private scipy module moved: use the public (slower) path
    _kolmogn = None

logger = logging.getLogger(__name__)


def _pandas() -> Any | None:
    """pandas if this process imported it, else None (then no input can be a pandas object).

    The engine accepts DataFrames and Series but never imports pandas itself: the detector
    service runs without it (:mod:`rtml.lean`).
    """
    return sys.modules.get("pandas")


def _is_frame(data: Any) -> bool:
    pd = _pandas()
    return pd is not None and isinstance(data, pd.DataFrame)

#: The one epsilon: replaces empty-bin shares (on either side) in PSI, and nowhere else.
EPSILON = 1e-4
#: Chi-square columns whose expected count is below this are pooled before the test (Cochran).
MIN_EXPECTED_COUNT = 5.0
#: Name of the extra categorical bin for categories not seen in the reference.
UNSEEN = "__unseen__"

NUMERICAL = "numerical"
CATEGORICAL = "categorical"

STATUS_OK = "ok"
STATUS_CONSTANT_REFERENCE = "constant_reference"
STATUS_NOT_ENOUGH_DATA = "not_enough_data"
STATUS_MISSING_COLUMN = "missing_column"
#: Feature statuses whose verdict is meaningful and that count in ``n_features``.
USABLE_STATUSES = (STATUS_OK, STATUS_CONSTANT_REFERENCE)


class InvalidParameterError(ValueError, TypeError):
    """A parameter failed validation (a ``ValueError`` and a ``TypeError``, as in scikit-learn)."""


# --------------------------------------------------------------------------------------------
# Parameter validation (scikit-learn message format)
# --------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:g}"


def validate_float(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = True,
    high_open: bool = True,
) -> float:
    """Return ``float(value)`` or raise :class:`InvalidParameterError` in scikit-learn's format.

    Examples
    --------
    >>> validate_float("CalibratedPolicy", "false_alarm_rate", 2, low=0, high=0.5)
    Traceback (most recent call last):
    ...
    rtml.drift.InvalidParameterError: The 'false_alarm_rate' parameter of CalibratedPolicy must be a float in (0, 0.5). Got 2 instead.
    """
    if low is not None and high is not None:
        expected = f"a float in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
    elif low is not None:
        expected = f"a float {'>' if low_open else '>='} {_fmt(low)}"
    elif high is not None:
        expected = f"a float {'<' if high_open else '<='} {_fmt(high)}"
    else:
        expected = "a finite float"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be {expected}. Got {value!r} instead."
        )
    return float(value)


def validate_int(owner: str, name: str, value: Any, *, low: int) -> int:
    """Return ``int(value)`` or raise :class:`InvalidParameterError` in scikit-learn's format."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low):
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be an int >= {low}. Got {value!r} instead."
        )
    return int(value)


# --------------------------------------------------------------------------------------------
# Statistics on bins, counts and sorted samples
# --------------------------------------------------------------------------------------------


class KSResult(NamedTuple):
    statistic: float
    pvalue: float


class Chi2Result(NamedTuple):
    statistic: float
    pvalue: float
    dof: int


def _shares(counts: Any) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if counts.ndim != 1 or counts.size == 0 or not total > 0 or (counts < 0).any():
        raise ValueError("Bin counts must be a non-empty 1-d array of non-negative numbers with a positive sum.")
    return counts / total


def psi(*, reference: Any, current: Any) -> float:
    """Population Stability Index between two aligned histograms.

    ``PSI = sum((c - r) * ln(c / r))`` over bins, with shares ``r``, ``c`` obtained by normalising
    the given counts (or shares). An empty bin's share (on either side) is replaced by
    :data:`EPSILON` (1e-4) without renormalising; this is the only place the epsilon is used.

    Parameters
    ----------
    reference : array-like of shape (n_bins,)
        Reference bin counts or shares.
    current : array-like of shape (n_bins,)
        Current bin counts or shares, aligned with ``reference``.

    Returns
    -------
    float
        The PSI (natural log), >= 0.

    Examples
    --------
    >>> round(psi(reference=[50, 50], current=[25, 75]), 6)
    0.274653
    >>> round(psi(reference=[5, 5, 0], current=[4, 5, 1]), 6)
    0.712399
    """
    r = _shares(reference)
    c = _shares(current)
    if r.shape != c.shape:
        raise ValueError(f"reference and current must have the same number of bins. Got {r.size} and {c.size}.")
    return _psi_from_shares(np.where(r == 0, EPSILON, r), c)


def _psi_from_shares(r_eps: np.ndarray, c: np.ndarray) -> float:
    """PSI from aligned shares, the reference ones already epsilon-replaced (no validation)."""
    c = np.where(c == 0, EPSILON, c)
    return float(((c - r_eps) * np.log(c / r_eps)).sum())


def js_distance(*, reference: Any, current: Any) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two aligned histograms.

    Equal to ``scipy.spatial.distance.jensenshannon(reference, current, base=2)``; empty bins need
    no epsilon (``0 * log 0 = 0``).

    Examples
    --------
    >>> round(js_distance(reference=[1, 0], current=[0, 1]), 6)
    1.0
    >>> round(js_distance(reference=[50, 50], current=[25, 75]), 6)
    0.220896
    """
    r = _shares(reference)
    c = _shares(current)
    if r.shape != c.shape:
        raise ValueError(f"reference and current must have the same number of bins. Got {r.size} and {c.size}.")
    return _js_from_shares(r, c)


_LN2 = float(np.log(2.0))


def _js_from_shares(r: np.ndarray, c: np.ndarray) -> float:
    """Jensen-Shannon distance from aligned shares (no validation)."""
    m = (r + c) / 2.0
    js = (rel_entr(r, m).sum() + rel_entr(c, m).sum()) / _LN2
    return math.sqrt(max(float(js), 0.0) / 2.0)


#: Above this effective sample size ``n * m / (n + m)`` the KS p-value uses the limiting
#: Kolmogorov distribution (see :func:`ks_pvalue`).
KS_LIMIT_N = 25_000


def ks_pvalue(statistic: float, n_reference: int, n_current: int) -> float:
    """Asymptotic two-sided KS p-value.

    Up to an effective sample size ``en = n * m / (n + m)`` of :data:`KS_LIMIT_N` (25,000) this is
    ``scipy.stats.ks_2samp(..., method="asymp")``: ``kstwo.sf(D, round(en))``, the one-sample
    Kolmogorov distribution at the effective sample size. Above it, ``kstwo.sf`` becomes very slow
    exactly where it matters (about 0.1 s per call at en = 50,000 and 1 s at en = 500,000 when
    p < 0.01), so the limiting distribution ``kstwobign.sf(D * sqrt(en))`` is used instead: it is
    within 1 % (relative) of ``kstwo.sf`` for p >= 1e-14 at these sizes and larger in every case
    checked (conservative), so the calibrated policy's false-alarm bound is unaffected.

    Examples
    --------
    >>> round(ks_pvalue(0.00283, 1_000_000, 1_000_000), 6)
    0.000665
    """
    n, m = float(n_reference), float(n_current)
    big, small = (n, m) if n >= m else (m, n)
    en = float(round(big * small / (big + small)))  # half to even, as np.round
    if en > KS_LIMIT_N:  # kstwobign.sf is scipy.special.kolmogorov
        p = float(special.kolmogorov(statistic * math.sqrt(en)))
    else:
        p = _kstwo_sf(int(en), float(statistic))
    return min(max(p, 0.0), 1.0)


_PI_SQUARED, _PI_FOUR, _PI_SIX = math.pi**2, math.pi**4, math.pi**6
_SQRT2PI, _SQRT3 = math.sqrt(2 * math.pi), math.sqrt(3.0)
_EP128, _EM128 = math.ldexp(1.0, 128), math.ldexp(1.0, -128)


def _kstwo_sf(n: int, x: float) -> float:
    """``scipy.stats.kstwo.sf(x, n)`` (Simard & L'Ecuyer), its two slow branches in plain Python.

    ``kstwo.sf`` is ``scipy.stats._ksstats.kolmogn(n, x, cdf=False)``. For ``n > 140`` and
    ``n * x**2 < 2.2`` (p-values above ~0.02, i.e. most checks) scipy evaluates the Pelz-Good
    series or the Durbin matrix with numpy scalar arithmetic (60-300 us per call at n = 438,
    the dominant cost of a small check); the same formulas in the same order of operations on
    Python floats take a few microseconds. Every other case is delegated to scipy. The values
    agree with ``kstwo.sf`` to ~1e-15 (tested to 1e-12 in tests/test_drift.py).
    """
    if n > 140 and 0.0 < x < 0.5:
        t = n * x
        if 1.0 < t < n - 1:
            nxsquared = t * x
            if nxsquared >= 370.0:
                return 0.0
            if nxsquared < 2.2:
                if n <= 100000 and n * x**1.5 <= 1.4:
                    cdf = _kolmogn_dmtw_cdf(n, x)
                else:
                    cdf = _kolmogn_pelz_good_cdf(n, x)
                return min(max(1.0 - cdf, 0.0), 1.0)
    if _kolmogn is not None:  # pragma: no branch
        return float(_kolmogn(float(n), x, cdf=False))
    return float(stats.kstwo.sf(x, n))  # pragma: no cover


def _kolmogn_pelz_good_cdf(n: int, x: float) -> float:
    """Pelz-Good approximation of ``P(D_n <= x)``: scipy's ``_kolmogn_PelzGood`` on Python floats."""
    z = math.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z**2, z**3, z**4, z**6
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < -708:
        return 0.0
    q = math.exp(qlog)
    k1a = -zsquared
    k1b = _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8
    s0 = s1 = s2 = s3 = 0.0
    maxk = int(math.ceil(16 * z / math.pi))
    for k in range(maxk, 0, -1):  # Horner scheme for sum c_i q^(i^2) over odd i
        m = 2 * k - 1
        msquared, mfour, msix = m**2, m**4, m**6
        qpower = q ** (8 * k)
        s0 = s0 * qpower + 1.0
        s1 = s1 * qpower + (k1a + k1b * msquared)
        s2 = s2 * qpower + (k2a + k2b * msquared + k2c * mfour)
        s3 = s3 * qpower + (k3a + k3b * msquared + k3c * mfour + k3d * msix)
    s0 = s0 * q * _SQRT2PI / z
    s1 = s1 * q * _SQRT2PI / (6 * zfour)
    s2 = s2 * q * _SQRT2PI / (72 * z**7)
    s3 = s3 * q * _SQRT2PI / (6480 * z**10)
    q = math.exp(-_PI_SQUARED / 2 / zsquared)
    sqrt3z = _SQRT3 * z
    k2extra = k3extra = 0.0
    for k in range(1, maxk + 1):  # the sums over all integers k
        ksquared = k * k
        qk = q**ksquared
        k2extra += ksquared * qk
        kspi = math.pi * k
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qk
    s2 += k2extra * (_PI_SQUARED * _SQRT2PI / (-36 * zthree))
    s3 += k3extra * (_PI_SQUARED * _SQRT2PI / (216 * zsix))
    return s0 + s1 / n**0.5 + s2 / n + s3 / n**1.5


def _kolmogn_dmtw_cdf(n: int, d: float) -> float:
    """Durbin matrix ``P(D_n <= d)`` (Marsaglia-Tsang-Wang): scipy's ``_kolmogn_DMTW``, with the
    final ``n!/n^n`` scaling loop on Python floats."""
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = int(math.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    H = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h**intm
    w = np.empty(m)
    fac = 1.0
    for j in range(1, m + 1):
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        H[i - 1:, i] = w[: m - i + 1]
    H[:, 0] = v
    H[-1, :] = np.flip(v, axis=0)
    Hpwr = np.eye(m)
    nn, expnt, Hexpnt = n, 0, 0
    while nn > 0:
        if nn % 2:
            Hpwr = np.matmul(Hpwr, H)
            expnt += Hexpnt
        H = np.matmul(H, H)
        Hexpnt *= 2
        if abs(H[k - 1, k - 1]) > _EP128:
            H /= _EP128
            Hexpnt += 128
        nn = nn // 2
    p = float(Hpwr[k - 1, k - 1])
    for i in range(1, n + 1):  # multiply by n!/n^n
        p = i * p / n
        if abs(p) < _EM128:
            p *= _EP128
            expnt -= 128
    return math.ldexp(p, expnt) if expnt != 0 else p


#: Distinct current values per block when bounding the KS statistic (see :func:`_ks_statistic`).
_KS_BLOCK = 64
#: Below this many distinct current values the KS statistic is evaluated at every one of them.
_KS_BLOCK_MIN = 4096


def _ks_eval(ref_padded: np.ndarray, n: int, m: int, values: np.ndarray, c_le: np.ndarray,
             c_lt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ECDF differences at sorted distinct current ``values``: ``(d_left, d_right, r_lt, r_le)``.

    ``ref_padded`` is ``[nan, *sorted reference]``; ``c_le``/``c_lt`` count current values ``<=``/``<``
    each value. ``d_right = F_ref(v) - F_cur(v)``, ``d_left = F_ref(v-) - F_cur(v-)``.
    """
    ref = ref_padded[1:]
    r_le = np.searchsorted(ref, values, side="right")  # reference values <= v
    tie = ref_padded[r_le] == values  # the largest reference value <= v equals v (nan never equals)
    if tie.any():  # reference values < v: differs from r_le only on ties
        r_lt = r_le.copy()
        at = np.flatnonzero(tie)
        r_lt[at] = np.searchsorted(ref, values[at], side="left")
    else:
        r_lt = r_le
    return r_lt / n - c_lt / m, r_le / n - c_le / m, r_lt, r_le


def _ks_statistic(ref_padded: np.ndarray, current_sorted: np.ndarray) -> float:
    """Two-sample KS statistic from ``[nan, *sorted reference]`` and a sorted current sample.

    ``D = max(0, max d_left, -min d_right)`` over the distinct current values ``v`` (between two
    current values ``F_cur`` is constant and ``F_ref`` non-decreasing, so the largest positive
    difference is a left limit at a current value and the most negative one a right limit). This is
    exactly scipy's ``max(max(cddiffs), clip(-min(cddiffs), 0, 1))``, the same floats from the same
    integer counts. With many distinct values, blocks of :data:`_KS_BLOCK` of them are first
    evaluated at their two ends only; since IEEE division and subtraction are monotone, the counts at
    the ends bound every difference inside a block, and only blocks whose bound exceeds the largest
    difference found so far are evaluated in full (typically a few percent of them). The result is
    bit-identical to evaluating every value.
    """
    n, m = ref_padded.size - 1, current_sorted.size
    new = current_sorted[1:] != current_sorted[:-1]
    if new.all():  # all distinct: c_le(i) = i + 1, c_lt(i) = i
        values, last = current_sorted, None
    else:
        last = np.append(np.flatnonzero(new), m - 1)  # last index of each run of equal values
        values = current_sorted[last]
    u = values.size

    def counts(idx: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(c_le, c_lt) at the distinct values ``idx`` (all of them if None)."""
        if last is None:
            le = np.arange(1, u + 1) if idx is None else idx + 1
            return le, le - 1
        le = last + 1 if idx is None else last[idx] + 1
        if idx is None:
            lt = np.empty_like(le)
            lt[0] = 0
            lt[1:] = le[:-1]
        else:
            lt = np.where(idx > 0, last[np.maximum(idx - 1, 0)] + 1, 0)
        return le, lt

    if u < _KS_BLOCK_MIN:
        if last is None:
            c_le = np.arange(1, u + 1)
            c_lt = c_le - 1
        else:
            c_le, c_lt = counts(None)
        d_left, d_right, _, _ = _ks_eval(ref_padded, n, m, values, c_le, c_lt)
        return max(0.0, float(d_left.max()), -float(d_right.min()))

    block = _KS_BLOCK
    starts = np.arange(0, u, block)
    ends = np.minimum(starts + (block - 1), u - 1)
    ends_idx = np.column_stack([starts, ends]).ravel()  # non-decreasing
    c_le, c_lt = counts(ends_idx)
    d_left, d_right, r_lt, r_le = _ks_eval(ref_padded, n, m, values[ends_idx], c_le, c_lt)
    best = max(0.0, float(d_left.max()), -float(d_right.min()))
    # inside block k: d_left <= r_lt(end)/n - c_lt(start)/m, d_right >= r_le(start)/n - c_le(end)/m
    upper_left = r_lt[1::2] / n - c_lt[0::2] / m
    lower_right = r_le[0::2] / n - c_le[1::2] / m
    open_blocks = (upper_left > best) | (-lower_right > best)
    if open_blocks.any():
        inner = np.flatnonzero(np.repeat(open_blocks, block)[:u])
        c_le, c_lt = counts(inner)
        d_left, d_right, _, _ = _ks_eval(ref_padded, n, m, values[inner], c_le, c_lt)
        best = max(best, float(d_left.max()), -float(d_right.min()))
    return best


def ks_2samp_sorted(*, reference_sorted: np.ndarray, current_sorted: np.ndarray) -> KSResult:
    """Two-sample KS test from two *sorted*, finite samples.

    The supremum of ``|F_ref - F_cur|`` is evaluated at each distinct current value (right
    limit) and just before it (left limit), which covers every jump of the step function: one
    ``searchsorted`` pass of the distinct current values into the cached sorted reference,
    ``O(m log n)``, plus a second pass restricted to values that also occur in the reference. The statistic is bit-identical to ``scipy.stats.ks_2samp`` and the p-value to
    its ``method="asymp"`` up to an effective sample size of 25,000 (see :func:`ks_pvalue`).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = np.sort(rng.normal(size=300)), np.sort(rng.normal(0.5, size=200))
    >>> res = ks_2samp_sorted(reference_sorted=ref, current_sorted=cur)
    >>> expected = stats.ks_2samp(ref, cur, method="asymp")
    >>> bool(res.statistic == expected.statistic), bool(abs(res.pvalue - expected.pvalue) < 1e-12)
    (True, True)
    """
    n, m = reference_sorted.size, current_sorted.size
    if n == 0 or m == 0:
        raise ValueError("ks_2samp_sorted needs non-empty samples.")
    ref_padded = np.empty(n + 1)
    ref_padded[0] = np.nan
    ref_padded[1:] = reference_sorted
    d = min(_ks_statistic(ref_padded, np.asarray(current_sorted, dtype=np.float64)), 1.0)
    return KSResult(d, ks_pvalue(d, n, m))


def _pool_sparse_columns(table: np.ndarray, min_expected: float) -> np.ndarray:
    """Pool columns of a 2 x K table whose smallest expected count is below ``min_expected``."""
    total = table.sum()
    min_row = table.sum(axis=1).min()
    col = table.sum(axis=0)
    small = col * min_row / total < min_expected
    if not small.any():
        return table
    pooled = table[:, small].sum(axis=1)
    rest = table[:, ~small]
    while pooled.sum() * min_row / total < min_expected and rest.shape[1] > 0:
        j = int(np.argmin(rest.sum(axis=0)))
        pooled = pooled + rest[:, j]
        rest = np.delete(rest, j, axis=1)
    return np.column_stack([rest, pooled])


def chi2_homogeneity(*, reference: Any, current: Any, min_expected: float = MIN_EXPECTED_COUNT) -> Chi2Result:
    """Chi-square two-sample test of homogeneity on aligned category counts.

    Builds the 2 x K table (reference row, current row), drops empty columns, pools every column
    whose smallest expected count is below ``min_expected`` into one "other" column (if that
    pool is still too small it absorbs the smallest remaining columns), then computes Pearson's
    statistic exactly as ``scipy.stats.chi2_contingency(table, correction=False)``. No Yates
    correction is applied, also for 2 x 2 tables (it is needlessly conservative). Fewer than two
    columns left means no test is possible: statistic 0, p-value 1, dof 0.

    Examples
    --------
    >>> res = chi2_homogeneity(reference=[300, 500, 200], current=[45, 35, 20])
    >>> round(res.statistic, 4), round(res.pvalue, 6), res.dof
    (10.7273, 0.004684, 2)
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError("reference and current must be 1-d count arrays of the same length.")
    table = np.empty((2, ref.size))
    table[0], table[1] = ref, cur
    col = table[0] + table[1]  # column sums (counts are integers: every sum here is exact)
    keep = col > 0
    if not keep.all():
        table, col = table[:, keep], col[keep]
    if table.shape[1] < 2:
        return Chi2Result(0.0, 1.0, 0)
    rows = table.sum(axis=1)
    if (rows == 0).any():
        return Chi2Result(0.0, 1.0, 0)
    total = rows.sum()
    if (col * rows.min() / total < min_expected).any():
        table = _pool_sparse_columns(table, min_expected)
        if table.shape[1] < 2:
            return Chi2Result(0.0, 1.0, 0)
        col = table.sum(axis=0)
    expected = np.outer(rows, col) / total
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return Chi2Result(statistic, float(special.chdtrc(dof, statistic)), dof)  # = stats.chi2.sf


def quantile_edges(reference: Any, *, bins: int = 10) -> np.ndarray:
    """Interior bin edges from reference quantiles.

    Edges are the ``1/bins, ..., (bins-1)/bins`` quantiles (``method="inverted_cdf"``, so each edge
    is an observed value), deduplicated for ties; bins are right-closed ``(e_i, e_{i+1}]`` with open
    outer bins ``(-inf, e_1]`` and ``(e_k, +inf)``, so every reference bin but the top one holds its
    upper edge. An edge equal to the reference maximum is replaced by the largest value below the
    maximum, so the top bin is non-empty too. A constant reference ``v`` gets the edges
    ``[nextafter(v, -inf), v]``: three bins (below ``v``, exactly ``v``, above ``v``). Non-finite
    values are ignored.

    Examples
    --------
    >>> quantile_edges([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], bins=5).tolist()
    [2.0, 4.0, 6.0, 8.0]
    >>> quantile_edges([0, 0, 0, 0, 0, 0, 0, 1, 2, 3], bins=4).tolist()
    [0.0, 1.0]
    """
    bins = validate_int("quantile_edges", "bins", bins, low=2)
    values = np.asarray(reference, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.empty(0)
    return _quantile_edges_sorted(np.sort(values), bins)


def _quantile_edges_sorted(values: np.ndarray, bins: int) -> np.ndarray:
    """:func:`quantile_edges` of an already sorted, finite, non-empty sample."""
    lo, hi = values[0], values[-1]
    if lo == hi:
        return np.array([np.nextafter(lo, -np.inf), lo])
    # inverted-CDF quantile j/bins is the ceil(j * n / bins)-th order statistic (integer arithmetic)
    n, j = values.size, np.arange(1, bins)
    edges = _dedup_sorted(values[(j * n + bins - 1) // bins - 1])
    if edges[-1] == hi:  # the top bin would be empty: use the largest value below the maximum
        edges[-1] = values[np.searchsorted(values, hi, side="left") - 1]
        edges = _dedup_sorted(edges)
    return edges


def _dedup_sorted(x: np.ndarray) -> np.ndarray:
    """``np.unique`` of a sorted array (without sorting it again)."""
    if x.size < 2:
        return x
    keep = np.empty(x.size, dtype=bool)
    keep[0] = True
    np.not_equal(x[1:], x[:-1], out=keep[1:])
    return x if keep.all() else x[keep]


# --------------------------------------------------------------------------------------------
# Reference profile
# --------------------------------------------------------------------------------------------


def _reference_shares(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shares, shares with empty bins set to EPSILON) of reference counts, as :func:`psi` makes them."""
    total = counts.sum()
    if not total > 0:
        return np.zeros(counts.size), np.full(counts.size, EPSILON)
    shares = counts.astype(np.float64) / float(total)
    return shares, np.where(shares == 0, EPSILON, shares)


@dataclass(frozen=True, eq=False)
class _NumericalProfile:
    name: str
    n_rows: int
    n_missing: int
    padded: np.ndarray  # [nan, *sorted finite values]: the nan makes "value at rank - 1" branch-free
    edges: np.ndarray
    bin_counts: np.ndarray
    shares: np.ndarray  # bin_counts / their sum
    shares_eps: np.ndarray  # shares, empty bins replaced by EPSILON (PSI)

    kind: ClassVar[str] = NUMERICAL

    @property
    def sorted_values(self) -> np.ndarray:
        return self.padded[1:]

    @property
    def constant(self) -> bool:
        return self.padded.size > 1 and self.padded[1] == self.padded[-1]


@dataclass(frozen=True, eq=False)
class _CategoricalProfile:
    name: str
    n_rows: int
    n_missing: int
    categories: tuple[Any, ...]
    index: Mapping[Any, int]
    counts: np.ndarray  # per category, then 0 for UNSEEN
    shares: np.ndarray
    shares_eps: np.ndarray

    kind: ClassVar[str] = CATEGORICAL

    @property
    def constant(self) -> bool:
        return int(np.count_nonzero(self.counts)) == 1


def _column(data: Any, name: str) -> Any | None:
    if _is_frame(data):
        return data[name] if name in data.columns else None
    return data.get(name) if isinstance(data, Mapping) else None


def _to_float(values: Any, name: str) -> np.ndarray:
    try:
        pd = _pandas()
        if pd is not None and isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Column '{name}' is declared numerical but is not numeric: {exc}") from exc


def _arrow_strings(values: Any) -> Any | None:
    """The pyarrow (chunked) array behind an Arrow-backed string column, else None."""
    dtype, pd = getattr(values, "dtype", None), _pandas()
    if pd is not None and isinstance(dtype, pd.StringDtype) and dtype.storage in ("pyarrow", "pyarrow_numpy"):
        array = values.array if isinstance(values, (pd.Series, pd.Index)) else values
        return array.__arrow_array__()
    return None


def _count_categories(values: Any) -> tuple[list[Any], np.ndarray, int]:
    """Hash-count values in O(n): (distinct non-missing values, their counts, missing count)."""
    strings = _arrow_strings(values)
    if strings is not None:  # pandas' default string dtype (Arrow): count in Arrow, no boxing
        import pyarrow.compute as pc

        counted = pc.value_counts(strings)
        distinct = counted.field(0).to_pylist()
        counts = counted.field(1).to_numpy().astype(np.int64, copy=False)
        n_missing = strings.null_count
        if n_missing:  # the nulls are one entry of value_counts
            keep = [i for i, value in enumerate(distinct) if value is not None]
            distinct, counts = [distinct[i] for i in keep], counts[keep]
        return distinct, counts, n_missing
    pd = _pandas()
    if pd is not None and isinstance(values, (pd.Series, pd.Index, pd.Categorical)):
        counts = pd.Series(values, copy=False).value_counts(dropna=False, sort=False)
        pairs = zip(counts.index.tolist(), counts.to_numpy().tolist())
    else:
        arr = np.asarray(values).reshape(-1)
        if arr.dtype.kind in "US":  # fixed-width strings: no missing values, sorting beats boxing
            distinct, n = np.unique(arr, return_counts=True)
            pairs = zip(distinct.tolist(), n.tolist())
        elif pd is not None:  # object dtype stays object (no string-dtype inference); hash count, O(n)
            counts = pd.Series(arr, dtype=arr.dtype, copy=False).value_counts(dropna=False, sort=False)
            pairs = zip(counts.index.tolist(), counts.to_numpy().tolist())
        else:  # no pandas in this process: a Python hash count, O(n), NaNs gathered by _is_missing
            pairs = Counter(arr.tolist()).items()
    keep, kept_counts, n_missing = [], [], 0
    for value, count in pairs:
        if count == 0:
            continue
        if _is_missing(value, pd) or (isinstance(value, float) and math.isinf(value)):
            n_missing += int(count)
        else:
            keep.append(value)
            kept_counts.append(int(count))
    return keep, np.asarray(kept_counts, dtype=np.int64), n_missing


def _is_missing(value: Any, pd: Any | None) -> bool:
    """None, NaN (any float type) or, when pandas is loaded, ``pd.NA`` / ``NaT``."""
    return bool(pd.isna(value)) if pd is not None else is_missing(value)


def _finite_sorted(x: np.ndarray, *, pad: bool = False) -> np.ndarray:
    """Sorted finite values of ``x`` (a new array; ``[nan, *sorted]`` if ``pad``)."""
    finite = np.isfinite(x)
    if not finite.all():
        x = x[finite]  # a copy: sorted in place below
        if not pad:
            x.sort()
            return x
    out = np.empty(x.size + pad)
    if pad:
        out[0] = np.nan
    body = out[1:] if pad else out
    body[...] = x
    body.sort()
    return out


def _length(values: Any) -> int:
    return int(len(values)) if hasattr(values, "__len__") else int(np.asarray(values).size)


class ReferenceProfile:
    """A reference window summarised once: sorted values, quantile bins, category counts.

    Build it with :meth:`fit`; it is immutable afterwards and can be shared between checks.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> profile = ReferenceProfile.fit(
    ...     {"age": rng.normal(40, 10, 1000), "device": rng.choice(["mobile", "desktop"], 1000)},
    ...     numerical=["age"], categorical=["device"])
    >>> profile.feature_names, profile.n_rows
    (('age', 'device'), 1000)
    """

    def __init__(self, features: Sequence[_NumericalProfile | _CategoricalProfile], *, n_rows: int, bins: int):
        self._features = tuple(features)
        self._n_rows = int(n_rows)
        self._bins = int(bins)

    @classmethod
    def fit(
        cls,
        reference: Any,
        *,
        numerical: Sequence[str] = (),
        categorical: Sequence[str] = (),
        bins: int = 10,
    ) -> ReferenceProfile:
        """Summarise ``reference`` (a DataFrame or a mapping of column name to array).

        Parameters
        ----------
        reference : pandas.DataFrame or mapping of str to array-like
            The reference window.
        numerical, categorical : sequence of str, default=()
            Feature names of each kind; the result keeps numerical then categorical order.
        bins : int, default=10
            Number of reference-quantile bins for numerical PSI and JS (ties reduce it).
        """
        bins = validate_int("ReferenceProfile.fit", "bins", bins, low=2)
        if not (_is_frame(reference) or isinstance(reference, Mapping)):
            raise InvalidParameterError(
                "The 'reference' parameter of ReferenceProfile.fit must be a pandas DataFrame or a "
                f"mapping of column name to array. Got {type(reference).__name__} instead."
            )
        names = list(numerical) + list(categorical)
        if not names:
            raise ValueError("ReferenceProfile.fit needs at least one numerical or categorical feature.")
        if len(set(names)) != len(names):
            raise ValueError(f"Feature names must be unique. Got {names}.")
        present = reference.columns if _is_frame(reference) else reference.keys()
        missing = [name for name in names if name not in present]
        if missing:
            raise ValueError(f"Columns missing from the reference: {missing}.")
        n_rows = _common_length(reference, names, "reference")
        features: list[_NumericalProfile | _CategoricalProfile] = []
        for name in numerical:
            x = _to_float(_column(reference, name), name)
            padded = _finite_sorted(x, pad=True)
            valid = padded[1:]
            edges = _quantile_edges_sorted(valid, bins) if valid.size else np.empty(0)
            bin_counts = _bin_counts_sorted(valid, edges)
            features.append(
                _NumericalProfile(
                    name, x.size, int(x.size - valid.size), padded, edges, bin_counts, *_reference_shares(bin_counts)
                )
            )
        for name in categorical:
            values, counts, n_missing = _count_categories(_column(reference, name))
            order = sorted(range(len(values)), key=lambda i: str(values[i]))
            categories = tuple(values[i] for i in order)
            ref_counts = np.append(counts[order], 0).astype(np.int64)
            features.append(
                _CategoricalProfile(
                    name,
                    int(counts.sum()) + n_missing,
                    n_missing,
                    categories,
                    {value: i for i, value in enumerate(categories)},
                    ref_counts,
                    *_reference_shares(ref_counts),
                )
            )
        return cls(features, n_rows=n_rows, bins=bins)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self._features)

    @property
    def features(self) -> tuple[_NumericalProfile | _CategoricalProfile, ...]:
        return self._features

    @property
    def n_rows(self) -> int:
        return self._n_rows

    @property
    def bins(self) -> int:
        return self._bins

    def __repr__(self) -> str:
        return f"ReferenceProfile(n_rows={self._n_rows}, features={list(self.feature_names)}, bins={self._bins})"


def _common_length(data: Any, names: Sequence[str], label: str) -> int:
    if _is_frame(data):  # every column of a frame has its length
        return len(data)
    lengths = {name: _length(_column(data, name)) for name in names if _column(data, name) is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"All columns of {label} must have the same length. Got {lengths}.")
    return next(iter(lengths.values()), 0)


def _bin_counts_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in the right-closed bins ``(-inf, e_1], ..., (e_k, inf)`` of a sorted sample."""
    cum = np.empty(edges.size + 2, dtype=np.int64)
    cum[0], cum[-1] = 0, sorted_values.size
    cum[1:-1] = np.searchsorted(sorted_values, edges, side="right")
    return cum[1:] - cum[:-1]


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Convert to JSON-serialisable plain Python types (numpy scalars unwrapped, NaN -> None)."""
    if isinstance(value, float):  # fast paths for the common leaves (also numpy float64)
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or type(value) in (int, bool, str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


@dataclass(frozen=True)
class Evidence:
    """The criterion that decided a drifted verdict: ``statistic`` compared with ``threshold``."""

    statistic: str
    value: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"statistic": self.statistic, "value": _plain(self.value), "threshold": _plain(self.threshold)}


@dataclass(frozen=True)
class FeatureResult:
    """Drift statistics and verdict for one feature.

    ``n_reference``/``n_current`` count usable (finite, non-missing) values. Statistics are
    ``None`` when they do not apply to the kind or could not be computed. ``thresholds`` holds
    every threshold the policy applied (for the calibrated policy ``ks_pvalue``/``chi2_pvalue`` is
    the per-feature significance level). ``min_detectable_shift`` is in KS-distance units for
    numerical features and in category-share units for categorical ones (see the README, "Drift detection").
    """

    feature: str
    kind: str
    status: str
    drifted: bool
    n_reference: int
    n_current: int
    missing_rate_reference: float | None
    missing_rate_current: float | None
    missing_changed: bool
    psi: float | None = None
    js_distance: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    chi2_dof: int | None = None
    unseen_share: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    min_detectable_shift: float | None = None
    evidence: Evidence | None = None

    @property
    def usable(self) -> bool:
        return self.status in USABLE_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class DatasetResult:
    """Outcome of one :func:`check`.

    ``status`` is ``"ok"`` (every feature usable), ``"partial"`` (some features had
    ``not_enough_data``/``missing_column``) or ``"not_enough_data"`` (none usable; then
    ``dataset_drift`` is False and means "unknown", not "no drift").
    """

    dataset_drift: bool
    n_drifted: int
    n_features: int
    share_drifted: float
    features: tuple[FeatureResult, ...]
    policy: dict[str, Any]
    status: str
    n_reference: int
    n_current: int

    @property
    def drifted_features(self) -> tuple[FeatureResult, ...]:
        return tuple(f for f in self.features if f.drifted)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


def ks_critical_distance(alpha: float, n_reference: int, n_current: int) -> float:
    """Asymptotic KS critical distance ``c(alpha) * sqrt((n + m) / (n * m))``, ``c(a) = sqrt(-ln(a/2)/2)``.

    Examples
    --------
    >>> round(ks_critical_distance(0.05, 3500, 500), 4)
    0.0649
    """
    return math.sqrt(-math.log(alpha / 2.0) / 2.0) * math.sqrt((n_reference + n_current) / (n_reference * n_current))


@functools.lru_cache(maxsize=256)
def _chi2_critical(alpha: float, dof: int) -> float:
    """``chi2.isf(alpha, dof)``, cached: the policy asks for the same few values at every check."""
    return float(stats.chi2.isf(alpha, dof))


def _chi2_share_shift(alpha: float, dof: int, n_reference: int, n_current: int) -> float:
    """Smallest share change of one category (worst case share 0.5) the chi-square test detects."""
    critical = _chi2_critical(float(alpha), max(int(dof or 0), 1))
    return min(1.0, math.sqrt(critical * 0.25 * (1.0 / n_reference + 1.0 / n_current)))


@functools.lru_cache(maxsize=64)
def _floor_share_shift(psi_floor: float, js_floor: float) -> float:
    """Smallest share change (0.5 -> 0.5 + d) reaching the PSI floor or the JS floor."""

    def reach(stat: Callable[..., float], floor: float) -> float:
        if floor <= 0:
            return 0.0
        f = lambda d: stat(reference=[0.5, 0.5], current=[0.5 + d, 0.5 - d]) - floor  # noqa: E731
        return 0.5 if f(0.5 - 1e-12) < 0 else float(optimize.brentq(f, 0.0, 0.5 - 1e-12, xtol=1e-6))

    return min(reach(psi, psi_floor), reach(js_distance, js_floor))


def _strongest(candidates: Sequence[tuple[str, float, float, bool]]) -> Evidence | None:
    """Among triggered (name, value, threshold, is_pvalue) pick the largest exceedance ratio."""
    best, best_ratio = None, -math.inf
    for name, value, threshold, is_pvalue in candidates:
        ratio = threshold / max(value, 1e-300) if is_pvalue else value / max(threshold, 1e-300)
        if ratio > best_ratio:
            best, best_ratio = Evidence(name, float(value), float(threshold)), ratio
    return best


@dataclass(frozen=True)
class SeedPolicy:
    """The seed's fixed thresholds, kept for comparison (its false-alarm rate is high).

    A numerical feature drifts if ``PSI > psi_threshold`` or ``KS p < ks_pvalue`` or
    ``JS > js_threshold``; a categorical one if ``chi2 p < chi2_pvalue``. The dataset drifts when at
    least ``min(min_drifted_features, n_features)`` usable features drift.

    Examples
    --------
    >>> SeedPolicy(psi_threshold=-1)
    Traceback (most recent call last):
    ...
    rtml.drift.InvalidParameterError: The 'psi_threshold' parameter of SeedPolicy must be a float > 0. Got -1 instead.
    """

    psi_threshold: float = 0.1
    ks_pvalue: float = 0.05
    js_threshold: float = 0.1
    chi2_pvalue: float = 0.05
    min_drifted_features: int = 2
    min_rows: int = 30
    missing_min_change: float = 0.01

    name: ClassVar[str] = "seed"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        validate_float(owner, "psi_threshold", self.psi_threshold, low=0)
        validate_float(owner, "ks_pvalue", self.ks_pvalue, low=0, high=1)
        validate_float(owner, "js_threshold", self.js_threshold, low=0, high=1)
        validate_float(owner, "chi2_pvalue", self.chi2_pvalue, low=0, high=1)
        validate_int(owner, "min_drifted_features", self.min_drifted_features, low=1)
        validate_int(owner, "min_rows", self.min_rows, low=2)
        validate_float(owner, "missing_min_change", self.missing_min_change, low=0, high=1, low_open=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": {f.name: _plain(getattr(self, f.name)) for f in fields(self)}}

    def feature_alpha(self, kind: str, n_features: int) -> float:
        return self.ks_pvalue if kind == NUMERICAL else self.chi2_pvalue

    def decide(self, kind: str, s: Mapping[str, Any], n_features: int) -> tuple[bool, dict[str, float], Evidence | None, float]:
        n_ref, n_cur = s["n_reference"], s["n_current"]
        if kind == NUMERICAL:
            thresholds = {"psi": self.psi_threshold, "ks_pvalue": self.ks_pvalue, "js_distance": self.js_threshold}
            hits = [
                ("psi", s["psi"], self.psi_threshold, False, s["psi"] > self.psi_threshold),
                ("ks_pvalue", s["ks_pvalue"], self.ks_pvalue, True, s["ks_pvalue"] < self.ks_pvalue),
                ("js_distance", s["js_distance"], self.js_threshold, False, s["js_distance"] > self.js_threshold),
            ]
            mds = ks_critical_distance(self.ks_pvalue, n_ref, n_cur)
        else:
            thresholds = {"chi2_pvalue": self.chi2_pvalue}
            hits = [("chi2_pvalue", s["chi2_pvalue"], self.chi2_pvalue, True, s["chi2_pvalue"] < self.chi2_pvalue)]
            mds = _chi2_share_shift(self.chi2_pvalue, s["chi2_dof"], n_ref, n_cur)
        triggered = [h[:4] for h in hits if h[4]]
        return bool(triggered), thresholds, _strongest(triggered), mds


@dataclass(frozen=True)
class CalibratedPolicy:
    """Significance at a dependence-free corrected level AND an effect-size floor (the default).

    With ``p`` usable features and ``k = min(min_drifted_features, p)``, each feature is tested at
    ``alpha' = k * false_alarm_rate / p`` (KS p-value for numerical, chi-square homogeneity p-value
    for categorical). Markov's inequality gives ``P(#flagged >= k) <= E[#flagged] / k <= p * alpha' / k
    = false_alarm_rate`` under *any* dependence between features, at any sample size. A significant
    feature counts as drifted only if its effect is not trivial: numerical ``PSI >= psi_floor`` or
    ``JS >= js_floor`` or ``KS >= ks_floor``; categorical ``PSI >= psi_floor`` or ``JS >= js_floor``.

    Examples
    --------
    >>> CalibratedPolicy(false_alarm_rate=2)
    Traceback (most recent call last):
    ...
    rtml.drift.InvalidParameterError: The 'false_alarm_rate' parameter of CalibratedPolicy must be a float in (0, 0.5). Got 2 instead.
    >>> CalibratedPolicy().feature_alpha("numerical", 14)
    0.0014285714285714286
    """

    false_alarm_rate: float = 0.01
    min_drifted_features: int = 2
    psi_floor: float = 0.05
    js_floor: float = 0.05
    ks_floor: float = 0.05
    min_rows: int = 30
    missing_min_change: float = 0.01

    name: ClassVar[str] = "calibrated"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        validate_float(owner, "false_alarm_rate", self.false_alarm_rate, low=0, high=0.5)
        validate_int(owner, "min_drifted_features", self.min_drifted_features, low=1)
        validate_float(owner, "psi_floor", self.psi_floor, low=0, low_open=False)
        validate_float(owner, "js_floor", self.js_floor, low=0, high=1, low_open=False, high_open=False)
        validate_float(owner, "ks_floor", self.ks_floor, low=0, high=1, low_open=False, high_open=False)
        validate_int(owner, "min_rows", self.min_rows, low=2)
        validate_float(owner, "missing_min_change", self.missing_min_change, low=0, high=1, low_open=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": {f.name: _plain(getattr(self, f.name)) for f in fields(self)}}

    def feature_alpha(self, kind: str, n_features: int) -> float:
        """Per-feature significance level ``k * false_alarm_rate / n_features``."""
        n = max(int(n_features), 1)
        return min(self.min_drifted_features, n) * self.false_alarm_rate / n

    def decide(self, kind: str, s: Mapping[str, Any], n_features: int) -> tuple[bool, dict[str, float], Evidence | None, float]:
        alpha = self.feature_alpha(kind, n_features)
        n_ref, n_cur = s["n_reference"], s["n_current"]
        if kind == NUMERICAL:
            pvalue_name, pvalue = "ks_pvalue", s["ks_pvalue"]
            effects = [
                ("psi", s["psi"], self.psi_floor),
                ("js_distance", s["js_distance"], self.js_floor),
                ("ks_statistic", s["ks_statistic"], self.ks_floor),
            ]
            mds = max(ks_critical_distance(alpha, n_ref, n_cur), self.ks_floor)
        else:
            pvalue_name, pvalue = "chi2_pvalue", s["chi2_pvalue"]
            effects = [("psi", s["psi"], self.psi_floor), ("js_distance", s["js_distance"], self.js_floor)]
            mds = max(
                _chi2_share_shift(alpha, s["chi2_dof"], n_ref, n_cur),
                _floor_share_shift(self.psi_floor, self.js_floor),
            )
        thresholds = {pvalue_name: alpha, **{name: floor for name, _, floor in effects}}
        significant = pvalue < alpha
        reached = [(name, value, floor, False) for name, value, floor in effects if value >= floor]
        drifted = bool(significant and reached)
        return drifted, thresholds, _strongest(reached) if drifted else None, mds


Policy = SeedPolicy | CalibratedPolicy


# --------------------------------------------------------------------------------------------
# Checking a window
# --------------------------------------------------------------------------------------------


def _missing_changed(k_ref: int, n_ref: int, k_cur: int, n_cur: int, *, alpha: float, min_change: float) -> bool:
    """Two-proportion z-test on missing rates, AND an absolute change >= ``min_change``."""
    if n_ref == 0 or n_cur == 0:
        return False
    p_ref, p_cur = k_ref / n_ref, k_cur / n_cur
    if abs(p_cur - p_ref) < max(min_change, 1e-15):
        return False
    pooled = (k_ref + k_cur) / (n_ref + n_cur)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return bool(2.0 * special.ndtr(-(abs(p_cur - p_ref) / se)) < alpha)  # ndtr(-z) = stats.norm.sf(z)


def _numerical_stats(profile: _NumericalProfile, values: Any) -> dict[str, Any]:
    x = _to_float(values, profile.name)
    cur = _finite_sorted(x)
    m, n = cur.size, profile.padded.size - 1
    s: dict[str, Any] = {"n_rows": x.size, "n_missing": int(x.size - m), "n_current": m}
    if m and n:
        shares = _bin_counts_sorted(cur, profile.edges) / float(m)
        d = min(_ks_statistic(profile.padded, cur), 1.0)
        s.update(
            psi=_psi_from_shares(profile.shares_eps, shares),
            js_distance=_js_from_shares(profile.shares, shares),
            ks_statistic=d,
            ks_pvalue=ks_pvalue(d, n, m),
        )
    return s


def _categorical_stats(profile: _CategoricalProfile, values: Any) -> dict[str, Any]:
    distinct, counts, n_missing = _count_categories(values)
    cur = np.zeros(len(profile.categories) + 1, dtype=np.int64)
    unseen = len(profile.categories)
    index = profile.index
    for value, count in zip(distinct, counts.tolist()):
        cur[index.get(value, unseen)] += count
    n_cur = int(cur.sum())
    s: dict[str, Any] = {"n_rows": n_cur + n_missing, "n_missing": n_missing, "n_current": n_cur}
    if n_cur and profile.counts.sum():
        chi2 = chi2_homogeneity(reference=profile.counts, current=cur)
        shares = cur / float(n_cur)
        s.update(
            psi=_psi_from_shares(profile.shares_eps, shares),
            js_distance=_js_from_shares(profile.shares, shares),
            chi2_statistic=chi2.statistic,
            chi2_pvalue=chi2.pvalue,
            chi2_dof=chi2.dof,
            unseen_share=cur[unseen] / n_cur,
        )
    return s


_STAT_NAMES = ("psi", "js_distance", "ks_statistic", "ks_pvalue", "chi2_statistic", "chi2_pvalue", "chi2_dof", "unseen_share")


@dataclass(frozen=True, eq=False)
class WindowStatistics:
    """The policy-independent statistics of one current window against a reference.

    Returned by :func:`measure`; :func:`decide` turns it into a :class:`DatasetResult` under a
    policy. Computing the statistics once and deciding under several policies (as
    ``drift_detector.py evaluate`` does) gives exactly what :func:`check` gives for each policy.
    """

    reference: ReferenceProfile
    raw: tuple[Mapping[str, Any], ...]
    n_current: int


def _validate_reference_and_current(reference: Any, current: Any, owner: str) -> None:
    if not isinstance(reference, ReferenceProfile):
        raise InvalidParameterError(
            f"The 'reference' parameter of {owner} must be a ReferenceProfile. Got {type(reference).__name__} instead."
        )
    if not (_is_frame(current) or isinstance(current, Mapping)):
        raise InvalidParameterError(
            f"The 'current' parameter of {owner} must be a pandas DataFrame or a mapping of column name "
            f"to array. Got {type(current).__name__} instead."
        )


def _validate_policy(policy: Any, owner: str) -> Policy:
    policy = CalibratedPolicy() if policy is None else policy
    if not isinstance(policy, (SeedPolicy, CalibratedPolicy)):
        raise InvalidParameterError(
            f"The 'policy' parameter of {owner} must be a SeedPolicy or a CalibratedPolicy. Got {policy!r} instead."
        )
    return policy


def measure(*, reference: ReferenceProfile, current: Any) -> WindowStatistics:
    """Compute every statistic of ``current`` against ``reference``, without deciding.

    Parameters
    ----------
    reference : ReferenceProfile
    current : pandas.DataFrame or mapping of str to array-like

    Returns
    -------
    WindowStatistics
        Pass it to :func:`decide` (once per policy).
    """
    _validate_reference_and_current(reference, current, "measure")
    n_current_rows = _common_length(current, reference.feature_names, "current")
    raw: list[dict[str, Any]] = []
    for profile in reference.features:
        values = _column(current, profile.name)
        n_ref = profile.n_rows - profile.n_missing
        base = {"n_reference": n_ref, "ref_missing": profile.n_missing, "ref_rows": profile.n_rows}
        if values is None:
            raw.append({**base, "n_current": 0, "n_rows": 0, "n_missing": 0, "missing_column": True})
            continue
        s = _numerical_stats(profile, values) if profile.kind == NUMERICAL else _categorical_stats(profile, values)
        s.update(base)
        raw.append(s)
    return WindowStatistics(reference, tuple(raw), n_current_rows)


def _feature_status(profile: _NumericalProfile | _CategoricalProfile, s: Mapping[str, Any], min_rows: int) -> str:
    if s.get("missing_column"):
        return STATUS_MISSING_COLUMN
    if min(s["n_reference"], s["n_current"]) < min_rows:
        return STATUS_NOT_ENOUGH_DATA
    return STATUS_CONSTANT_REFERENCE if profile.constant else STATUS_OK


def decide(statistics: WindowStatistics, policy: Policy | None = None) -> DatasetResult:
    """Apply a decision policy to statistics from :func:`measure`.

    ``decide(measure(reference=r, current=c), policy)`` equals ``check(reference=r, current=c,
    policy=policy)``.

    Parameters
    ----------
    statistics : WindowStatistics
    policy : SeedPolicy or CalibratedPolicy, default=None
        ``None`` means ``CalibratedPolicy()``.

    Returns
    -------
    DatasetResult
    """
    if not isinstance(statistics, WindowStatistics):
        raise InvalidParameterError(
            "The 'statistics' parameter of decide must be a WindowStatistics (from measure). "
            f"Got {type(statistics).__name__} instead."
        )
    policy = _validate_policy(policy, "decide")
    reference = statistics.reference
    statuses = [_feature_status(p, s, policy.min_rows) for p, s in zip(reference.features, statistics.raw)]
    n_usable = sum(status in USABLE_STATUSES for status in statuses)
    alpha_by_kind = {kind: policy.feature_alpha(kind, max(n_usable, 1)) for kind in (NUMERICAL, CATEGORICAL)}
    results = []
    for profile, s, status in zip(reference.features, statistics.raw, statuses):
        drifted, thresholds, evidence, mds = False, {}, None, None
        if status in USABLE_STATUSES:
            drifted, thresholds, evidence, mds = policy.decide(profile.kind, s, n_usable)
        results.append(
            FeatureResult(
                feature=profile.name,
                kind=profile.kind,
                status=status,
                drifted=drifted,
                n_reference=int(s["n_reference"]),
                n_current=int(s["n_current"]),
                missing_rate_reference=s["ref_missing"] / s["ref_rows"] if s["ref_rows"] else None,
                missing_rate_current=s["n_missing"] / s["n_rows"] if s["n_rows"] else None,
                missing_changed=_missing_changed(
                    s["ref_missing"], s["ref_rows"], s["n_missing"], s["n_rows"],
                    alpha=alpha_by_kind[profile.kind], min_change=policy.missing_min_change,
                ),
                thresholds=thresholds,
                min_detectable_shift=mds,
                evidence=evidence,
                **{name: _plain(s[name]) for name in _STAT_NAMES if name in s},
            )
        )

    n_drifted = sum(r.drifted for r in results)
    k = min(policy.min_drifted_features, n_usable)
    status = STATUS_OK if n_usable == len(results) else ("partial" if n_usable else STATUS_NOT_ENOUGH_DATA)
    result = DatasetResult(
        dataset_drift=bool(n_usable > 0 and n_drifted >= k),
        n_drifted=n_drifted,
        n_features=n_usable,
        share_drifted=n_drifted / n_usable if n_usable else 0.0,
        features=tuple(results),
        policy=policy.to_dict(),
        status=status,
        n_reference=reference.n_rows,
        n_current=statistics.n_current,
    )
    logger.debug("drift check: status=%s drift=%s drifted=%d/%d", status, result.dataset_drift, n_drifted, n_usable)
    return result


def check(
    *,
    reference: ReferenceProfile,
    current: Any,
    policy: Policy | None = None,
) -> DatasetResult:
    """Compare a current window with a fitted reference profile.

    Parameters
    ----------
    reference : ReferenceProfile
        The fitted reference (see :meth:`ReferenceProfile.fit`).
    current : pandas.DataFrame or mapping of str to array-like
        The current window; extra columns are ignored, a missing feature column gives that feature
        the status ``"missing_column"``.
    policy : SeedPolicy or CalibratedPolicy, default=None
        Decision policy; ``None`` means ``CalibratedPolicy()``.

    Returns
    -------
    DatasetResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> ref = {f"x{i}": rng.normal(size=3500) for i in range(3)}
    >>> profile = ReferenceProfile.fit(ref, numerical=list(ref))
    >>> same = {f"x{i}": rng.normal(size=500) for i in range(3)}
    >>> check(reference=profile, current=same).dataset_drift
    False
    >>> shifted = {f"x{i}": rng.normal(0.5, size=500) for i in range(3)}
    >>> result = check(reference=profile, current=shifted)
    >>> result.dataset_drift, result.n_drifted, result.status
    (True, 3, 'ok')
    """
    _validate_reference_and_current(reference, current, "check")
    policy = _validate_policy(policy, "check")
    return decide(measure(reference=reference, current=current), policy)


# --------------------------------------------------------------------------------------------
# False-alarm measurement
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FalseAlarmEstimate:
    """Share of checks that raised dataset drift, with a one-sided 95 % Clopper-Pearson upper bound."""

    n_checks: int
    n_alarms: int
    rate: float
    upper_95: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def false_alarm_rate(
    *,
    make_windows: Callable[[int], tuple[ReferenceProfile, Any]],
    n_checks: int,
    policy: Policy | None = None,
) -> FalseAlarmEstimate:
    """Run ``n_checks`` checks on stationary windows and count dataset-drift alarms.

    Parameters
    ----------
    make_windows : callable
        ``make_windows(i) -> (ReferenceProfile, current)`` for check ``i``; it owns the randomness
        (e.g. ``np.random.default_rng([seed, i])``) and should draw current from the reference
        distribution.
    n_checks : int
        Number of checks.
    policy : SeedPolicy or CalibratedPolicy, default=None
        ``None`` means ``CalibratedPolicy()``.

    Examples
    --------
    >>> import numpy as np
    >>> def make_windows(i):
    ...     rng = np.random.default_rng([3, i])
    ...     cols = [f"x{j}" for j in range(4)]
    ...     ref = ReferenceProfile.fit({c: rng.normal(size=1000) for c in cols}, numerical=cols)
    ...     return ref, {c: rng.normal(size=500) for c in cols}
    >>> false_alarm_rate(make_windows=make_windows, n_checks=20).n_alarms
    0
    """
    n_checks = validate_int("false_alarm_rate", "n_checks", n_checks, low=1)
    n_alarms = 0
    for i in range(n_checks):
        profile, current = make_windows(i)
        n_alarms += check(reference=profile, current=current, policy=policy).dataset_drift
    upper = 1.0 if n_alarms == n_checks else float(stats.beta.ppf(0.95, n_alarms + 1, n_checks - n_alarms))
    return FalseAlarmEstimate(n_checks, n_alarms, n_alarms / n_checks, upper)
