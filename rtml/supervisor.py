"""The supervisor: spawns the generator, detector and dashboard, restarts them, stops them.

    python -m rtml.supervisor run                 # the supervisor itself (run_system.sh detaches it)
    python -m rtml.supervisor validate            # check the configuration; print key=value lines
    python -m rtml.supervisor preflight           # folders, database quick_check, port; what to init
    python -m rtml.supervisor state               # running | orphans | stopped
    python -m rtml.supervisor wait-ready [--timeout S]
    python -m rtml.supervisor stop
    python -m rtml.supervisor status [--json]
    python -m rtml.supervisor restart COMPONENT
    python -m rtml.supervisor logs [COMPONENT] [-f] [-n N]
    python -m rtml.supervisor reset

``run_system.sh`` is the user interface; these subcommands are its Python half (anything that
must look at processes with psutil).  Exit codes: 0 success, 1 failure, 2 usage or configuration.

Design: the supervisor is the parent of the three components.  Each runs in its own session
(its own process group, ``start_new_session=True``) with a pid file ``run/<component>.pid`` (see
:mod:`rtml.procs`); its console output goes to ``logs/<component>.out`` (its log to
``logs/<component>.log``).  A component that exits is restarted after an exponential backoff
(``supervisor.backoff_initial_seconds`` doubling up to ``backoff_max_seconds``); once it has
been restarted ``max_restarts`` times within ``restart_window_minutes`` and exits again it stays
down, a critical alert is stored and the supervisor's heartbeat row says why.  A component that
is alive but silent for ``hang_timeout_seconds`` (no heartbeat row of its own; the dashboard: no
healthy answer) is hung: SIGTERM, SIGKILL after ``stop_timeout_s``, then restarted the same way.  The heartbeat
row (component ``supervisor``) carries, per component: ``state``, ``pid``, ``restarts``,
``last_exit_code``, ``reason``, ``health_ok_at`` (dashboard).  On SIGTERM the supervisor stops
every component (SIGTERM to the group, SIGKILL after ``stop_timeout_s``) and exits 0.  A
supervisor started while components from an earlier one still run adopts them.

The command of a component can be replaced for tests and debugging with the environment
variable ``RTML_CMD_<COMPONENT>`` (a shell-quoted command line run from the project folder).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psutil

from rtml import health, procs
from rtml.config import PROJECT_DIR, ConfigError, Settings, load_settings
from rtml.logs import setup_logging
from rtml.storage import StorageError, connect, connect_readonly, drop_schema, quick_check
from rtml.storage.interactions import baseline_done
from rtml.storage.heartbeats import read_heartbeats, sim_now, write_heartbeat
from rtml.storage.monitoring import insert_alert
from rtml.storage.db import Connection, DatabaseError

log = logging.getLogger("rtml.supervisor")  # also when run as __main__

SUPERVISOR = "supervisor"
SUPERVISOR_MARKER = "rtml.supervisor"
POLL_S = 0.5
DASHBOARD_PROBE_S = 2.0  # at least; once per heartbeat interval (the probe's time is the dashboard's heartbeat)
STABLE_AFTER_S = 60.0  # a component up this long has its backoff reset


# -- the components (data-driven: add one here) ----------------------------------------------------
@dataclass(frozen=True)
class ComponentSpec:
    """One supervised component.

    ``script`` must exist in the project folder for the component to be started (until then it
    is reported as ``not installed``); ``ready`` is how readiness is seen: ``heartbeat`` (a fresh
    row of its own in ``heartbeats``) or ``http`` (the dashboard's health endpoint).
    """

    name: str
    script: str
    ready: str
    build_argv: Callable[[str, Path, Settings], list[str]]

    def argv(self, python: str, project: Path, settings: Settings) -> list[str]:
        return self.build_argv(python, project, settings)


def _script_argv(script: str) -> Callable[[str, Path, Settings], list[str]]:
    return lambda python, project, settings: [python, str(project / script)]


def _dashboard_argv(python: str, project: Path, settings: Settings) -> list[str]:
    return [python, "-m", "streamlit", "run", str(project / "dashboard.py"),
            "--server.headless", "true", "--server.address", settings.dashboard.host,
            "--server.port", str(settings.dashboard.port), "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]


COMPONENTS: tuple[ComponentSpec, ...] = (
    ComponentSpec("generator", "data_generator.py", "heartbeat", _script_argv("data_generator.py")),
    ComponentSpec("detector", "drift_detector.py", "heartbeat", _script_argv("drift_detector.py")),
    ComponentSpec("dashboard", "dashboard.py", "http", _dashboard_argv),
)
COMPONENTS_BY_NAME = {spec.name: spec for spec in COMPONENTS}


def command_override(environ: Mapping[str, str], name: str) -> list[str] | None:
    """``RTML_CMD_<NAME>`` split like a shell would, or ``None``."""
    text = environ.get(f"RTML_CMD_{name.upper()}")
    return shlex.split(text) if text else None


# -- the supervisor ------------------------------------------------------------------------------
@dataclass
class Managed:
    """Mutable state of one component under supervision."""

    spec: ComponentSpec
    state: str = "stopped"
    popen: subprocess.Popen | None = None
    proc: psutil.Process | None = None
    record: procs.PidRecord | None = None
    restarts: int = 0
    recent_restarts: collections.deque = field(default_factory=collections.deque)
    failures_in_a_row: int = 0
    next_start_at: float | None = None
    last_exit_code: int | None = None
    reason: str | None = None
    started_at: float | None = None
    ready_at: float | None = None
    health_ok_at: float | None = None
    heartbeat_at: float | None = None  # real time of its own latest heartbeat row
    last_probe: float = 0.0

    def details(self) -> dict[str, Any]:
        return {"state": self.state, "pid": self.record.pid if self.record else None,
                "restarts": self.restarts, "last_exit_code": self.last_exit_code, "reason": self.reason,
                "started_at": self.started_at, "ready_at": self.ready_at, "health_ok_at": self.health_ok_at}


class Supervisor:
    """Spawns, watches and restarts the components of one instance (one ``RTML_HOME``)."""

    def __init__(self, settings: Settings, *, environ: Mapping[str, str], python: str = sys.executable,
                 project: Path = PROJECT_DIR, components: Sequence[ComponentSpec] = COMPONENTS):
        self.settings = settings
        self.sup = settings.supervisor
        self.environ = dict(environ)
        self.python = python
        self.project = project
        self.stop_event = threading.Event()
        self.managed = {spec.name: Managed(spec) for spec in components}
        self.pid = os.getpid()
        self.started_at = time.time()
        self.conn: Connection | None = None
        self.beats: dict = {}  # see _heartbeats
        self.beats_read_at = 0.0
        self.db_error_logged = False
        self.last_beat = 0.0

    # ---- life cycle
    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; returns the exit code."""
        for folder in (self.settings.logs_dir, self.settings.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._open_db()
        self._adopt_or_clean()
        log.info("Supervisor %d watching %s in %s", self.pid, ", ".join(self.managed), self.settings.home)
        for m in self.managed.values():
            if m.state == "stopped":
                self._start(m)
        states: tuple = ()
        while not self.stop_event.is_set():
            for m in self.managed.values():
                self._tick(m)
            before, states = states, tuple(m.state for m in self.managed.values())
            self._heartbeat(force=states != before)  # a state change is published at once (wait-ready, status)
            self.stop_event.wait(POLL_S)
        log.info("Supervisor stopping every component")
        self.stop_all()
        self._heartbeat(state="stopped", force=True)
        log.info("Supervisor stopped")
        return 0

    def request_stop(self, *_: Any) -> None:
        self.stop_event.set()

    def _open_db(self) -> None:
        try:
            self.conn = connect(self.settings, busy_timeout_ms=1000)
        except (StorageError, *DatabaseError) as exc:
            if not self.db_error_logged:
                log.error("Cannot open the database (%s); supervising without heartbeats until it opens", exc)
                self.db_error_logged = True
            self.conn = None

    def _adopt_or_clean(self) -> None:
        """Adopt components an earlier supervisor left running; clean stale pid files."""
        for m in self.managed.values():
            path = procs.pid_path(self.settings.run_dir, m.spec.name)
            kind, record, proc = procs.classify(path)
            if kind == "ours" and record is not None:
                m.record, m.proc, m.state = record, proc, "starting"
                m.started_at = record.started_at
                log.info("Adopted running %s (pid %d)", m.spec.name, record.pid)
            elif kind in ("dead", "foreign", "unreadable"):
                log.warning("Removing stale pid file %s (%s)", path, kind)
                procs.remove_pid_file(path)

    # ---- one component
    def _installed(self, m: Managed) -> bool:
        return command_override(self.environ, m.spec.name) is not None or (self.project / m.spec.script).exists()

    def _start(self, m: Managed) -> None:
        if not self._installed(m):
            if m.state != "not installed":
                log.info("%s is not installed yet (%s missing); not starting it", m.spec.name, m.spec.script)
            m.state = "not installed"
            return
        override = command_override(self.environ, m.spec.name)
        argv = override or m.spec.argv(self.python, self.project, self.settings)
        # What verify() looks for in the command line: the script, else the last argument.
        marker = m.spec.script if any(m.spec.script in part for part in argv) else argv[-1]
        env = dict(self.environ, RTML_HOME=str(self.settings.home), PYTHONUNBUFFERED="1")
        out_path = self.settings.logs_dir / f"{m.spec.name}.out"
        _rotate(out_path, self.settings.logging.max_bytes)
        with open(out_path, "ab") as out:
            try:
                m.popen = subprocess.Popen(argv, cwd=self.project, env=env, stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                self._exited(m, code=None, why=f"could not be started: {exc}")
                return
        try:
            m.record = procs.PidRecord.for_process(m.spec.name, m.popen.pid, home=self.settings.home,
                                                   marker=marker, argv=argv)
            m.proc = psutil.Process(m.popen.pid)
            procs.write_pid_file(self.settings.run_dir, m.record)
        except (psutil.NoSuchProcess, ProcessLookupError):
            m.record = None  # exited at once; _tick sees the exit code
        # A new process has passed no health check yet: forget the previous one's.
        m.state, m.started_at, m.ready_at, m.next_start_at = "starting", time.time(), None, None
        m.health_ok_at = m.heartbeat_at = None
        log.info("Started %s (pid %d): %s", m.spec.name, m.popen.pid, shlex.join(argv))

    def _tick(self, m: Managed) -> None:
        now = time.time()
        request = self.settings.run_dir / f"{m.spec.name}.restart"
        if request.exists():
            request.unlink(missing_ok=True)
            log.info("Restart of %s requested", m.spec.name)
            self._stop_one(m)
            m.failures_in_a_row, m.reason, m.recent_restarts = 0, None, collections.deque()
            m.state = "stopped"
            self._start(m)
            return
        if m.state == "not installed":
            if self._installed(m):
                self._start(m)
            return
        if m.state == "restarting" and m.next_start_at is not None and time.monotonic() >= m.next_start_at:
            m.restarts += 1
            m.recent_restarts.append(now)
            self._start(m)
            return
        if m.state not in ("starting", "running"):
            return
        code = self._exit_code(m)
        if code is not False:
            self._exited(m, code=code)
            return
        if m.spec.ready == "http":
            if now - m.last_probe >= max(DASHBOARD_PROBE_S, self.sup.heartbeat_interval_seconds) \
                    or m.state == "starting":
                m.last_probe = now
                if health.dashboard_healthy(self.settings.dashboard.host, self.settings.dashboard.port,
                                            timeout_s=1.0):
                    m.health_ok_at = now
                    self._ready(m)
        elif m.record is not None:
            max_age_s = POLL_S if m.state == "starting" else self.sup.heartbeat_interval_seconds
            beat = self._heartbeats(now, max_age_s=max_age_s).get(m.spec.name)
            if beat is not None and beat.pid == m.record.pid and beat.state != "stopped":
                m.heartbeat_at = beat.real_time
                self._ready(m)
        silent_s = self._silent_for(m, now)
        if silent_s is not None:
            self._exited(m, code=None, why=f"gave no sign of life for {silent_s:.0f} s (hung); killed")
            return
        if m.state == "running" and m.started_at and now - m.started_at > STABLE_AFTER_S:
            m.failures_in_a_row = 0

    def _heartbeats(self, now: float, *, max_age_s: float) -> dict:
        """The components' heartbeat rows, read at most once per ``max_age_s`` for all of them.

        An unreadable database gives the last rows read: no news is not bad news.
        """
        if self.conn is not None and now - self.beats_read_at >= max_age_s:
            try:
                self.beats = read_heartbeats(self.conn)
                self.beats_read_at = now
            except DatabaseError:
                pass
        return self.beats

    def _silent_for(self, m: Managed, now: float) -> float | None:
        """Seconds a running component has been silent, when that is over ``hang_timeout_seconds``; else None.

        Silent: no heartbeat row of its own up to the last successful read of the heartbeats (the
        dashboard: no healthy answer to the probe up to now), with the timeout at least three heartbeat
        intervals. A SIGSTOPped or deadlocked process is alive, so only this notices it; a database
        the supervisor cannot read is no evidence against anyone.
        """
        timeout_s = self.sup.hang_timeout_seconds
        if timeout_s <= 0 or m.state != "running":
            return None
        timeout_s = max(timeout_s, 3 * self.sup.heartbeat_interval_seconds)
        if m.spec.ready == "http":
            last, seen_until = m.health_ok_at, now
        else:
            last, seen_until = m.heartbeat_at, self.beats_read_at
        silent_s = seen_until - (last or m.ready_at or seen_until)
        return silent_s if silent_s > timeout_s else None

    def _ready(self, m: Managed) -> None:
        if m.state == "starting":
            m.state, m.ready_at = "running", time.time()
            log.info("%s is ready (pid %s)", m.spec.name, m.record.pid if m.record else "?")

    def _exit_code(self, m: Managed) -> int | None | bool:
        """``False`` while running; else the exit code (``None`` if unknown: an adopted process)."""
        if m.popen is not None:
            code = m.popen.poll()
            return False if code is None else code
        if m.proc is not None and m.record is not None and procs.verify(m.record) is not None:
            return False
        return None

    def _exited(self, m: Managed, *, code: int | None, why: str | None = None) -> None:
        pid = m.record.pid if m.record else (m.popen.pid if m.popen else None)
        if m.record is not None:
            procs.terminate_group(m.record, timeout_s=self.sup.stop_timeout_s)  # leftover workers (or a hung one)
            procs.remove_pid_file(procs.pid_path(self.settings.run_dir, m.spec.name), only_pid=m.record.pid)
        if code is None and m.popen is not None:  # killed here (hung): how it ended
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = m.popen.wait(timeout=1.0)
        m.popen = m.proc = m.record = None
        m.last_exit_code = code
        why = why or describe_exit(code)
        now = time.time()
        window_s = self.sup.restart_window_minutes * 60
        while m.recent_restarts and now - m.recent_restarts[0] > window_s:
            m.recent_restarts.popleft()
        if len(m.recent_restarts) >= self.sup.max_restarts:
            m.state = "failed"
            m.reason = (f"{why}; restarted {len(m.recent_restarts)} times within "
                        f"{self.sup.restart_window_minutes:g} min, so it stays down. See logs/{m.spec.name}.log "
                        f"and logs/{m.spec.name}.out, fix the cause, then ./run_system.sh restart {m.spec.name}")
            log.error("%s (pid %s) %s", m.spec.name, pid, m.reason)
            self._alert(m, code)
            return
        delay = min(self.sup.backoff_initial_seconds * 2 ** m.failures_in_a_row, self.sup.backoff_max_seconds)
        m.failures_in_a_row += 1
        m.state, m.reason = "restarting", f"{why}; restarting in {delay:g} s"
        m.next_start_at = time.monotonic() + delay
        log.warning("%s (pid %s) %s; restarting in %.1f s", m.spec.name, pid, why, delay)

    def _alert(self, m: Managed, code: int | None) -> None:
        if self.conn is None:
            return
        try:
            now_sim, _ = sim_now(self.conn)
            insert_alert(self.conn, created_at=now_sim if now_sim is not None else time.time(),
                         severity="critical", source="supervisor",
                         message=f"{m.spec.name} keeps failing and was given up: {describe_exit(code)}",
                         details={"component": m.spec.name, "restarts": m.restarts, "last_exit_code": code,
                                  "reason": m.reason})
        except DatabaseError as exc:
            log.error("Could not store the alert for %s: %s", m.spec.name, exc)

    def _stop_one(self, m: Managed) -> None:
        if m.record is not None:
            procs.terminate_group(m.record, timeout_s=self.sup.stop_timeout_s)
            procs.remove_pid_file(procs.pid_path(self.settings.run_dir, m.spec.name), only_pid=m.record.pid)
        if m.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                m.popen.wait(timeout=1.0)
        m.popen = m.proc = m.record = None
        m.state = "stopped"

    def stop_all(self) -> None:
        """SIGTERM every component's group at once, wait up to ``stop_timeout_s``, SIGKILL the rest."""
        running = [m for m in self.managed.values() if m.record is not None]
        for m in running:
            procs.signal_group(m.record, signal.SIGTERM)
        deadline = time.monotonic() + self.sup.stop_timeout_s
        while running and time.monotonic() < deadline:
            for m in running:
                if m.popen is not None:
                    m.popen.poll()
            running = [m for m in running if procs.group_members(m.record)]
            if running:
                time.sleep(0.1)
        for m in running:
            log.warning("%s did not stop within %.0f s; killing its process group", m.spec.name,
                        self.sup.stop_timeout_s)
            procs.signal_group(m.record, signal.SIGKILL)
        for m in self.managed.values():
            if m.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    m.popen.wait(timeout=5.0)
            if m.record is not None:
                procs.remove_pid_file(procs.pid_path(self.settings.run_dir, m.spec.name), only_pid=m.record.pid)
            m.popen = m.proc = m.record = None
            if m.state != "not installed":
                m.state = "stopped"

    def _heartbeat(self, *, state: str = "running", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_beat < self.sup.heartbeat_interval_seconds:
            return
        self.last_beat = now
        if self.conn is None:
            self._open_db()  # the database may have become available (or writable) meanwhile
            if self.conn is None:
                return
        try:
            now_sim, speed = sim_now(self.conn)
            write_heartbeat(self.conn, component=SUPERVISOR, pid=self.pid, state=state, sim_time=now_sim,
                            speed=speed, started_at=self.started_at,
                            details={"url": health.dashboard_url(self.settings),
                                     "components": {n: m.details() for n, m in self.managed.items()}})
        except DatabaseError as exc:
            log.warning("Could not write the supervisor heartbeat: %s", exc)


def describe_exit(code: int | None) -> str:
    """``"exited with code 3"``, ``"was killed by SIGKILL"``, ``"exited"`` (unknown code).

    Examples
    --------
    >>> describe_exit(3), describe_exit(-9), describe_exit(None)
    ('exited with code 3', 'was killed by SIGKILL', 'exited')
    """
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _rotate(path: Path, max_bytes: int) -> None:
    """Keep one previous console file when ``path`` grew past ``max_bytes``."""
    with contextlib.suppress(OSError):
        if path.stat().st_size > max_bytes:
            os.replace(path, path.with_name(path.name + ".1"))


# -- the control side (called by run_system.sh) ---------------------------------------------------
def _err(message: str) -> None:
    print(f"run_system.sh: {message}", file=sys.stderr)


def supervisor_record(settings: Settings) -> tuple[str, procs.PidRecord | None, psutil.Process | None]:
    return procs.classify(procs.pid_path(settings.run_dir, SUPERVISOR))


def system_state(settings: Settings) -> str:
    """``running`` (a verified supervisor), ``orphans`` (no supervisor, components alive) or ``stopped``."""
    kind, _, _ = supervisor_record(settings)
    if kind == "ours":
        return "running"
    for spec in COMPONENTS:
        if procs.classify(procs.pid_path(settings.run_dir, spec.name))[0] == "ours":
            return "orphans"
    return "stopped"


def cmd_run(settings: Settings, environ: Mapping[str, str]) -> int:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(settings, SUPERVISOR, to_stderr=False)
    lock_file = open(settings.run_dir / "supervisor.lock", "w")  # held for our whole life
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log.error("Another supervisor is running for %s; exiting", settings.home)
        return 1
    supervisor = Supervisor(settings, environ=environ)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    record = procs.PidRecord.for_process(SUPERVISOR, os.getpid(), home=settings.home, marker=SUPERVISOR_MARKER,
                                         argv=psutil.Process().cmdline())
    procs.write_pid_file(settings.run_dir, record)
    try:
        return supervisor.run()
    finally:
        procs.remove_pid_file(procs.pid_path(settings.run_dir, SUPERVISOR), only_pid=os.getpid())
        lock_file.close()


def cmd_validate(settings: Settings) -> int:
    values = {"home": settings.home, "data_dir": settings.data_dir, "models_dir": settings.models_dir,
              "logs_dir": settings.logs_dir, "run_dir": settings.run_dir, "db_path": settings.db_path,
              "database": settings.database_label,
              "host": settings.dashboard.host, "port": settings.dashboard.port,
              "url": health.dashboard_url(settings), "config_file": settings.config_file or "",
              "stop_timeout_s": settings.supervisor.stop_timeout_s}
    for key, value in values.items():
        print(f"{key}={value}")
    return 0



def _probe_database(open_connection: Callable[[], Any]) -> tuple[str, bool]:
    """Open the database, run its quick check and ask whether the baseline is done.

    Returns ``(check result or the error, baseline done)``; the result is ``"ok"`` when usable.
    """
    try:
        conn = open_connection()
        try:
            return quick_check(conn), baseline_done(conn)
        finally:
            conn.close()
    except (*DatabaseError, StorageError) as exc:
        return str(exc), False


def cmd_preflight(settings: Settings) -> int:
    """Folders exist and are writable, the database passes quick_check, the port is free.

    Prints ``needs_baseline=0|1`` and ``needs_model=0|1``.
    """
    for folder in (settings.data_dir, settings.models_dir, settings.logs_dir, settings.run_dir,
                   settings.db_path.parent):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _err(f"cannot create {folder}: {exc.strerror}. Choose another RTML_HOME or fix the permissions.")
            return 1
        if not os.access(folder, os.W_OK | os.X_OK):
            _err(f"{folder} is not writable. Fix its permissions or choose another RTML_HOME.")
            return 1
    needs_baseline = True
    if settings.uses_postgres:  # the server must answer now; the generator migrates an empty database
        result, done = _probe_database(lambda: connect(settings, busy_timeout_ms=settings.storage.busy_timeout_ms))
        if result != "ok":
            _err(f"the database {settings.database_label} is not usable: {result}. Check that PostgreSQL runs "
                 "and storage.database_url is right.")
            return 1
        needs_baseline = not done
    elif settings.db_path.exists() and settings.db_path.stat().st_size > 0:
        result, done = _probe_database(lambda: connect_readonly(settings))
        if result != "ok":
            _err(f"the database {settings.db_path} failed PRAGMA quick_check: {result}. Move it aside "
                 "(or ./run_system.sh reset to start over) and start again.")
            return 1
        needs_baseline = not done
    dashboard_ours = procs.classify(procs.pid_path(settings.run_dir, "dashboard"))[0] == "ours"
    if not dashboard_ours and procs.port_in_use(settings.dashboard.host, settings.dashboard.port):
        owner = procs.port_owner(settings.dashboard.port)
        _err(f"port {settings.dashboard.port} on {settings.dashboard.host} is already in use"
             + (f" by {owner}" if owner else "")
             + ". Choose another with --port N (or RTML_DASHBOARD_PORT=N, or dashboard.port in the config).")
        return 1
    needs_model = not any(settings.models_dir.glob("*.joblib"))
    print(f"needs_baseline={int(needs_baseline)}")
    print(f"needs_model={int(needs_model)}")
    return 0


def cmd_state(settings: Settings) -> int:
    print(system_state(settings))
    return 0


def running_url(settings: Settings) -> str:
    """The dashboard URL of the running instance (its port may differ from today's config)."""
    beat = health.read_heartbeats_safely(settings).get(SUPERVISOR)
    if beat is not None and beat.state == "running" and beat.details.get("url"):
        return str(beat.details["url"])
    return health.dashboard_url(settings)


def cmd_url(settings: Settings) -> int:
    print(running_url(settings))
    return 0


def _recorded_port(record: procs.PidRecord | None) -> int | None:
    """The ``--server.port`` the dashboard was started with."""
    if record is None or "--server.port" not in record.argv[:-1]:
        return None
    try:
        return int(record.argv[record.argv.index("--server.port") + 1])
    except ValueError:
        return None


def cmd_wait_ready(settings: Settings, *, timeout_s: float) -> int:
    """Wait until every installed component is ready; 0 ready, 1 failed or timed out."""
    deadline = time.monotonic() + timeout_s
    reported: set[str] = set()
    rows: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        kind, sup_record, _ = supervisor_record(settings)
        if kind != "ours" and time.monotonic() > deadline - timeout_s + 5:
            _err(f"the supervisor is not running; see {settings.logs_dir / 'supervisor.log'} and "
                 f"{settings.logs_dir / 'supervisor.out'}")
            return 1
        rows = health.collect_status(settings, cpu_interval_s=None)
        sup_info = health.read_heartbeats_safely(settings).get(SUPERVISOR)
        current = (kind == "ours" and sup_info is not None and sup_record is not None
                   and sup_info.pid == sup_record.pid)
        states = (sup_info.details or {}).get("components", {}) if current else {}  # not an earlier run's
        pending = []
        for spec in COMPONENTS:
            sup_state = states.get(spec.name, {}).get("state")
            if sup_state == "failed":
                _err(f"{spec.name} failed to start: {states[spec.name].get('reason')}")
                _tail(settings.logs_dir / f"{spec.name}.out", 15)
                return 1
            if sup_state == "not installed":
                if spec.name not in reported:
                    reported.add(spec.name)
                    _err(f"{spec.name}: not installed yet ({spec.script} is missing); skipped")
                continue
            if sup_state == "running" and rows[spec.name]["state"] in ("running", "starting"):
                if spec.name not in reported:
                    reported.add(spec.name)
                    _err(f"{spec.name} is ready (pid {rows[spec.name]['pid']})")
                continue
            pending.append(spec.name)
        if states and not pending:
            return 0
        time.sleep(0.5)
    _err(f"timed out after {timeout_s:.0f} s waiting for: {', '.join(pending) if rows else 'the supervisor'}. "
         "See ./run_system.sh status and ./run_system.sh logs")
    return 1


def _tail(path: Path, n: int) -> None:
    with contextlib.suppress(OSError):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
        if lines:
            print(f"--- last lines of {path} ---", file=sys.stderr)
            print("\n".join(lines), file=sys.stderr)


def cmd_stop(settings: Settings) -> int:
    """Stop the supervisor (which stops the components), then anything left; clean pid files."""
    timeout = settings.supervisor.stop_timeout_s
    stopped_any = False
    port = _recorded_port(procs.read_pid_file(procs.pid_path(settings.run_dir, "dashboard")))
    port = port or settings.dashboard.port
    kind, record, proc = supervisor_record(settings)
    if kind == "ours" and record is not None and proc is not None:
        stopped_any = True
        _err(f"stopping the supervisor (pid {record.pid}) and its components ...")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout + 10)
        except psutil.TimeoutExpired:
            _err(f"the supervisor did not exit within {timeout + 10:.0f} s; killing it")
            proc.kill()
            with contextlib.suppress(psutil.TimeoutExpired):
                proc.wait(timeout=5)
    elif kind in ("dead", "foreign", "unreadable"):
        _err(f"removing a stale supervisor pid file ({kind}: pid {record.pid if record else '?'} is not ours)")
    procs.remove_pid_file(procs.pid_path(settings.run_dir, SUPERVISOR))
    for spec in COMPONENTS:
        path = procs.pid_path(settings.run_dir, spec.name)
        kind, record, _ = procs.classify(path)
        if kind == "ours" and record is not None:
            stopped_any = True
            _err(f"stopping {spec.name} (pid {record.pid}) ...")
            procs.terminate_group(record, timeout_s=timeout)
        elif kind in ("dead", "foreign", "unreadable"):
            _err(f"removing a stale pid file for {spec.name} "
                 f"({kind}: pid {record.pid if record else '?'} is not ours; nothing was signalled)")
        procs.remove_pid_file(path)
    for leftover in settings.run_dir.glob("*.restart"):
        leftover.unlink(missing_ok=True)
    if not stopped_any:
        _err("rtml is not running (already stopped)")
        return 0
    deadline = time.monotonic() + 5
    while procs.port_in_use(settings.dashboard.host, port) and time.monotonic() < deadline:
        time.sleep(0.1)
    if procs.port_in_use(settings.dashboard.host, port):
        owner = procs.port_owner(port)
        _err(f"warning: port {port} is still in use" + (f" by {owner}" if owner else ""))
    _err("stopped")
    return 0


def cmd_status(settings: Settings, *, as_json: bool) -> int:
    rows = health.collect_status(settings)
    if as_json:
        with contextlib.suppress(BrokenPipeError):
            json.dump(rows, sys.stdout, indent=2)
            sys.stdout.write("\n")
            sys.stdout.flush()
        return 0
    else:
        print(health.format_status_table(rows))
        sup = rows[SUPERVISOR]
        if sup["state"] != "running" and any(rows[s.name]["pid"] for s in COMPONENTS):
            print("The supervisor is not running: components are not restarted. Run ./run_system.sh start "
                  "to start a new one (it adopts the running components).")
        if rows["dashboard"]["pid"]:
            print(f"Dashboard: {running_url(settings)}")
    return 0


def cmd_restart(settings: Settings, component: str, *, timeout_s: float = 120) -> int:
    if component not in COMPONENTS_BY_NAME:
        _err(f"unknown component '{component}'; choose one of {', '.join(COMPONENTS_BY_NAME)}")
        return 2
    if supervisor_record(settings)[0] != "ours":
        _err("rtml is not running; start it with ./run_system.sh start")
        return 1
    before = procs.read_pid_file(procs.pid_path(settings.run_dir, component))
    (settings.run_dir / f"{component}.restart").touch()
    _err(f"restarting {component} ...")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        beat = health.read_heartbeats_safely(settings).get(SUPERVISOR)
        info = (beat.details or {}).get("components", {}).get(component, {}) if beat else {}
        now_record = procs.read_pid_file(procs.pid_path(settings.run_dir, component))
        new = now_record is not None and (before is None or now_record.pid != before.pid)
        if info.get("state") == "not installed":
            _err(f"{component} is not installed")
            return 1
        if new and info.get("state") == "running" and info.get("pid") == now_record.pid:
            _err(f"{component} restarted (pid {now_record.pid})")
            return 0
        if info.get("state") == "failed" and not (settings.run_dir / f"{component}.restart").exists():
            _err(f"{component} failed: {info.get('reason')}")
            return 1
    _err(f"{component} did not become ready within {timeout_s:.0f} s; see ./run_system.sh logs {component}")
    return 1


def _log_files(settings: Settings, names: Sequence[str]) -> dict[str, Path]:
    files = {}
    for name in names:
        log_path = settings.logs_dir / f"{name}.log"
        out_path = settings.logs_dir / f"{name}.out"
        files[name] = log_path if log_path.exists() or not out_path.exists() else out_path
    return files


def _timestamped(lines: list[str], name: str, width: int) -> list[tuple[str, str]]:
    """Attach to every line the timestamp of the last line that began with one."""
    out, stamp = [], ""
    for line in lines:
        if len(line) >= 23 and line[:4].isdigit() and line[4] == "-" and line[10] == " ":
            stamp = line[:23]
        out.append((stamp, f"{name.ljust(width)} | {line}"))
    return out


def cmd_logs(settings: Settings, component: str | None, *, follow: bool, n: int,
             out: TextIO = sys.stdout) -> int:
    names = [component] if component else [s.name for s in COMPONENTS] + [SUPERVISOR]
    if component and component not in names:
        return 2
    files = _log_files(settings, names)
    width = max(len(x) for x in names)
    merged: list[tuple[str, str]] = []
    positions: dict[str, int] = {}
    for name, path in files.items():
        try:
            data = path.read_bytes()
        except OSError:
            positions[name] = 0
            continue
        positions[name] = len(data)
        lines = data.decode("utf-8", errors="replace").splitlines()[-n:] if n > 0 else []
        if component:
            merged += [("", line) for line in lines]
        else:
            merged += _timestamped(lines, name, width)
    if not component:
        merged.sort(key=lambda pair: pair[0])
    for _, line in merged[-n:] if n > 0 else []:
        out.write(line + "\n")
    out.flush()
    if not any(p.exists() for p in files.values()):
        _err(f"no log files yet in {settings.logs_dir}")
    if not follow:
        return 0
    partial: dict[str, str] = collections.defaultdict(str)
    try:
        while True:
            for name, path in files.items():
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if size < positions.get(name, 0):  # rotated
                    positions[name] = 0
                if size == positions.get(name, 0):
                    continue
                with open(path, "rb") as fh:
                    fh.seek(positions.get(name, 0))
                    chunk = fh.read()
                positions[name] = positions.get(name, 0) + len(chunk)
                text = partial[name] + chunk.decode("utf-8", errors="replace")
                *complete, partial[name] = text.split("\n")
                for line in complete:
                    out.write((line if component else f"{name.ljust(width)} | {line}") + "\n")
            out.flush()
            time.sleep(0.5)
    except (KeyboardInterrupt, BrokenPipeError):
        return 0


def cmd_reset(settings: Settings) -> int:
    if system_state(settings) != "stopped":
        _err("rtml is running in this home; stop it first (./run_system.sh stop)")
        return 1
    targets = [settings.data_dir, settings.models_dir, settings.logs_dir, settings.run_dir]
    db = settings.db_path
    extra = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    for path in targets:
        if path.is_dir():
            shutil.rmtree(path)
            _err(f"removed {path}")
    for path in extra:
        if path.exists():
            path.unlink()
            _err(f"removed {path}")
    if settings.uses_postgres:
        try:
            conn = connect(settings, migrate_schema=False)
            try:
                dropped = drop_schema(conn)
            finally:
                conn.close()
        except (*DatabaseError, StorageError) as exc:
            _err(f"could not drop rtml's tables in {settings.database_label}: {exc}")
            return 1
        _err(f"dropped {len(dropped)} rtml tables in {settings.database_label}")
    return 0


# -- entry point ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rtml.supervisor", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="supervise the components until SIGTERM")
    sub.add_parser("validate", help="check the configuration, print key=value lines")
    sub.add_parser("preflight", help="folders, database check (SQLite quick_check / PostgreSQL answers) and port")
    sub.add_parser("state", help="print running, orphans or stopped")
    sub.add_parser("url", help="print the running dashboard's URL")
    wait = sub.add_parser("wait-ready", help="wait until every component is ready")
    wait.add_argument("--timeout", type=float, default=180.0)
    sub.add_parser("stop", help="stop the supervisor and every component")
    status = sub.add_parser("status", help="a table (or --json) of every component")
    status.add_argument("--json", action="store_true")
    restart = sub.add_parser("restart", help="restart one component")
    restart.add_argument("component")
    logs = sub.add_parser("logs", help="show (and follow) the logs")
    logs.add_argument("component", nargs="?", choices=[s.name for s in COMPONENTS] + [SUPERVISOR])
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", type=int, default=50)
    sub.add_parser("reset", help="remove this instance's data, models, logs and run files")
    return parser


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(environ=environ)
    except ConfigError as exc:
        _err(f"configuration error: {exc}")
        return 2
    if args.command == "run":
        return cmd_run(settings, environ)
    if args.command == "validate":
        return cmd_validate(settings)
    if args.command == "preflight":
        return cmd_preflight(settings)
    if args.command == "state":
        return cmd_state(settings)
    if args.command == "url":
        return cmd_url(settings)
    if args.command == "wait-ready":
        return cmd_wait_ready(settings, timeout_s=args.timeout)
    if args.command == "stop":
        return cmd_stop(settings)
    if args.command == "status":
        return cmd_status(settings, as_json=args.json)
    if args.command == "restart":
        return cmd_restart(settings, args.component)
    if args.command == "logs":
        return cmd_logs(settings, args.component, follow=args.follow, n=args.n)
    if args.command == "reset":
        return cmd_reset(settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
