"""The supervisor loop in-process, with tiny stand-in components (fast; real processes)."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time

import pytest

from rtml import procs
from rtml.supervisor import ComponentSpec, Supervisor, describe_exit
from tests.conftest import make_settings


def _spec(name: str, code: str) -> ComponentSpec:
    return ComponentSpec(name, "unused.py", "heartbeat", lambda python, project, settings: [python, "-c", code])


def _run(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    return thread


def _wait(predicate, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def fast_settings(tmp_path):
    return make_settings(tmp_path, **{"supervisor.max_restarts": 2, "supervisor.backoff_initial_seconds": 0.1,
                                      "supervisor.backoff_max_seconds": 0.4, "supervisor.stop_timeout_s": 3,
                                      "supervisor.heartbeat_interval_seconds": 0.2})


def test_a_crash_loop_is_given_up_with_a_critical_alert(fast_settings):
    crasher = _spec("detector", "import sys; sys.exit(3)")
    sup = Supervisor(fast_settings, environ={}, python=sys.executable, project=fast_settings.home,
                     components=[crasher])
    sup._installed = lambda m: True
    thread = _run(sup)
    try:
        assert _wait(lambda: sup.managed["detector"].state == "failed")
        m = sup.managed["detector"]
        assert m.restarts == 2 and m.last_exit_code == 3
        assert "exited with code 3" in m.reason and "stays down" in m.reason
        time.sleep(0.5)  # a heartbeat after giving up
        conn = sqlite3.connect(fast_settings.db_path)
        severity, source, message = conn.execute("SELECT severity, source, message FROM alerts").fetchone()
        assert (severity, source) == ("critical", "supervisor") and "detector" in message
        details = json.loads(conn.execute("SELECT details FROM heartbeats WHERE component = 'supervisor'")
                             .fetchone()[0])
        assert details["components"]["detector"]["state"] == "failed"
        assert details["components"]["detector"]["restarts"] == 2
        conn.close()
        assert not (fast_settings.run_dir / "detector.pid").exists()
    finally:
        sup.request_stop()
        thread.join(10)


def test_restart_after_a_kill_and_a_clean_stop(fast_settings):
    sleeper = _spec("generator", "import time; time.sleep(60)")
    sup = Supervisor(fast_settings, environ={}, python=sys.executable, project=fast_settings.home,
                     components=[sleeper])
    sup._installed = lambda m: True
    thread = _run(sup)
    pid_file = fast_settings.run_dir / "generator.pid"
    try:
        assert _wait(pid_file.exists)
        first = procs.read_pid_file(pid_file)
        assert procs.verify(first) is not None
        procs.signal_group(first, 9)
        assert _wait(lambda: (r := procs.read_pid_file(pid_file)) is not None and r.pid != first.pid, 10)
        m = sup.managed["generator"]
        assert m.restarts == 1 and m.last_exit_code == -9
        second = procs.read_pid_file(pid_file)
    finally:
        sup.request_stop()
        thread.join(10)
    assert not thread.is_alive()
    assert procs.verify(second) is None and not pid_file.exists()


def test_a_restart_request_restarts_without_counting_a_failure(fast_settings):
    sleeper = _spec("dashboard", "import time; time.sleep(60)")
    sup = Supervisor(fast_settings, environ={}, python=sys.executable, project=fast_settings.home,
                     components=[sleeper])
    sup._installed = lambda m: True
    thread = _run(sup)
    pid_file = fast_settings.run_dir / "dashboard.pid"
    try:
        assert _wait(pid_file.exists)
        first = procs.read_pid_file(pid_file)
        (fast_settings.run_dir / "dashboard.restart").touch()
        assert _wait(lambda: (r := procs.read_pid_file(pid_file)) is not None and r.pid != first.pid, 10)
        assert sup.managed["dashboard"].failures_in_a_row == 0
        assert procs.verify(first) is None
    finally:
        sup.request_stop()
        thread.join(10)


def test_describe_exit():
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(-15) == "was killed by SIGTERM"


@pytest.mark.parametrize("ready, hang, interval, silent, expected", [
    ("heartbeat", 60.0, 5.0, 61.0, 61.0),    # silent longer than the timeout: hung
    ("heartbeat", 60.0, 5.0, 59.0, None),    # not yet
    ("heartbeat", 0.0, 5.0, 1e6, None),      # 0 turns the watchdog off
    ("heartbeat", 4.0, 5.0, 14.0, None),     # the timeout is at least three heartbeat intervals ...
    ("heartbeat", 4.0, 5.0, 16.0, 16.0),     # ... 15 s here
    ("http", 60.0, 5.0, 61.0, 61.0),         # the dashboard: its last healthy answer counts
])
def test_silence_longer_than_the_hang_timeout_is_a_hang(tmp_path, ready, hang, interval, silent, expected):
    from rtml.supervisor import Managed

    settings = make_settings(tmp_path, **{"supervisor.hang_timeout_seconds": hang,
                                          "supervisor.heartbeat_interval_seconds": interval})
    sup = Supervisor(settings, environ={}, components=(ComponentSpec("x", "x.py", ready, lambda *a: []),))
    now = 10_000.0
    sup.beats_read_at = now  # the heartbeats were just read
    m = Managed(sup.managed["x"].spec, state="running", ready_at=now - 1e5)
    if ready == "http":
        m.health_ok_at = now - silent
    else:
        m.heartbeat_at = now - silent
    got = sup._silent_for(m, now)
    assert got == pytest.approx(expected) if expected is not None else got is None
    assert sup._silent_for(Managed(m.spec, state="starting"), now) is None  # starting is not judged


def test_an_unreadable_database_is_no_evidence_of_a_hang(tmp_path):
    from rtml.supervisor import Managed

    settings = make_settings(tmp_path, **{"supervisor.hang_timeout_seconds": 60.0,
                                          "supervisor.heartbeat_interval_seconds": 5.0})
    sup = Supervisor(settings, environ={}, components=(ComponentSpec("x", "x.py", "heartbeat", lambda *a: []),))
    sup.beats_read_at = 1_000.0  # the last read that worked
    m = Managed(sup.managed["x"].spec, state="running", ready_at=900.0, heartbeat_at=999.0)
    assert sup._silent_for(m, 1_000.0 + 3_600) is None  # an hour of failed reads later
    sup.beats_read_at = 1_070.0  # a read that worked and still showed the 999 s heartbeat
    assert sup._silent_for(m, 1_070.0) == pytest.approx(71.0)
