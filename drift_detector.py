#!/usr/bin/env python3
"""rtml detector/retrainer, and drift tools for anyone's data.

    python drift_detector.py                      the long-running detector/retrainer
    python drift_detector.py check --reference REF --current CUR [...]
    python drift_detector.py evaluate [...]       false alarms and detection delay on replayed scenarios
    python drift_detector.py rollback [VERSION]   make VERSION (default: the previous champion) champion
    python drift_detector.py init-model           train v1.0 on the baseline if no model exists

Exit codes: 0 success, 1 failure (or drift found with check --fail-on-drift), 2 bad input or
configuration.
"""

from __future__ import annotations

import argparse
import os
import sys

from rtml.config import ConfigError, load_settings

COMMANDS = ("run", "check", "evaluate", "rollback", "init-model")


def _settings(overrides: dict | None = None):
    return load_settings(environ=os.environ, overrides=overrides or {})


def cmd_run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="drift_detector.py", description="The long-running detector/retrainer.")
    parser.add_argument("--db", help="database file (storage.db_path) or URL (storage.database_url)")
    parser.add_argument("--policy", choices=("seed", "calibrated"), help="drift decision policy (drift.policy)")
    args = parser.parse_args(argv)
    from rtml.lean import hide_dataframe_libraries

    hide_dataframe_libraries()  # before scikit-learn is imported: it would load pandas (~78 MiB) for nothing
    from rtml.config import db_override

    settings = _settings({**db_override(args.db), "drift.policy": args.policy})
    from rtml.detector import run_detector
    from rtml.logs import setup_logging
    from rtml.service import stop_event_on_signals
    from rtml.storage import StorageError, connect

    log = setup_logging(settings, "detector")
    stop = stop_event_on_signals()
    try:
        conn = connect(settings, busy_timeout_ms=settings.storage.busy_timeout_ms)
        return run_detector(settings, conn, stop)
    except StorageError as exc:
        log.error("%s", exc)
        return 1


def cmd_check(argv: list[str]) -> int:
    from rtml.check_cli import main as check_main
    return check_main(argv)


def cmd_evaluate(argv: list[str]) -> int:
    from rtml.evaluation import main as evaluate_main
    return evaluate_main(argv, settings=_settings())


def cmd_rollback(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="drift_detector.py rollback",
                                     description="Make VERSION champion again (default: the previous champion).")
    parser.add_argument("version", nargs="?", help="e.g. v1.0")
    parser.add_argument("--reason", default="manual rollback", help="recorded with the rollback")
    parser.add_argument("--actor", default=None, help="who asks (default: the OS user)")
    args = parser.parse_args(argv)
    settings = _settings()
    from rtml.registry import RegistryError, rollback
    from rtml.storage import StorageError, connect

    actor = args.actor or os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"
    try:
        conn = connect(settings, busy_timeout_ms=settings.storage.busy_timeout_ms)
        version = rollback(settings, conn, version=args.version, actor=actor, reason=args.reason).version
    except (RegistryError, StorageError) as exc:
        print(f"drift_detector.py rollback: {exc}", file=sys.stderr)
        return 1
    print(f"{version} is champion again; the running detector switches to it within one check interval.",
          file=sys.stderr)
    return 0


def cmd_init_model(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="drift_detector.py init-model",
                            description="Train v1.0 on the baseline when no model exists.").parse_args(argv)
    from rtml.lean import hide_dataframe_libraries

    hide_dataframe_libraries()  # the detector's training path, exactly as the service runs it
    settings = _settings()
    from rtml.logs import setup_logging
    from rtml.registry import RegistryError, ensure_initial_model
    from rtml.storage import StorageError, connect

    log = setup_logging(settings, "detector")
    try:
        conn = connect(settings, busy_timeout_ms=settings.storage.busy_timeout_ms)
        ensure_initial_model(settings, conn)
    except (RegistryError, StorageError) as exc:
        log.error("%s", exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 0
    command = argv[0] if argv and not argv[0].startswith("-") else "run"
    if command not in COMMANDS:
        print(f"drift_detector.py: unknown command '{command}'; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    rest = argv[1:] if argv and argv[0] == command else argv
    handler = {"run": cmd_run, "check": cmd_check, "evaluate": cmd_evaluate, "rollback": cmd_rollback,
               "init-model": cmd_init_model}[command]
    try:
        return handler(rest)
    except ConfigError as exc:
        print(f"drift_detector.py: configuration error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: usage errors exit 2
        return int(exc.code or 0)


if __name__ == "__main__":
    sys.exit(main())
