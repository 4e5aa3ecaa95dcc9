#!/usr/bin/env python3
"""Model lifecycle costs: training time, scoring throughput into SQLite, detector RSS with a model.

    .venv/bin/python bench/bench_model.py [--train-rows 50000] [--score-days 0.5]

* training: ``modeling.train`` with the configured (default) hyper-parameters on ``--train-rows``
  live rows;
* scoring: ``scoring.score_pending`` — the detector's real path: read after the cursor, predict,
  insert predictions and the cursor in one transaction — over ``--score-days`` of live rows,
  with the configured ``score_batch_rows`` and with live-sized batches (what one loop iteration
  sees at 100x speed), compared with the 100x live rate (2.5 rows/s x 100 = 250 rows/s);
* memory: RSS of a fresh process that connects and loads the champion verified (psutil).

Prints a markdown table and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from rtml import modeling, registry, scoring  # noqa: E402
from rtml.config import load_settings  # noqa: E402
from rtml.generator import Generator  # noqa: E402
from rtml.storage import connect  # noqa: E402
from rtml.storage.interactions import read_window  # noqa: E402

LIVE_ROWS_PER_S = 2.5          # (50 + 100) / 2 rows per 30-second tick
TARGET_SPEED = 100.0
LOOP_S = 0.5                   # the detector loop's sleep at high speed

RSS_SCRIPT = """
import json, sys, psutil
from rtml.lean import hide_dataframe_libraries
hide_dataframe_libraries()  # as the detector service runs
from rtml.config import load_settings
from rtml.storage import connect
proc = psutil.Process()
before = proc.memory_info().rss
from rtml import registry, scoring
settings = load_settings(environ={}, home=sys.argv[1], config_file=sys.argv[2])
conn = connect(settings.db_path)
loaded = registry.load_champion(settings, conn, now_s=settings.sim_start_s)
after_load = proc.memory_info().rss
conn.execute("DELETE FROM predictions")
scoring.score_pending(conn, model=loaded.model, version=loaded.version, cursor=scoring.load_cursor(conn),
                      batch_rows=5000)
print(json.dumps({"rss_python_bytes": before, "rss_model_loaded_bytes": after_load,
                  "rss_after_scoring_bytes": proc.memory_info().rss}))
"""


def bench(train_rows: int, score_days: float, workdir: Path) -> dict:
    settings = load_settings(environ={}, home=workdir, config_file=PROJECT / "config.toml")
    conn = connect(settings.db_path)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    live_days = max(score_days, train_rows / (LIVE_ROWS_PER_S * 86400) * 1.1)
    gen.replay(live_days)
    frame = read_window(conn, start_s=settings.sim_start_s, end_s=settings.sim_start_s + live_days * 86400,
                        limit=train_rows)
    t0 = time.perf_counter()
    model = modeling.train(frame, model_settings=settings.model, seed=settings.simulation.seed)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    modeling.evaluate(model, frame.take(range(max(0, len(frame) - 10_000), len(frame))))
    eval_s = time.perf_counter() - t0
    registry.ensure_initial_model(settings, conn, now_s=settings.sim_start_s)
    loaded = registry.load_champion(settings, conn, now_s=settings.sim_start_s)
    model_bytes = (settings.models_dir / loaded.row.file).stat().st_size

    def score_all(batch_rows: int, max_rows: int | None = None) -> tuple[int, float]:
        conn.execute("DELETE FROM predictions")
        cursor = start_cursor = scoring.load_cursor(conn)
        done = 0
        t = time.perf_counter()
        while max_rows is None or done < max_rows:
            result = scoring.score_pending(conn, model=loaded.model, version=loaded.version, cursor=cursor,
                                           batch_rows=batch_rows)
            if result.n_scored == 0:
                break
            cursor, done = result.cursor, done + result.n_scored
        elapsed = time.perf_counter() - t
        conn.execute("DELETE FROM detector_state WHERE key = ?", (scoring.CURSOR_KEY,))
        conn.execute("INSERT INTO detector_state (key, value) VALUES (?, ?)", (scoring.CURSOR_KEY, str(start_cursor)))
        return done, elapsed

    big_rows, big_s = score_all(settings.model.score_batch_rows)
    live_batch = int(LIVE_ROWS_PER_S * TARGET_SPEED * LOOP_S)
    small_rows, small_s = score_all(live_batch, max_rows=20_000)
    conn.close()
    rss = json.loads(subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(workdir), str(PROJECT / "config.toml")],
                                    check=True, capture_output=True, text=True,
                                    env=dict(os.environ, PYTHONPATH=str(PROJECT))).stdout)
    need = LIVE_ROWS_PER_S * TARGET_SPEED
    return {
        "hyper_parameters": {"n_estimators": settings.model.n_estimators, "max_depth": settings.model.max_depth,
                             "min_samples_leaf": settings.model.min_samples_leaf},
        "train_rows": len(frame), "train_s": train_s, "evaluate_10k_s": eval_s, "model_file_bytes": model_bytes,
        "score_batch_rows": settings.model.score_batch_rows, "scored_rows": big_rows,
        "score_rows_per_s": big_rows / big_s, "live_batch_rows": live_batch,
        "live_batch_rows_per_s": small_rows / small_s, "needed_rows_per_s_at_100x": need,
        "headroom_x": big_rows / big_s / need, "headroom_live_batches_x": small_rows / small_s / need, **rss,
        "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--score-days", type=float, default=0.5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rtml-bench-model-") as tmp:
        r = bench(args.train_rows, args.score_days, Path(tmp))
    mib = 1024 * 1024
    lines = [
        "| measure | value |", "|---|---|",
        f"| training ({r['train_rows']} rows, {r['hyper_parameters']}) | {r['train_s']:.1f} s |",
        f"| evaluate 10k rows | {r['evaluate_10k_s']:.2f} s |",
        f"| model file | {r['model_file_bytes'] / mib:.1f} MiB |",
        f"| scoring, {r['score_batch_rows']}-row batches ({r['scored_rows']} rows) "
        f"| {r['score_rows_per_s']:,.0f} rows/s |",
        f"| scoring, {r['live_batch_rows']}-row batches (one loop at 100x) "
        f"| {r['live_batch_rows_per_s']:,.0f} rows/s |",
        f"| needed at 100x | {r['needed_rows_per_s_at_100x']:.0f} rows/s |",
        f"| headroom (big / live batches) | {r['headroom_x']:.0f}x / {r['headroom_live_batches_x']:.0f}x |",
        f"| RSS (as the detector: no pandas): interpreter / + sklearn, model loaded / after scoring 5k "
        f"| {r['rss_python_bytes'] / mib:.0f} / "
        f"{r['rss_model_loaded_bytes'] / mib:.0f} / {r['rss_after_scoring_bytes'] / mib:.0f} MiB |",
        f"| machine | {r['cpu_count']} CPUs, load {r['load_avg_1m']:.1f} |",
    ]
    print("\n".join(lines))
    out = PROJECT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench_model-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(r, indent=2))
    print(f"\nJSON: {path.relative_to(PROJECT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
