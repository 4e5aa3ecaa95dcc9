#!/usr/bin/env python3
"""One full drift check — rtml vs a plain numpy/scipy implementation vs Evidently vs NannyML.

    .venv/bin/python bench/bench_drift.py [--sizes 3500/500,100000/100000,1000000/1000000]
        [--impls rtml,plain,evidently,nannyml] [--repeat N] [--skip-install]

Data: ten numerical columns (normal, log-normal, Poisson counts, zero-inflated, heavy-tailed,
integer ages, uniform, a bimodal mixture, with a few NaN) and five categorical columns (3 to 12
categories), reference and current drawn from nearly the same distribution (two columns
shifted a little), written once per size to Parquet in a temp dir. Every implementation runs
in its own worker process (``bench/drift_worker.py``) that reads those files (untimed) and then
times complete checks (reference + current -> per-feature statistics and verdicts):

* rtml: ``ReferenceProfile.fit`` + ``check`` (all four statistics), reported separately and together;
* plain: per column ``scipy.stats.ks_2samp(method="asymp")`` + ``np.histogram`` on reference
  deciles for PSI/JS, and ``chi2_contingency`` + PSI/JS on category counts;
* Evidently ``Report([DataDriftPreset()])`` on two ``Dataset`` objects (its default per-column
  tests), in ``bench/.venv-evidently``;
* NannyML ``UnivariateDriftCalculator`` (KS + Jensen-Shannon continuous, chi2 + Jensen-Shannon
  categorical, one chunk) ``fit`` + ``calculate``, in ``bench/.venv-nannyml``.

The two library venvs are created on first run (``python -m venv`` + pip, pinned below; never
in requirements.txt). Results: a markdown table on stdout, JSON in ``bench/results/drift.json``.
Timings are medians over the repeats (after one warm-up run for sizes up to 100k rows; at least 21
repeats for rtml and plain below 1M rows); memory is the worker's peak RSS and the tracemalloc peak
of one extra run. The 1-minute load average is recorded before each size and after each worker.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
WORKER = BENCH / "drift_worker.py"
RESULTS = BENCH / "results"

#: Library venvs: pinned packages that install on Python 3.11 here (Evidently 0.7 needs pandas < 3;
#: NannyML 0.13 is not tested with pandas 3 either).
VENVS = {
    "evidently": ["evidently==0.7.23", "pandas>=2.2,<3", "pyarrow>=15"],
    "nannyml": ["nannyml==0.13.1", "pandas>=2.2,<3", "pyarrow>=15", "statsmodels"],
}
DEFAULT_SIZES = ((3500, 500), (100_000, 100_000), (1_000_000, 1_000_000))
NUMERICAL = [f"num_{i}" for i in range(10)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CATEGORY_COUNTS = (3, 4, 5, 8, 12)


def make_frame(n: int, rng: np.random.Generator, *, shift: float = 0.0) -> pd.DataFrame:
    """Ten numerical and five categorical columns; ``shift`` moves num_0 and cat_0 a little."""
    cols = {
        "num_0": rng.normal(shift, 1.0, n),
        "num_1": rng.lognormal(3.0, 0.8, n),
        "num_2": rng.poisson(4.0, n).astype(float),
        "num_3": np.where(rng.random(n) < 0.4, 0.0, rng.exponential(20.0, n)),
        "num_4": rng.standard_t(3, n),
        "num_5": np.clip(rng.normal(38, 12, n), 18, 85).round(),
        "num_6": rng.uniform(0, 100, n),
        "num_7": np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(2, 1, n)),
        "num_8": rng.gamma(2.0, 2.0, n),
        "num_9": rng.normal(100, 15, n).round(1),
    }
    cols["num_9"][rng.random(n) < 0.01] = np.nan
    for j, (name, k) in enumerate(zip(CATEGORICAL, CATEGORY_COUNTS)):
        p = np.arange(k, 0, -1, dtype=float)
        if j == 0:
            p[0] += shift * k
        labels = np.array([f"{name}_v{i}" for i in range(k)], dtype=object)
        cols[name] = labels[rng.choice(k, size=n, p=p / p.sum())]
    return pd.DataFrame(cols)


def write_data(tmp: Path, n_ref: int, n_cur: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng([seed, n_ref, n_cur])
    ref, cur = tmp / f"ref_{n_ref}.parquet", tmp / f"cur_{n_cur}.parquet"
    make_frame(n_ref, rng).to_parquet(ref, index=False)
    make_frame(n_cur, rng, shift=0.05).to_parquet(cur, index=False)
    return ref, cur


# --------------------------------------------------------------------------------------------
# Library virtualenvs
# --------------------------------------------------------------------------------------------


def venv_python(name: str) -> Path:
    return BENCH / f".venv-{name}" / "bin" / "python"


def ensure_venv(name: str, *, install: bool) -> tuple[Path | None, str | None]:
    """Create ``bench/.venv-NAME`` with its pinned packages if needed; return (python, error)."""
    venv = BENCH / f".venv-{name}"
    marker = venv / "rtml-bench-spec.json"
    spec = VENVS[name]
    python = venv_python(name)
    if python.exists() and marker.exists() and json.loads(marker.read_text()) == spec:
        return python, None
    if not install:
        return None, f"{venv} is missing or out of date (run without --skip-install)"
    print(f"[bench] creating {venv} with {' '.join(spec)} (first run only)...", file=sys.stderr)
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *spec]]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()
                     and "is ignored: it is neither a file nor a directory" not in ln]
            return None, f"`{' '.join(cmd[:6])} ...` failed (exit {proc.returncode}): " + " | ".join(lines[-6:])
    check = subprocess.run([str(python), "-c", f"import {name}"], capture_output=True, text=True)
    if check.returncode != 0:
        return None, f"import {name} failed: {check.stderr.strip().splitlines()[-1]}"
    marker.write_text(json.dumps(spec))
    return python, None


# --------------------------------------------------------------------------------------------
# Running workers
# --------------------------------------------------------------------------------------------


def run_worker(python: Path, impl: str, ref: Path, cur: Path, *, repeat: int, warmup: int,
               timeout_s: float) -> dict:
    cmd = [str(python), str(WORKER), "--impl", impl, "--reference", str(ref), "--current", str(cur),
           "--numerical", ",".join(NUMERICAL), "--categorical", ",".join(CATEGORICAL),
           "--repeat", str(repeat), "--warmup", str(warmup)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-3:]
        return {"error": f"worker exit {proc.returncode}: {' | '.join(tail)}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t0
    for key in ("total", "fit", "check"):
        values = [r[key] for r in out["runs"] if key in r]
        if values:
            out[f"median_{key}_s"] = statistics.median(values)
    return out


#: Repeats of the fast implementations below 1M rows (cheap, and the machine is often shared).
FAST_REPEAT = 21


def repeats_for(impl: str, n_ref: int, base: int) -> tuple[int, int]:
    """(repeat, warmup): fewer repeats and no warm-up at 1M rows for the slow libraries; at least
    :data:`FAST_REPEAT` repeats for rtml and plain below 1M rows (their medians are then stable)."""
    if n_ref >= 1_000_000:
        return (1, 0) if impl in ("evidently", "nannyml") else (max(1, min(base, 3)), 0)
    if impl in ("rtml", "plain"):
        return max(base, FAST_REPEAT), 1
    if n_ref >= 100_000:
        return max(1, min(base, 3)), 1
    return base, 1


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def markdown(results: list[dict]) -> str:
    header = ("| reference / current | implementation | median time | vs rtml (fit + check) | peak RSS | "
              "tracemalloc peak |")
    lines = [header, "|---|---|---|---|---|---|"]
    for size in results:
        label = f"{size['n_reference']:,} / {size['n_current']:,}"
        base = size["impls"].get("rtml", {}).get("median_total_s")
        for impl, r in size["impls"].items():
            if "error" in r:
                lines.append(f"| {label} | {impl} | not run: {r['error']} | | | |")
                continue
            t = r["median_total_s"]
            name = impl
            if impl == "rtml":
                name = (f"rtml (fit {_fmt_s(r.get('median_fit_s'))} + check {_fmt_s(r.get('median_check_s'))})")
            ratio = "1×" if impl == "rtml" else (f"{t / base:.1f}× slower" if base and t >= base
                                                 else f"{base / t:.1f}× faster" if base else "—")
            runs = len(r["runs"])
            tm = r.get("tracemalloc_peak_mb")
            lines.append(f"| {label} | {name} | {_fmt_s(t)} ({runs} run{'s' if runs > 1 else ''}) | {ratio} | "
                         f"{r['peak_rss_mb']:.0f} MB | {'—' if tm is None else f'{tm:.0f} MB'} |")
    return "\n".join(lines)


def targets(results: list[dict]) -> list[str]:
    out = []
    goals = {"evidently": 50.0, "nannyml": 15.0, "plain": 1.0}
    for size in results:
        base = size["impls"].get("rtml", {}).get("median_total_s")
        for impl, goal in goals.items():
            r = size["impls"].get(impl)
            if base is None or r is None or "error" in r:
                continue
            ratio = r["median_total_s"] / base
            ok = ratio >= goal
            out.append(f"{size['n_reference']:,}/{size['n_current']:,} {impl}: rtml is {ratio:.1f}× faster "
                       f"(target ≥ {goal:g}×) — {'met' if ok else 'MISSED'}")
    return out


def parse_sizes(text: str) -> list[tuple[int, int]]:
    pairs = []
    for part in text.split(","):
        a, _, b = part.partition("/")
        pairs.append((int(a), int(b or a)))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="REF/CUR,REF/CUR,...")
    parser.add_argument("--impls", default="rtml,plain,evidently,nannyml")
    parser.add_argument("--repeat", type=int, default=5, help="repeats at small sizes (fewer at 1M)")
    parser.add_argument("--skip-install", action="store_true", help="do not create the library venvs")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    parser.add_argument("--output", type=Path, default=RESULTS / "drift.json")
    args = parser.parse_args(argv)
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]

    pythons: dict[str, Path | None] = {"rtml": Path(sys.executable), "plain": Path(sys.executable)}
    errors: dict[str, str] = {}
    for name in ("evidently", "nannyml"):
        if name in impls:
            pythons[name], err = ensure_venv(name, install=not args.skip_install)
            if err:
                errors[name] = err
                print(f"[bench] {name}: {err}", file=sys.stderr)

    results = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rtml-bench-") as tmp:
        for n_ref, n_cur in args.sizes:
            ref, cur = write_data(Path(tmp), n_ref, n_cur)
            size = {"n_reference": n_ref, "n_current": n_cur, "impls": {}, "loadavg_before": os.getloadavg()}
            for impl in impls:
                if impl in errors:
                    size["impls"][impl] = {"error": errors[impl]}
                    continue
                repeat, warmup = repeats_for(impl, n_ref, args.repeat)
                print(f"[bench] {n_ref}/{n_cur} {impl} (repeat {repeat}, warm-up {warmup})...", file=sys.stderr)
                r = run_worker(pythons[impl], impl, ref, cur, repeat=repeat, warmup=warmup, timeout_s=args.timeout)
                r["loadavg_after"] = os.getloadavg()
                size["impls"][impl] = r
                if "error" in r:
                    print(f"[bench]   {r['error']}", file=sys.stderr)
                else:
                    print(f"[bench]   median {r['median_total_s']:.3f} s", file=sys.stderr)
            results.append(size)
    table = markdown(results)
    verdicts = targets(results)
    print(table)
    print()
    for line in verdicts:
        print(f"- {line}")
    load = os.getloadavg()
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version(),
            "loadavg_at_start": load_start, "loadavg_at_end": load,
            "command": " ".join([Path(sys.executable).name, *sys.argv])}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"meta": meta, "sizes": results, "targets": verdicts, "markdown": table},
                                      indent=2))
    print(f"\n(1-min load average at the start {load_start[0]:.1f}, at the end {load[0]:.1f}; JSON in {args.output})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
