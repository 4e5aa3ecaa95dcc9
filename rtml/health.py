"""Health of the running system: process stats (psutil), readiness probes and ``status``.

:func:`process_stats` is the one place that turns a pid into CPU / memory / uptime figures; the
dashboard and ``run_system.sh status`` both use it.  :func:`collect_status` assembles the
``status`` rows from the pid files (``run/``), the processes behind them and the heartbeat rows
(the supervisor's row carries restarts, state and why a component was given up).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from rtml import procs
from rtml.config import Settings
from rtml.storage import StorageError, connect_readonly, describe_target
from rtml.storage.heartbeats import Heartbeat, read_heartbeats
from rtml.storage.db import Connection, DatabaseError

log = logging.getLogger(__name__)

#: The components ``status`` reports on, in display order.
COMPONENT_NAMES = ("generator", "detector", "dashboard", "supervisor")
STATUS_KEYS = ("component", "state", "pid", "cpu_percent", "rss_bytes", "uptime_s", "restarts",
               "heartbeat_age_s", "reason")


def process_stats(pid: int, *, include_children: bool = False, cpu_interval_s: float | None = None,
                  now: float | None = None) -> dict[str, Any] | None:
    """CPU, memory and uptime of one process (optionally with all its descendants).

    Parameters
    ----------
    pid : int
    include_children : bool, default=False
        Add the descendants' RSS and CPU (e.g. a component's worker processes).
    cpu_interval_s : float, default=None
        Measure CPU over this many seconds (blocks); ``None`` gives the average since the process
        started, which needs no waiting.
    now : float, default=None
        Wall-clock time for ``uptime_s`` (``time.time()``).

    Returns
    -------
    dict or None
        ``pid``, ``cpu_percent`` (of one core), ``rss_bytes``, ``uptime_s``, ``create_time``;
        ``None`` if the process does not exist (or is a zombie).

    Examples
    --------
    >>> import os
    >>> stats = process_stats(os.getpid())
    >>> sorted(stats)
    ['cpu_percent', 'create_time', 'pid', 'rss_bytes', 'uptime_s']
    >>> process_stats(2 ** 22 + 1) is None
    True
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        group = [proc] + (proc.children(recursive=True) if include_children else [])
        create_time = proc.create_time()
        now = time.time() if now is None else now
        if cpu_interval_s is None:
            cpu_s = 0.0
            for p in group:
                try:
                    t = p.cpu_times()
                    cpu_s += t.user + t.system
                except psutil.Error:
                    pass
            cpu_percent = 100.0 * cpu_s / max(now - create_time, 1e-3)
        else:
            cpu_percent = sum(_cpu_percents(group, cpu_interval_s).values())
        rss = 0
        for p in group:
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                pass
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    return {"pid": pid, "cpu_percent": round(cpu_percent, 2), "rss_bytes": int(rss),
            "uptime_s": round(max(now - create_time, 0.0), 1), "create_time": create_time}


def _cpu_percents(processes: Sequence[psutil.Process], interval_s: float) -> dict[int, float]:
    """CPU % of each process over one shared ``interval_s`` (one sleep for all of them)."""
    before = {}
    for p in processes:
        try:
            t = p.cpu_times()
            before[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    started = time.monotonic()
    time.sleep(interval_s)
    elapsed = max(time.monotonic() - started, 1e-3)
    result = {}
    for p in processes:
        if p.pid not in before:
            continue
        try:
            t = p.cpu_times()
            result[p.pid] = 100.0 * (t.user + t.system - before[p.pid]) / elapsed
        except psutil.Error:
            pass
    return result


def dashboard_healthy(host: str, port: int, *, timeout_s: float = 2.0) -> bool:
    """``GET http://host:port/_stcore/health`` answers ``200`` with body ``ok``.

    One HTTP/1.0 request on a plain socket: ``urllib`` would import ``ssl`` and the ``email``
    package (~8 MiB resident) into the supervisor, which only ever probes a local plain-HTTP port.
    Never raises: an unreachable, slow or odd server, or an unusable host name, is ``False``.
    """
    response = b""
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        request = f"GET /_stcore/health HTTP/1.0\r\nHost: {authority}\r\n\r\n".encode("idna")
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(request)
            while len(response) < 65536 and not _complete(response):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                response += chunk
    except (OSError, UnicodeError):  # socket.timeout is an OSError: judge what arrived
        if not _complete(response):
            return False
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1] == b"200" and body.strip() == b"ok"


def _complete(response: bytes) -> bool:
    """Whether ``response`` holds its whole body by its ``Content-Length`` (else read to the close)."""
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False


def dashboard_url(settings: Settings) -> str:
    """The URL a person opens."""
    host = settings.dashboard.host
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1") else host
    return f"http://{shown}:{settings.dashboard.port}"


