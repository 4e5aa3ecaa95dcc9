#!/usr/bin/env python3
"""rtml data generator: simulated customers whose behaviour drifts, written to the shared database.

    python data_generator.py [--speed N] [--seed N] [--db PATH] [--replay DAYS]
                             [--scenario none|gradual|sudden|recurring] [--backfill-only]

Exit codes: 0 success (also after SIGTERM), 1 failure, 2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rtml.config import SCENARIOS, ConfigError, db_override, load_settings
from rtml.generator import Generator, GeneratorBusyError
from rtml.logs import setup_logging
from rtml.service import stop_event_on_signals
from rtml.storage import StorageError, connect


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="data_generator.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", type=str, help="simulated seconds per real second (simulation.speed)")
    parser.add_argument("--seed", type=str, help="seed for a reproducible run (simulation.seed)")
    parser.add_argument("--db", type=str,
                        help="database file (storage.db_path) or URL (storage.database_url)")
    parser.add_argument("--scenario", choices=SCENARIOS, help="drift scenario (simulation.scenario)")
    parser.add_argument("--replay", type=float, metavar="DAYS",
                        help="generate DAYS simulated days at the live rate as fast as possible, then exit")
    parser.add_argument("--backfill-only", action="store_true",
                        help="write the baseline on an empty database, then exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar in --replay")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.replay is not None and not args.replay > 0:
        print(f"data_generator.py: --replay must be a number of days > 0, got {args.replay}", file=sys.stderr)
        return 2
    try:
        settings = load_settings(environ=os.environ, overrides={
            "simulation.speed": args.speed, "simulation.seed": args.seed, **db_override(args.db),
            "simulation.scenario": args.scenario})
    except ConfigError as exc:
        print(f"data_generator.py: configuration error: {exc}", file=sys.stderr)
        return 2
    log = setup_logging(settings, "generator")
    stop = stop_event_on_signals()
    try:
        conn = connect(settings, busy_timeout_ms=settings.storage.busy_timeout_ms)
        generator = Generator(settings, conn)
        generator.check_no_other_writer()
        generator.backfill_baseline()
        if args.backfill_only:
            return 0
        if args.replay is not None:
            return _replay(generator, args.replay, progress=not args.no_progress, log=log)
        generator.run_live(stop)
        return 0
    except GeneratorBusyError as exc:
        log.error("%s", exc)
        return 1
    except StorageError as exc:
        log.error("%s", exc)
        return 1


def _replay(generator: Generator, days: float, *, progress: bool, log: logging.Logger) -> int:
    import time

    from tqdm import tqdm

    started = time.perf_counter()
    with tqdm(total=int(round(days * 86400 / generator.sim.tick_s)), unit="tick", disable=not progress,
              desc=f"replay {days:g} days", file=sys.stderr, mininterval=0.5) as bar:
        rows = generator.replay(days, progress=lambda done, total: bar.update(done - bar.n))
    elapsed = time.perf_counter() - started
    log.info("Replayed %g simulated days: %d interactions in %.1f s (%.0f rows/s)", days, rows, elapsed,
             rows / max(elapsed, 1e-9))
    return 0


if __name__ == "__main__":
    sys.exit(main())
