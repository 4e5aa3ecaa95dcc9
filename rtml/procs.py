"""Pid files, ownership checks and process-group signalling for the processes rtml starts.

A pid file (``run/<component>.pid``) is one line of JSON::

    {"component": "generator", "pid": 4242, "pgid": 4242, "create_time": 1767225600.53,
     "started_at": 1767225600.61, "home": "/path/to/home", "marker": "data_generator.py",
     "argv": ["/path/.venv/bin/python", "/path/data_generator.py"]}

A pid is only ever signalled after :func:`verify` has shown that the process behind it is the one
recorded: same ``create_time`` (so a recycled pid is never hit) and a command line containing the
recorded ``marker``.  Nothing here kills by name.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

#: ``create_time`` values are compared with this tolerance (psutil rounds to clock ticks).
CREATE_TIME_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class PidRecord:
    """What a pid file records about one process we started."""

    component: str
    pid: int
    pgid: int
    create_time: float
    started_at: float
    home: str
    marker: str
    argv: list[str] = field(default_factory=list)

    @classmethod
    def for_process(cls, component: str, pid: int, *, home: str | Path, marker: str,
                    argv: Iterable[str] = ()) -> PidRecord:
        """Describe a live process (reads its ``create_time`` and process group now)."""
        proc = psutil.Process(pid)
        return cls(component=component, pid=pid, pgid=os.getpgid(pid), create_time=proc.create_time(),
                   started_at=time.time(), home=str(home), marker=marker, argv=list(argv))


def pid_path(run_dir: Path, component: str) -> Path:
    """``run/<component>.pid``."""
    return Path(run_dir) / f"{component}.pid"


def write_pid_file(run_dir: Path, record: PidRecord) -> Path:
    """Write ``record`` atomically (temp file + ``os.replace``); returns the path."""
    path = pid_path(run_dir, record.component)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(record)) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in ``path``; ``None`` if the file is missing or unreadable (a damaged file is
    logged and treated like a stale one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return PidRecord(component=str(data["component"]), pid=int(data["pid"]), pgid=int(data["pgid"]),
                         create_time=float(data["create_time"]), started_at=float(data["started_at"]),
                         home=str(data["home"]), marker=str(data["marker"]),
                         argv=[str(a) for a in data.get("argv", [])])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("Ignoring unreadable pid file %s: %s", path, exc)
        return None


def remove_pid_file(path: Path, *, only_pid: int | None = None) -> None:
    """Delete ``path`` (optionally only while it still names ``only_pid``)."""
    if only_pid is not None:
        record = read_pid_file(path)
        if record is not None and record.pid != only_pid:
            return
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass


def verify(record: PidRecord) -> psutil.Process | None:
    """The live process ``record`` describes, or ``None``.

    ``None`` when the pid is dead, a zombie, or now belongs to another process (different
    ``create_time`` or a command line without the recorded marker).
    """
    try:
        proc = psutil.Process(record.pid)
        if abs(proc.create_time() - record.create_time) > CREATE_TIME_TOLERANCE_S:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if record.marker and not any(record.marker in part for part in proc.cmdline()):
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return None  # not our user's process: certainly not ours


def classify(path: Path) -> tuple[str, PidRecord | None, psutil.Process | None]:
    """Look at one pid file: ``("missing"|"unreadable"|"dead"|"foreign"|"ours", record, process)``.

    ``dead``: nobody has that pid; ``foreign``: the pid is alive but is another process (pid
    reused); ``ours``: verified.
    """
    if not Path(path).exists():
        return "missing", None, None
    record = read_pid_file(path)
    if record is None:
        return "unreadable", None, None
    proc = verify(record)
    if proc is not None:
        return "ours", record, proc
    return ("foreign" if psutil.pid_exists(record.pid) else "dead"), record, None


def group_members(record: PidRecord) -> list[psutil.Process]:
    """Live processes in ``record``'s process group that are ours.

    The leader counts if :func:`verify` accepts it; other members must have been started after
    the leader (they are its descendants: workers, helpers).  When the leader's pid is alive but
    not ours, nothing is returned; when it is dead, its orphans (same pgid, younger) are.
    """
    members: list[psutil.Process] = []
    leader = verify(record)
    if leader is None and psutil.pid_exists(record.pid):
        # The pid belongs to another process now. The kernel never hands out a pid that is still
        # some group's id, so our group is gone: there is nothing of ours to find.
        return members
    for proc in psutil.process_iter(["pid", "create_time", "status"]):
        try:
            if proc.pid == record.pid:
                if leader is not None:
                    members.append(proc)
                continue
            if os.getpgid(proc.pid) != record.pgid or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.info["create_time"] + CREATE_TIME_TOLERANCE_S < record.create_time:
                continue
            members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return members


def signal_group(record: PidRecord, sig: int) -> int:
    """Send ``sig`` to every live member of ``record``'s group; returns how many were signalled."""
    members = group_members(record)
    if not members:
        return 0
    leader_alive = any(p.pid == record.pid for p in members)
    if leader_alive and record.pgid == record.pid:
        try:
            os.killpg(record.pgid, sig)
            return len(members)
        except ProcessLookupError:
            return 0
    sent = 0
    for proc in members:
        try:
            proc.send_signal(sig)
            sent += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return sent


def terminate_group(record: PidRecord, *, timeout_s: float, poll_s: float = 0.1) -> str:
    """SIGTERM the group, wait up to ``timeout_s`` for all of it to exit, then SIGKILL it.

    Returns ``"gone"`` (nothing was running), ``"terminated"`` or ``"killed"``.
    """
    if signal_group(record, signal.SIGTERM) == 0:
        return "gone"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not group_members(record):
            return "terminated"
        time.sleep(poll_s)
    log.warning("%s (pid %d) did not stop within %.0f s after SIGTERM; sending SIGKILL to its group",
                record.component, record.pid, timeout_s)
    signal_group(record, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while group_members(record) and time.monotonic() < deadline:
        time.sleep(poll_s)
    return "killed"


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on (or holds) ``host:port`` — tries to bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_owner(port: int) -> str | None:
    """``"pid N (name)"`` of a local process listening on ``port``, if it can be found."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    except (psutil.AccessDenied, OSError):
        return None
    return None