def read_heartbeats_safely(database) -> dict[str, Heartbeat]:
    """Every heartbeat row, or ``{}`` when the database does not exist (yet), is unreachable or busy.

    ``database`` is the Settings, a database URL or a SQLite path.
    """
    try:
        conn = connect_readonly(database, busy_timeout_ms=2000)
    except StorageError:
        return {}
    try:
        return read_heartbeats(conn)
    except DatabaseError as exc:
        log.debug("Cannot read heartbeats from %s: %s", describe_target(database), exc)
        return {}
    finally:
        conn.close()


def collect_status(settings: Settings, *, cpu_interval_s: float | None = 0.3,
                   now: float | None = None) -> dict[str, dict[str, Any]]:
    """One row per component (``generator``, ``detector``, ``dashboard``, ``supervisor``).

    Each row has :data:`STATUS_KEYS` plus ``last_exit_code`` and ``log``. ``state`` is one of
    ``running``, ``starting``, ``stale`` (alive, heartbeat too old), ``restarting``,
    ``failed`` (given up; ``reason`` says why), ``stopped``, ``dead`` (pid file left by a process
    that is gone), ``not installed`` (its script does not exist yet).
    """
    now = time.time() if now is None else now
    beats = read_heartbeats_safely(settings)
    sup_beat = beats.get("supervisor")
    sup_details = (sup_beat.details or {}).get("components", {}) if sup_beat else {}
    stale_s = settings.dashboard.heartbeat_stale_seconds
    rows: dict[str, dict[str, Any]] = {}
    live: dict[str, psutil.Process] = {}
    sup_alive = procs.classify(procs.pid_path(settings.run_dir, "supervisor"))[0] == "ours"
    for name in COMPONENT_NAMES:
        kind, record, proc = procs.classify(procs.pid_path(settings.run_dir, name))
        info = sup_details.get(name, {}) if name != "supervisor" else {}
        row: dict[str, Any] = dict.fromkeys(STATUS_KEYS)
        row.update(component=name, restarts=int(info.get("restarts", 0)), reason=info.get("reason"),
                   last_exit_code=info.get("last_exit_code"),
                   log=str(settings.logs_dir / f"{name}.log"))
        if kind == "ours" and proc is not None:
            live[name] = proc
            stats = process_stats(proc.pid, include_children=name != "supervisor", now=now)
            if stats:
                row.update(pid=stats["pid"], cpu_percent=stats["cpu_percent"], rss_bytes=stats["rss_bytes"],
                           uptime_s=stats["uptime_s"])
        else:
            row["pid"] = None
        if name == "dashboard":
            ok_at = info.get("health_ok_at")
            row["heartbeat_age_s"] = round(now - ok_at, 1) if ok_at else None
        elif name in beats and (kind == "ours" or name == "supervisor"):
            row["heartbeat_age_s"] = round(beats[name].age_s(now), 1)
        row["state"] = _state(name, kind, row, info, stale_s, sup_alive=sup_alive)
        if kind in ("dead", "foreign", "unreadable"):
            row["reason"] = row["reason"] or f"stale pid file ({kind})"
        rows[name] = row
    if cpu_interval_s:
        percents = _cpu_percents(list(live.values()), cpu_interval_s)
        for name, proc in live.items():
            if proc.pid in percents:
                rows[name]["cpu_percent"] = round(percents[proc.pid], 1)
    return rows


def _state(name: str, kind: str, row: dict, info: dict, stale_s: float, *, sup_alive: bool) -> str:
    if kind == "ours":
        age = row.get("heartbeat_age_s")
        if age is None:
            return "starting"
        return "stale" if age > stale_s else "running"
    supervised = info.get("state")
    if sup_alive and supervised in ("failed", "restarting", "not installed", "starting"):
        return supervised
    if kind in ("dead", "foreign", "unreadable"):
        return "dead"
    return "stopped"


def format_status_table(rows: dict[str, dict[str, Any]]) -> str:
    """The human ``status`` table."""
    header = ("COMPONENT", "STATE", "PID", "CPU %", "RSS", "UPTIME", "RESTARTS", "HEARTBEAT")
    lines = [header]
    for row in rows.values():
        lines.append((row["component"], row["state"], _dash(row["pid"]),
                      _dash(row["cpu_percent"], "{:.1f}"),
                      "-" if row["rss_bytes"] is None else f"{row['rss_bytes'] / 2**20:.0f} MiB",
                      "-" if row["uptime_s"] is None else format_duration(row["uptime_s"]),
                      str(row["restarts"]),
                      "-" if row["heartbeat_age_s"] is None else f"{row['heartbeat_age_s']:.0f} s ago"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    for row in rows.values():
        if row.get("reason"):
            out.append(f"{row['component']}: {row['reason']}")
    return "\n".join(out)


def _dash(value: Any, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def format_duration(seconds: float) -> str:
    """``3725`` → ``"1h02m"``; under an hour ``"12m05s"``; under a minute ``"42s"``.

    Examples
    --------
    >>> format_duration(42.4), format_duration(725), format_duration(3725)
    ('42s', '12m05s', '1h02m')
    """
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
