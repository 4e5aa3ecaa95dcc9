#!/usr/bin/env python3
"""Replay throughput vs a raw SQLite executemany of the same rows, measured in the same run.

    .venv/bin/python bench/bench_replay.py [--days 7] [--repeat 1]

Both sides write into a fresh database with the same schema (and its event-time index):
* rtml: ``Generator.replay(days)`` — simulation, per-batch transactions, customer state, retention;
* raw: ``executemany`` of the rows the replay produced (prepared tuples), in transactions of the
  same size, with nothing else.
Reports rows/s of each and their ratio (the target is rtml >= 50 % of raw; 7 days in < 60 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtml.config import load_settings  # noqa: E402
from rtml.generator import Generator  # noqa: E402
from rtml.storage import connect  # noqa: E402
from rtml.storage import interactions as store  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent


def run_once(days: float, workdir: Path) -> dict:
    settings = load_settings(environ={}, home=workdir / "rtml", config_file=PROJECT / "config.toml")
    conn = connect(settings.db_path)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    t0 = time.perf_counter()
    rows = gen.replay(days)
    rtml_s = time.perf_counter() - t0
    cols = ", ".join(store.INTERACTION_COLUMNS)
    prepared = conn.execute(f"SELECT {cols} FROM interactions WHERE event_time >= ? ORDER BY id",
                            (settings.sim_start_s,)).fetchall()
    batch_sizes = [r[0] for r in conn.execute("SELECT n_rows FROM generator_batches WHERE kind = 'replay' ORDER BY batch_id")]
    conn.close()
    raw = connect(workdir / "raw.db")
    t0 = time.perf_counter()
    offset = 0
    for size in batch_sizes:
        store.insert_rows_raw(raw, prepared[offset:offset + size])
        offset += size
    raw_s = time.perf_counter() - t0
    raw.close()
    return {"days": days, "rows": rows, "rtml_s": rtml_s, "raw_s": raw_s, "rtml_rows_per_s": rows / rtml_s,
            "raw_rows_per_s": len(prepared) / raw_s, "ratio": (rows / rtml_s) / (len(prepared) / raw_s)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    results = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(run_once(args.days, Path(tmp)))
    print("| run | rows | rtml replay s | rtml rows/s | raw executemany s | raw rows/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(results, 1):
        print(f"| {i} | {r['rows']:,} | {r['rtml_s']:.1f} | {r['rtml_rows_per_s']:,.0f} | {r['raw_s']:.1f} "
              f"| {r['raw_rows_per_s']:,.0f} | {r['ratio']:.2f} |")
    out = PROJECT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
