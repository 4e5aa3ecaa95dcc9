#!/usr/bin/env python3
"""Resource use of a running rtml, with one headless browser tab on the dashboard.

    .venv/bin/python bench/bench_resources.py [--minutes 10] [--mode demo|start] [--speed 1]
                                              [--interval 5] [--no-browser] [--keep]

Starts ``./run_system.sh demo`` (or ``start`` at ``--speed``) in a throw-away RTML_HOME on a free
port, opens the dashboard in Chromium (/usr/bin/chromium via Playwright), samples every
component's CPU and RSS (with its child processes; psutil) every ``--interval`` seconds for
``--minutes``, stops everything and prints a markdown report to stdout:

* average CPU (% of one core) and peak RSS per component, and of all of them together
  (the browser is not counted);
* the peak total RSS of our processes;
* for ``demo``: when (real seconds after ``start`` returned ... after the command was run) the
  first drift check with dataset drift, the first critical alert and the promotion of v1.1
  happened — the demo's promise is all three within 10 minutes.

Targets (issue 6): total RSS < 400 MB; at speed 1, all components together < 2 % of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parent.parent
COMPONENTS = ("generator", "detector", "dashboard", "supervisor")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids(home: Path) -> dict[str, int]:
    """Component → pid, from the pid files."""
    out = {}
    for name in COMPONENTS:
        try:
            out[name] = int(json.loads((home / "run" / f"{name}.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            pass
    return out


class Sampler:
    """CPU seconds and RSS per component (process + descendants) between samples."""

    def __init__(self) -> None:
        self.last_cpu: dict[int, float] = {}
        self.cpu: dict[str, list[float]] = {c: [] for c in COMPONENTS}
        self.rss: dict[str, list[int]] = {c: [] for c in COMPONENTS}
        self.total_rss: list[int] = []
        self.total_pss: list[int] = []
        self.last_t: float | None = None

    def sample(self, home: Path) -> None:
        now = time.monotonic()
        total = total_pss = 0
        for name, pid in pids(home).items():
            try:
                root = psutil.Process(pid)
                group = [root] + (root.children(recursive=True) if name != "supervisor" else [])
            except psutil.Error:
                continue
            cpu_delta, rss = 0.0, 0
            for proc in group:
                try:
                    t = proc.cpu_times()
                    cpu_now = t.user + t.system
                    rss += proc.memory_info().rss
                    total_pss += proc.memory_full_info().pss
                except psutil.Error:
                    continue
                key = proc.pid
                if key in self.last_cpu and self.last_t is not None:
                    cpu_delta += max(cpu_now - self.last_cpu[key], 0.0)
                self.last_cpu[key] = cpu_now
            if self.last_t is not None:
                self.cpu[name].append(100.0 * cpu_delta / max(now - self.last_t, 1e-3))
            self.rss[name].append(rss)
            total += rss
        self.total_rss.append(total)
        self.total_pss.append(total_pss)
        self.last_t = now

    def report(self) -> str:
        rows = ["| component | average CPU (% of one core) | peak RSS (MiB) |", "|---|---:|---:|"]
        total_cpu = 0.0
        for name in COMPONENTS:
            cpu = statistics.fmean(self.cpu[name]) if self.cpu[name] else 0.0
            total_cpu += cpu
            peak = max(self.rss[name], default=0) / 2**20
            rows.append(f"| {name} | {cpu:.2f} | {peak:.0f} |")
        rows.append(f"| **all together** | **{total_cpu:.2f}** | **{max(self.total_rss, default=0) / 2**20:.0f}** "
                    "(peak of the sum) |")
        rows.append(f"| all together, PSS (shared library pages counted once) | | "
                    f"{max(self.total_pss, default=0) / 2**20:.0f} |")
        return "\n".join(rows)


def timeline(home: Path, t0: float) -> list[str]:
    """When the demo's milestones happened, in real seconds after the start command."""
    db = home / "data" / "monitoring.db"
    lines = []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        queries = {
            "first check with dataset drift": "SELECT MIN(real_time) FROM drift_checks WHERE dataset_drift = 1",
            "first critical drift alert": "SELECT MIN(real_time) FROM alerts WHERE severity = 'critical' "
                                          "AND source = 'drift'",
            "v1.1 promoted": "SELECT MIN(real_time) FROM model_events WHERE event = 'promoted' AND version = 'v1.1'",
        }
        for label, sql in queries.items():
            value = conn.execute(sql).fetchone()[0]
            lines.append(f"| {label} | {'not seen' if value is None else f'{value - t0:.0f} s'} |")
        versions = conn.execute("SELECT COUNT(*) FROM model_events WHERE event = 'promoted'").fetchone()[0]
        lines.append(f"| models promoted during the run | {versions} |")
        conn.close()
    except sqlite3.Error as exc:
        lines.append(f"| timeline | unavailable: {exc} |")
    return ["| milestone | real time after `run_system.sh` was run |", "|---|---:|"] + lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--mode", choices=("demo", "start"), default="demo")
    parser.add_argument("--speed", type=float, default=1.0, help="simulation speed for --mode start")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="rtml-bench-"))
    port = free_port()
    env = dict(os.environ, RTML_HOME=str(home), RTML_DASHBOARD_PORT=str(port))
    env.setdefault("RTML_VENV", str(PROJECT / ".venv"))
    if args.mode == "start":
        env["RTML_SIMULATION_SPEED"] = str(args.speed)
    t0 = time.time()
    started = subprocess.run([str(PROJECT / "run_system.sh"), args.mode], env=env, capture_output=True, text=True)
    if started.returncode != 0:
        print(started.stderr, file=sys.stderr)
        return 1
    ready_s = time.time() - t0
    url = started.stdout.strip().splitlines()[-1].replace("localhost", "127.0.0.1")
    print(f"rtml {args.mode} ready after {ready_s:.0f} s at {url}; sampling for {args.minutes:g} min",
          file=sys.stderr)
    browser = playwright = None
    sampler = Sampler()
    try:
        if not args.no_browser:
            from playwright.sync_api import sync_playwright

            playwright = sync_playwright().start()
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url, wait_until="domcontentloaded")
        deadline = time.monotonic() + args.minutes * 60
        sampler.sample(home)
        while time.monotonic() < deadline:
            time.sleep(args.interval)
            sampler.sample(home)
    finally:
        if browser is not None:
            browser.close()
        if playwright is not None:
            playwright.stop()
        stopped = subprocess.run([str(PROJECT / "run_system.sh"), "stop"], env=env, capture_output=True, text=True)
        if stopped.returncode != 0:
            print(stopped.stderr, file=sys.stderr)
    cores = psutil.cpu_count()
    speed = "demo preset (demo.toml)" if args.mode == "demo" else f"speed {args.speed:g}"
    print(f"### Resource use: {speed}, {args.minutes:g} min, samples every {args.interval:g} s, "
          f"{'one headless Chromium tab on the dashboard' if not args.no_browser else 'no browser'} "
          f"({cores} cores; browser not counted)\n")
    print(sampler.report())
    if args.mode == "demo":
        print()
        print("\n".join(timeline(home, t0)))
    print(f"\nStart to ready: {ready_s:.0f} s.")
    if not args.keep:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"(home kept: {home})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
