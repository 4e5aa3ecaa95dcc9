"""Process stats, pid files and ownership checks, status assembly (rtml.health, rtml.procs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from rtml import health, procs
from tests.conftest import free_port, make_settings


def _spawn(code: str) -> subprocess.Popen:
    """A python child in its own process group."""
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def _wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


# -- process_stats ---------------------------------------------------------------------------------
def test_process_stats_of_self():
    stats = health.process_stats(os.getpid())
    assert set(stats) == {"pid", "cpu_percent", "rss_bytes", "uptime_s", "create_time"}
    assert stats["pid"] == os.getpid()
    assert stats["rss_bytes"] > 10 * 2**20
    assert stats["uptime_s"] >= 0
    assert stats["cpu_percent"] >= 0


def test_process_stats_measured_over_an_interval_and_with_children():
    child = _spawn("import time\nwhile True: pass")  # burns one core
    try:
        time.sleep(0.2)
        alone = health.process_stats(child.pid, cpu_interval_s=0.5)
        assert alone["cpu_percent"] > 10  # a busy loop, even on a loaded machine
        me = health.process_stats(os.getpid(), include_children=True)
        assert me["rss_bytes"] > health.process_stats(os.getpid())["rss_bytes"]
    finally:
        child.kill()
        child.wait()


def test_process_stats_of_a_dead_pid_is_none():
    child = _spawn("pass")
    child.wait()
    assert health.process_stats(child.pid) is None


# -- pid files -------------------------------------------------------------------------------------
def test_pid_file_round_trip_and_verify(tmp_path):
    child = _spawn("import time; time.sleep(30)")
    try:
        record = procs.PidRecord.for_process("generator", child.pid, home=tmp_path, marker="time.sleep",
                                             argv=["python", "-c", "..."])
        path = procs.write_pid_file(tmp_path / "run", record)
        assert path == tmp_path / "run" / "generator.pid"
        assert procs.read_pid_file(path) == record
        kind, again, proc = procs.classify(path)
        assert kind == "ours" and again == record and proc.pid == child.pid
        assert record.pgid == child.pid  # its own process group
    finally:
        child.kill()
        child.wait()
    assert procs.classify(path)[0] == "dead"


def test_a_recycled_pid_is_foreign_never_ours(tmp_path):
    me = psutil.Process()
    wrong_time = procs.PidRecord("generator", me.pid, os.getpgid(me.pid), me.create_time() - 100, time.time(),
                                 str(tmp_path), "python")
    procs.write_pid_file(tmp_path, wrong_time)
    assert procs.classify(tmp_path / "generator.pid")[0] == "foreign"
    wrong_marker = procs.PidRecord("detector", me.pid, os.getpgid(me.pid), me.create_time(), time.time(),
                                   str(tmp_path), "drift_detector.py")
    procs.write_pid_file(tmp_path, wrong_marker)
    assert procs.classify(tmp_path / "detector.pid")[0] == "foreign"
    assert procs.signal_group(wrong_marker, signal.SIGTERM) == 0  # nothing is signalled


def test_damaged_and_missing_pid_files(tmp_path):
    (tmp_path / "generator.pid").write_text("not json")
    assert procs.classify(tmp_path / "generator.pid")[0] == "unreadable"
    assert procs.classify(tmp_path / "detector.pid")[0] == "missing"
    procs.remove_pid_file(tmp_path / "detector.pid")  # no error


def test_remove_pid_file_only_if_it_still_names_the_pid(tmp_path):
    record = procs.PidRecord("generator", 123, 123, 1.0, 1.0, str(tmp_path), "x")
    path = procs.write_pid_file(tmp_path, record)
    procs.remove_pid_file(path, only_pid=456)
    assert path.exists()
    procs.remove_pid_file(path, only_pid=123)
    assert not path.exists()


# -- signalling groups -----------------------------------------------------------------------------
def test_terminate_group_stops_the_leader_and_its_children(tmp_path):
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "time.sleep(60)\n")
    leader = _spawn(code)
    try:
        time.sleep(0.5)
        record = procs.PidRecord.for_process("detector", leader.pid, home=tmp_path, marker="subprocess")
        members = procs.group_members(record)
        assert len(members) == 2
        assert procs.terminate_group(record, timeout_s=5) == "terminated"
        leader.wait(timeout=5)
        assert all(_wait_gone(p.pid) for p in members)
        assert procs.terminate_group(record, timeout_s=1) == "gone"
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()


def test_terminate_group_kills_what_ignores_sigterm(tmp_path):
    leader = _spawn("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)")
    try:
        time.sleep(0.3)
        record = procs.PidRecord.for_process("generator", leader.pid, home=tmp_path, marker="SIG_IGN")
        started = time.monotonic()
        assert procs.terminate_group(record, timeout_s=0.5) == "killed"
        assert time.monotonic() - started < 5
        assert leader.wait(timeout=5) == -signal.SIGKILL
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()


# -- ports -----------------------------------------------------------------------------------------
def test_port_in_use_and_its_owner():
    port = free_port()
    assert not procs.port_in_use("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert procs.port_in_use("127.0.0.1", port)
        owner = procs.port_owner(port)
        assert owner is None or str(os.getpid()) in owner


# -- status ----------------------------------------------------------------------------------------
def test_status_of_a_stopped_instance(tmp_path):
    settings = make_settings(tmp_path)
    rows = health.collect_status(settings, cpu_interval_s=None)
    assert list(rows) == ["generator", "detector", "dashboard", "supervisor"]
    for name, row in rows.items():
        assert set(health.STATUS_KEYS) <= set(row)
        assert row["component"] == name
        assert row["state"] == "stopped" and row["pid"] is None and row["restarts"] == 0
    table = health.format_status_table(rows)
    assert table.splitlines()[0].split() == ["COMPONENT", "STATE", "PID", "CPU", "%", "RSS", "UPTIME",
                                             "RESTARTS", "HEARTBEAT"]


def test_status_reports_a_stale_pid_file_as_dead(tmp_path):
    settings = make_settings(tmp_path)
    child = _spawn("pass")
    child.wait()
    procs.write_pid_file(settings.run_dir, procs.PidRecord("generator", child.pid, child.pid, 1.0, 1.0,
                                                           str(tmp_path), "data_generator.py"))
    row = health.collect_status(settings, cpu_interval_s=None)["generator"]
    assert row["state"] == "dead" and row["pid"] is None and "stale pid file" in row["reason"]


@pytest.mark.parametrize("status, body, healthy", [(200, b"ok", True), (200, b"starting", False),
                                                   (503, b"ok", False)])
def test_dashboard_healthy_reads_status_and_body(status, body, healthy):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(status if self.path == "/_stcore/health" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert health.dashboard_healthy("127.0.0.1", server.server_address[1], timeout_s=2) is healthy
    finally:
        server.shutdown()
        server.server_close()


def test_dashboard_healthy_does_not_wait_for_a_server_that_keeps_the_connection_open():
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def serve():
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        release.wait(10)  # keeps the connection open
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert health.dashboard_healthy("127.0.0.1", listener.getsockname()[1], timeout_s=5) is True
    finally:
        release.set()
        thread.join(5)
        listener.close()


def test_dashboard_healthy_is_false_for_an_unusable_host_name():
    assert health.dashboard_healthy("dash\u00f6ard.invalid", free_port(), timeout_s=0.5) is False
    assert health.dashboard_healthy("bad host\x00", free_port(), timeout_s=0.5) is False


def test_dashboard_healthy_is_false_when_nothing_listens():
    assert health.dashboard_healthy("127.0.0.1", free_port(), timeout_s=0.5) is False


@pytest.mark.parametrize(("host", "url"), [("127.0.0.1", "http://localhost:8600"),
                                           ("example.lan", "http://example.lan:8600")])
def test_dashboard_url(tmp_path, host, url):
    settings = make_settings(tmp_path, **{"dashboard.host": host, "dashboard.port": 8600})
    assert health.dashboard_url(settings) == url
