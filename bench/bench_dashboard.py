#!/usr/bin/env python3
"""Time to load everything one dashboard refresh shows, on 100 k and 10 M interactions, same run.

    .venv/bin/python bench/bench_dashboard.py [--sizes 100k,10m] [--repeat 15] [--cache-dir /tmp/rtml-bench]

Each database is made by the generator's replay (``data_generator.py --replay DAYS --db PATH``,
retention widened so every row stays) and cached in ``--cache-dir`` for later runs (10 M rows:
~1 GB, ~80 s to build). The detector's tables are then filled in proportion to the simulated
time (a drift check with 10 feature results and a performance window every 5 simulated minutes,
a model every 6 hours, alerts), so they grow with history too.

One refresh = exactly what the app calls, without Streamlit: ``rtml.ui.data.load_snapshot``
(24-hour window) + ``reference_and_current_windows`` + ``load_distribution`` (5,000 rows a side)
on a read-only connection. Reports the median and p90 over ``--repeat`` refreshes (after one
warm-up) as a markdown table, and the 10 M / 100 k ratio. Targets: ratio <= 1.5, 10 M < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtml.config import load_settings  # noqa: E402
from rtml.simulation import CATEGORICAL_FEATURES, FEATURES, DriftSchedule  # noqa: E402
from rtml.storage import connect, connect_readonly, transaction  # noqa: E402
from rtml.ui import data  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
ROWS_PER_DAY = 2880 * 75  # ticks per day x mean rows per tick (batch_min_rows..batch_max_rows = 50..100)
BASELINE_ROWS = 3500
SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
CHECK_EVERY_S = 300.0
MODEL_EVERY_S = 6 * 3600.0


def build(path: Path, rows: int, cache_dir: Path) -> None:
    """Replay enough simulated days for ``rows`` interactions into ``path`` (kept for later runs)."""
    days = max((rows - BASELINE_ROWS) / ROWS_PER_DAY, 0.01)
    tmp = path.with_suffix(".building")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    env = dict(os.environ, RTML_HOME=str(cache_dir / "home"), RTML_STORAGE_RETENTION_DAYS="400",
               RTML_CONFIG=str(PROJECT / "config.toml"))
    started = time.perf_counter()
    subprocess.run([sys.executable, str(PROJECT / "data_generator.py"), "--replay", f"{days:.4f}", "--db", str(tmp),
                    "--no-progress"], env=env, check=True, cwd=PROJECT)
    tmp.rename(path)
    sys.stderr.write(f"built {path} ({days:.2f} simulated days) in {time.perf_counter() - started:.0f} s\n")


def seed_detector_tables(path: Path) -> int:
    """Checks, results, performance, models, events and alerts over the whole simulated span (once)."""
    conn = connect(path)
    if conn.execute("SELECT COUNT(*) FROM drift_checks").fetchone()[0]:
        conn.close()
        return 0
    settings = load_settings(environ={}, config_file=PROJECT / "config.toml")
    start = settings.sim_start_s
    end = conn.execute("SELECT MAX(sim_end) FROM generator_batches").fetchone()[0]
    schedule = DriftSchedule.from_settings(settings.simulation, start_s=start)
    thresholds_num = json.dumps({"ks_pvalue": 0.002, "psi": 0.05, "js_distance": 0.05, "ks_statistic": 0.05})
    thresholds_cat = json.dumps({"chi2_pvalue": 0.002, "psi": 0.05, "js_distance": 0.05})
    now = time.time()
    n_checks = 0
    with transaction(conn):
        t, minor, last_alert = start + 3600.0, 0, -1e18
        conn.execute("INSERT INTO models (version, major, minor, file, sha256, created_at, promoted_at, train_start, "
                     "train_end, n_train, features, library_versions, metrics, status, reason) "
                     "VALUES ('v1.0', 1, 0, 'f', '0', ?, ?, ?, ?, 2800, '[]', '{}', ?, 'archived', 'baseline')",
                     (start, start, start - 7 * 86400, start, json.dumps({"roc_auc": 0.8, "accuracy": 0.76})))
        while t <= end:
            d = float(schedule.intensity(t - 1800.0))
            drifted = d > 0.3
            n_drifted = 4 if drifted else 0
            check_id = conn.execute(
                "INSERT INTO drift_checks (checked_at, real_time, window_start, window_end, reference_start, "
                "reference_end, reference_version, n_reference, n_current, policy, dataset_drift, n_drifted, "
                "n_features, share_drifted, status, true_intensity) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (t, now, t - 3600, t, t - 6 * 3600, t - 3600, f"v1.{minor}", 5000, 9000, "calibrated", int(drifted),
                 n_drifted, len(FEATURES), n_drifted / len(FEATURES), "ok", d)).lastrowid
            conn.executemany(
                "INSERT INTO drift_results (check_id, feature, kind, status, drifted, psi, ks_statistic, ks_pvalue, "
                "js_distance, chi2_statistic, chi2_pvalue, missing_rate_reference, missing_rate_current, "
                "min_detectable_shift, thresholds, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(check_id, f, "categorical" if f in CATEGORICAL_FEATURES else "numerical", "ok", int(drifted and i < 4),
                  0.02 + 0.3 * d, None if f in CATEGORICAL_FEATURES else 0.02 + 0.2 * d,
                  None if f in CATEGORICAL_FEATURES else 0.5 * (1 - d), 0.01 + 0.1 * d,
                  3.0 if f in CATEGORICAL_FEATURES else None, 0.5 * (1 - d) if f in CATEGORICAL_FEATURES else None,
                  0.0, 0.0, 0.03, thresholds_cat if f in CATEGORICAL_FEATURES else thresholds_num, "{}")
                 for i, f in enumerate(FEATURES)])
            conn.execute("INSERT INTO performance (window_start, window_end, model_version, n_rows, base_rate, accuracy, "
                         "roc_auc, precision, recall, f1, log_loss, brier, computed_at) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         (t - 3600, t, f"v1.{minor}", 9000, 0.2, 0.78, 0.81 - 0.05 * d, 0.6, 0.5, 0.55, 0.45, 0.14, now))
            if drifted and t - last_alert >= 3600:
                conn.execute("INSERT INTO alerts (created_at, real_time, severity, source, message, details, check_id) "
                             "VALUES (?,?,?,?,?,?,?)", (t, now, "critical", "drift", "Significant drift detected in 4 "
                                                        "features!", json.dumps([{"feature": "age", "statistic": "psi",
                                                                                  "value": 0.3, "threshold": 0.05}]),
                                                        check_id))
                last_alert = t
            if t - start >= MODEL_EVERY_S * (minor + 1):
                minor += 1
                conn.execute("INSERT INTO models (version, major, minor, file, sha256, created_at, promoted_at, "
                             "train_start, train_end, n_train, features, library_versions, metrics, status, reason) "
                             "VALUES (?, 1, ?, 'f', '0', ?, ?, ?, ?, 9000, '[]', '{}', ?, 'archived', 'retrained')",
                             (f"v1.{minor}", minor, t, t, t - 6 * 3600, t - 3600,
                              json.dumps({"roc_auc": 0.82, "accuracy": 0.77})))
                conn.executemany("INSERT INTO model_events (at, real_time, event, version, from_version, actor, reason, "
                                 "details) VALUES (?,?,?,?,?,?,?,?)",
                                 [(t, now, "trained", f"v1.{minor}", None, "detector", "scheduled", "{}"),
                                  (t, now, "promoted", f"v1.{minor}", f"v1.{minor - 1}", "detector", "better", "{}")])
            t += CHECK_EVERY_S
            n_checks += 1
        conn.execute("UPDATE models SET status = 'champion' WHERE minor = ?", (minor,))
    conn.close()
    return n_checks


def one_refresh(conn) -> float:
    """Milliseconds for everything one refresh loads (the app's data functions, no Streamlit)."""
    started = time.perf_counter()
    snap = data.load_snapshot(conn, window_s=24 * 3600.0)
    ref, ref_label, cur, cur_label = data.reference_and_current_windows(snap, current_window_s=3600.0)
    data.load_distribution(conn, feature="age", reference_window=ref, current_window=cur, limit=5000)
    return (time.perf_counter() - started) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,10m", help="comma-separated: 100k, 1m, 10m")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/rtml-bench"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for label in args.sizes.split(","):
        path = args.cache_dir / f"interactions_{label}.db"
        if not path.exists():
            build(path, SIZES[label], args.cache_dir)
        seed_detector_tables(path)
        conn = connect_readonly(path)
        stored = conn.execute("SELECT MAX(id) - MIN(id) + 1 FROM interactions").fetchone()[0]
        checks = conn.execute("SELECT COUNT(*) FROM drift_checks").fetchone()[0]
        t0 = time.perf_counter()
        conn.execute("SELECT COUNT(*) FROM interactions").fetchone()
        count_ms = (time.perf_counter() - t0) * 1000.0
        one_refresh(conn)  # warm-up: page cache and imports
        times = sorted(one_refresh(conn) for _ in range(args.repeat))
        conn.close()
        results.append({"size": label, "interactions": stored, "drift_checks": checks,
                        "median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))],
                        "count_star_ms": count_ms})
    lines = ["| database | interactions | drift checks | refresh median (ms) | p90 (ms) | COUNT(*) alone (ms) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['size']} | {r['interactions']:,} | {r['drift_checks']:,} | {r['median_ms']:.1f} | "
                     f"{r['p90_ms']:.1f} | {r['count_star_ms']:.1f} |")
    out = "\n".join(lines)
    if len(results) >= 2:
        ratio = results[-1]["median_ms"] / results[0]["median_ms"]
        ok = ratio <= 1.5 and results[-1]["median_ms"] < 300
        out += (f"\n\nratio {results[-1]['size']} / {results[0]['size']} (median): {ratio:.2f} "
                f"(target <= 1.5 and < 300 ms: {'met' if ok else 'NOT met'})")
    sys.stdout.write(out + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
