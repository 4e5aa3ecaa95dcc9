"""One drift-check implementation, timed on the benchmark's Parquet files (run by bench_drift.py).

    python drift_worker.py --impl rtml|plain|evidently|nannyml --reference REF --current CUR \
        --numerical a,b --categorical c,d --repeat 3 --warmup 1

Runs in whatever interpreter the bench chooses (the project venv for rtml and plain, the
benchmark venvs for Evidently and NannyML). Reading the Parquet files is not timed. Prints one JSON
object: per-repeat seconds (``total``, and ``fit``/``check`` where the implementation separates
them), the peak RSS of this process (``ru_maxrss``) and the tracemalloc peak of one extra,
untimed run.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path


def _names(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


# --------------------------------------------------------------------------------------------
# Implementations: each returns a callable running one full check and returning timings
# --------------------------------------------------------------------------------------------


def make_rtml(num, cat):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from rtml.drift import ReferenceProfile, check

    def run(ref, cur):
        t0 = time.perf_counter()
        profile = ReferenceProfile.fit(ref, numerical=num, categorical=cat, bins=10)
        t1 = time.perf_counter()
        check(reference=profile, current=cur)
        t2 = time.perf_counter()
        return {"fit": t1 - t0, "check": t2 - t1, "total": t2 - t0}

    return run


def make_plain(num, cat):
    import numpy as np
    import pandas as pd
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    eps = 1e-4

    def psi(r, c):
        r, c = r / r.sum(), c / c.sum()
        r, c = np.where(r == 0, eps, r), np.where(c == 0, eps, c)
        return float(np.sum((c - r) * np.log(c / r)))

    def run(ref, cur):
        t0 = time.perf_counter()
        out = {}
        for name in num:
            r = ref[name].to_numpy(dtype=float)
            c = cur[name].to_numpy(dtype=float)
            r, c = r[np.isfinite(r)], c[np.isfinite(c)]
            ks = stats.ks_2samp(r, c, method="asymp")
            edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
            hr, hc = np.histogram(r, edges)[0].astype(float), np.histogram(c, edges)[0].astype(float)
            out[name] = (ks.statistic, ks.pvalue, psi(hr, hc), float(jensenshannon(hr, hc, base=2)))
        for name in cat:
            r, c = ref[name].value_counts(), cur[name].value_counts()
            idx = r.index.union(c.index)
            r, c = r.reindex(idx, fill_value=0).to_numpy(float), c.reindex(idx, fill_value=0).to_numpy(float)
            chi2 = stats.chi2_contingency(np.vstack([r, c]), correction=False)
            out[name] = (chi2[0], chi2[1], psi(r, c), float(jensenshannon(r, c, base=2)))
        return {"total": time.perf_counter() - t0}

    return run


def make_evidently(num, cat):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)

    def run(ref, cur):
        t0 = time.perf_counter()
        ref_ds = Dataset.from_pandas(ref, data_definition=definition)
        cur_ds = Dataset.from_pandas(cur, data_definition=definition)
        snapshot = Report([DataDriftPreset()]).run(cur_ds, ref_ds)
        snapshot.dict()  # materialise every metric result
        return {"total": time.perf_counter() - t0}

    return run


def make_nannyml(num, cat):
    import nannyml as nml

    def run(ref, cur):
        t0 = time.perf_counter()
        calc = nml.UnivariateDriftCalculator(
            column_names=num + cat, treat_as_categorical=cat, chunk_number=1,
            continuous_methods=["kolmogorov_smirnov", "jensen_shannon"],
            categorical_methods=["chi2", "jensen_shannon"])
        calc.fit(ref)
        t1 = time.perf_counter()
        calc.calculate(cur).to_df()
        t2 = time.perf_counter()
        return {"fit": t1 - t0, "check": t2 - t1, "total": t2 - t0}

    return run


IMPLS = {"rtml": make_rtml, "plain": make_plain, "evidently": make_evidently, "nannyml": make_nannyml}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=sorted(IMPLS), required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    parser.add_argument("--numerical", required=True)
    parser.add_argument("--categorical", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-tracemalloc", action="store_true")
    args = parser.parse_args()
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore")
    num, cat = _names(args.numerical), _names(args.categorical)
    ref, cur = pd.read_parquet(args.reference), pd.read_parquet(args.current)
    run = IMPLS[args.impl](num, cat)
    for _ in range(args.warmup):
        run(ref, cur)
    runs = [run(ref, cur) for _ in range(args.repeat)]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    traced = None
    if not args.no_tracemalloc:
        tracemalloc.start()
        run(ref, cur)
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    versions = {}
    for mod in ("numpy", "pandas", "scipy", "evidently", "nannyml"):
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "?")
    print(json.dumps({"impl": args.impl, "runs": runs, "peak_rss_mb": peak_rss_mb, "tracemalloc_peak_mb": traced,
                      "versions": versions, "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
