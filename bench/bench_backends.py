#!/usr/bin/env python3
"""SQLite vs PostgreSQL in the same run: replay throughput and one drift check.

    .venv/bin/python bench/bench_backends.py [--days 2] [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

For each backend, on a fresh database (a temp SQLite file; a throw-away PostgreSQL database
``rtml_bench_<random>`` created through ``--postgres-url`` or ``RTML_TEST_POSTGRES_URL`` and dropped
afterwards):

* replay: ``Generator.replay(days)`` after the baseline backfill — what ``data_generator.py
  --replay DAYS`` does (simulation, per-batch transactions, customer state, retention); rows/s;
* drift check: ``DriftMonitor.check`` at the end of the replay, with the baseline as reference
  (3,500 rows) and the default 20-minute window (~3,000 rows at the live rate): one window read
  from the database, the statistics of 10 features, storing the check, its results and any
  alert. Median of ``--checks`` runs (each check is stored, like the detector's).

Prints a markdown table with both backends and the PostgreSQL/SQLite ratio; writes JSON to
``bench/results/backends.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtml.config import load_settings  # noqa: E402
from rtml.generator import Generator  # noqa: E402
from rtml.monitor import DriftMonitor  # noqa: E402
from rtml.storage import connect  # noqa: E402
from rtml.storage import interactions as store  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
DAY_S = 86400.0


def run_backend(name: str, home: Path, *, days: float, checks: int, database_url: str = "") -> dict:
    overrides = {"metrics.enabled": False}
    if database_url:
        overrides["storage.database_url"] = database_url
    settings = load_settings(environ={}, home=home, config_file=PROJECT / "config.toml", overrides=overrides)
    conn = connect(settings)
    gen = Generator(settings, conn)
    t0 = time.perf_counter()
    base_rows = gen.backfill_baseline()
    backfill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = gen.replay(days)
    replay_s = time.perf_counter() - t0
    start = settings.sim_start_s
    reference = store.read_window(conn, start_s=start - 8 * DAY_S, end_s=start)
    monitor = DriftMonitor(settings, conn)
    monitor.set_reference(reference, start_s=start - settings.simulation.baseline_days * DAY_S, end_s=start,
                          version="v1.0")
    now = gen.sim_time
    window_rows = len(store.read_window(conn, start_s=now - settings.drift.window_minutes * 60, end_s=now,
                                        columns=("id",)))
    durations = []
    for i in range(checks):  # successive checks one simulated minute apart, ending at the replay's end
        t0 = time.perf_counter()
        monitor.check(now - (checks - 1 - i) * 60.0)
        durations.append(time.perf_counter() - t0)
    conn.close()
    return {"backend": name, "days": days, "baseline_rows": base_rows, "backfill_s": backfill_s, "rows": rows,
            "replay_s": replay_s, "replay_rows_per_s": rows / replay_s, "n_reference": len(reference),
            "n_current": window_rows, "check_ms_median": 1000 * statistics.median(durations),
            "check_ms_all": [1000 * d for d in durations]}


def _with_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=2.0, help="simulated days to replay (default 2)")
    parser.add_argument("--checks", type=int, default=5, help="drift checks timed per backend (median)")
    parser.add_argument("--postgres-url", default=os.environ.get("RTML_TEST_POSTGRES_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a server and a database to connect to for CREATE DATABASE")
    args = parser.parse_args(argv)
    import logging

    import psycopg

    logging.getLogger("rtml").addHandler(logging.NullHandler())  # alerts of the drifted window: not here
    logging.getLogger("rtml").propagate = False

    results = []
    with tempfile.TemporaryDirectory(prefix="rtml-bench-") as tmp:
        results.append(run_backend("sqlite", Path(tmp) / "sqlite", days=args.days, checks=args.checks))
        name = f"rtml_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
            try:
                results.append(run_backend("postgresql", Path(tmp) / "pg", days=args.days, checks=args.checks,
                                           database_url=_with_database(args.postgres_url, name)))
                server = admin.execute("SHOW server_version").fetchone()[0]
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    lite, pg = results
    print(f"Replay of {args.days:g} simulated days after the baseline; drift check = median of {args.checks} "
          f"(reference {lite['n_reference']:,} rows, window ~{lite['n_current']:,} rows).\n")
    print("| measure | SQLite | PostgreSQL | PostgreSQL / SQLite |")
    print("|---|---|---|---|")
    print(f"| replay rows/s | {lite['replay_rows_per_s']:,.0f} | {pg['replay_rows_per_s']:,.0f} "
          f"| {pg['replay_rows_per_s'] / lite['replay_rows_per_s']:.2f} |")
    print(f"| replay seconds ({lite['rows']:,} rows) | {lite['replay_s']:.1f} | {pg['replay_s']:.1f} "
          f"| {pg['replay_s'] / lite['replay_s']:.2f} |")
    print(f"| baseline backfill s | {lite['backfill_s']:.2f} | {pg['backfill_s']:.2f} "
          f"| {pg['backfill_s'] / lite['backfill_s']:.2f} |")
    print(f"| drift check ms | {lite['check_ms_median']:.0f} | {pg['check_ms_median']:.0f} "
          f"| {pg['check_ms_median'] / lite['check_ms_median']:.2f} |")
    out = PROJECT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    payload = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.platform(),
               "cpus": os.cpu_count(), "postgres_server": server, "days": args.days, "results": results}
    (out / "backends.json").write_text(json.dumps(payload, indent=2))
    print(f"\nJSON: {out / 'backends.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
