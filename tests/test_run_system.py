"""run_system.sh end to end: real processes on a temporary RTML_HOME and a free port.

The module-scoped ``system`` runs one instance through start → status → kill -9 of each
component → restart → logs → stop; the other tests use their own short-lived homes. Every
test stops what it started (also on failure).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rtml import procs
from tests.conftest import free_port

pytestmark = pytest.mark.system

PROJECT = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT / "run_system.sh"
COMPONENTS = ("generator", "detector", "dashboard")
SCRIPTS = {"generator": "data_generator.py", "detector": "drift_detector.py", "dashboard": "dashboard.py"}
STATUS_KEYS = {"pid", "state", "cpu_percent", "rss_bytes", "uptime_s", "restarts", "heartbeat_age_s"}


def installed(component: str) -> bool:
    return (PROJECT / SCRIPTS[component]).exists()


def base_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    """A fast, isolated instance: temp home, free port, the existing venv, 60x time, small models."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTML_")}
    env.update(RTML_HOME=str(home), RTML_VENV=str(Path(sys.executable).parent.parent),
               RTML_DASHBOARD_PORT=str(port), RTML_SIMULATION_SPEED="60", RTML_MODEL_N_ESTIMATORS="10",
               RTML_SUPERVISOR_BACKOFF_INITIAL_SECONDS="0.5", RTML_SUPERVISOR_BACKOFF_MAX_SECONDS="2",
               RTML_SUPERVISOR_STOP_TIMEOUT_S="10", RTML_SUPERVISOR_HEARTBEAT_INTERVAL_SECONDS="1")
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str, timeout: float = 180, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          input=stdin, cwd=PROJECT)


def status(env: dict[str, str]) -> dict:
    result = run(env, "status", "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def supervisor_view(home: Path) -> dict:
    """The supervisor's heartbeat details per component."""
    conn = sqlite3.connect(f"file:{home / 'data' / 'monitoring.db'}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT details FROM heartbeats WHERE component = 'supervisor'").fetchone()
    finally:
        conn.close()
    return json.loads(row[0])["components"] if row else {}


def heartbeat_pid(home: Path, component: str) -> int | None:
    conn = sqlite3.connect(f"file:{home / 'data' / 'monitoring.db'}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT pid FROM heartbeats WHERE component = ?", (component,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def recorded_pids(home: Path) -> dict[str, procs.PidRecord]:
    out = {}
    for path in (home / "run").glob("*.pid"):
        record = procs.read_pid_file(path)
        if record is not None:
            out[record.component] = record
    return out


def kill_leftovers(records: list[procs.PidRecord]) -> list[int]:
    """Last-resort cleanup of processes we started (verified, never by name); returns their pids."""
    left = []
    for record in records:
        for proc in procs.group_members(record):
            left.append(proc.pid)
            proc.kill()
    return left


def port_free(port: int) -> bool:
    return not procs.port_in_use("127.0.0.1", port)


def wait_for(predicate, timeout_s: float, step_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return None


# -- one instance through its life -------------------------------------------------------------------
@pytest.fixture(scope="module")
def system(tmp_path_factory):
    home = tmp_path_factory.mktemp("rtml-home")
    port = free_port()
    env = base_env(home, port)
    seen: list[procs.PidRecord] = []
    result = run(env, "start")
    seen += recorded_pids(home).values()
    try:
        assert result.returncode == 0, result.stderr
        yield {"home": home, "port": port, "env": env, "start": result, "seen": seen}
    finally:
        seen += recorded_pids(home).values()
        run(env, "stop", timeout=120)
        leftovers = kill_leftovers(seen)
        assert not leftovers, f"processes left after stop: {leftovers}"


def test_start_brings_every_component_up(system):
    start = system["start"]
    assert start.stdout.strip() == f"http://localhost:{system['port']}"
    assert "Dashboard:" in start.stderr and "./run_system.sh stop" in start.stderr
    rows = status(system["env"])
    assert set(rows) == {"generator", "detector", "dashboard", "supervisor"}
    for name, row in rows.items():
        assert STATUS_KEYS <= set(row), name
    for name in COMPONENTS + ("supervisor",):
        if name != "supervisor" and not installed(name):
            assert rows[name]["state"] == "not installed"
            continue
        row = rows[name]
        assert row["state"] == "running", (name, row)
        assert isinstance(row["pid"], int) and row["rss_bytes"] > 0 and row["uptime_s"] >= 0
        assert row["restarts"] == 0
        assert row["heartbeat_age_s"] is not None and row["heartbeat_age_s"] < 10
        assert (system["home"] / "run" / f"{name}.pid").exists()
        record = procs.read_pid_file(system["home"] / "run" / f"{name}.pid")
        assert record.pgid == record.pid  # its own process group


def test_status_table(system):
    result = run(system["env"], "status", timeout=30)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["COMPONENT", "STATE", "PID"]
    assert any(line.startswith("generator") and "running" in line for line in lines)
    assert f"http://localhost:{system['port']}" in result.stdout


def test_dashboard_answers_health(system):
    if not installed("dashboard"):
        pytest.skip("dashboard.py is not written yet")
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{system['port']}/_stcore/health", timeout=5) as resp:
        assert resp.read().strip() == b"ok"


def test_the_detector_service_runs_without_pandas(system):
    """After loading its model and scoring, the detector has no pandas/pyarrow library mapped (rtml.lean)."""
    record = procs.read_pid_file(system["home"] / "run" / "detector.pid")
    db = system["home"] / "data" / "monitoring.db"

    def scored() -> bool:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] > 0

    assert wait_for(scored, 60), "the detector scored nothing within 60 s"
    maps = Path(f"/proc/{record.pid}/maps").read_text()
    assert "scikit" in maps or "sklearn" in maps  # the model is loaded ...
    assert "/pandas/" not in maps and "/pyarrow/" not in maps  # ... without the libraries it never uses


def test_start_twice_starts_nothing(system):
    before = {c: r.pid for c, r in recorded_pids(system["home"]).items()}
    again = run(system["env"], "start", timeout=60)
    assert again.returncode == 0
    assert "already running" in again.stderr
    assert again.stdout.strip() == f"http://localhost:{system['port']}"
    assert {c: r.pid for c, r in recorded_pids(system["home"]).items()} == before


@pytest.mark.parametrize("component", COMPONENTS)
def test_kill_9_is_restarted_within_10_s(system, component):
    if not installed(component):
        pytest.skip(f"{SCRIPTS[component]} is not written yet")
    home = system["home"]
    record = procs.read_pid_file(home / "run" / f"{component}.pid")
    assert procs.verify(record) is not None
    restarts_before = supervisor_view(home)[component]["restarts"]
    killed_at = time.monotonic()
    os.killpg(record.pgid, signal.SIGKILL)

    def healthy_again():
        view = supervisor_view(home).get(component, {})
        new = procs.read_pid_file(home / "run" / f"{component}.pid")
        if new is None or new.pid == record.pid or view.get("state") != "running" or view.get("pid") != new.pid:
            return None
        if component != "dashboard" and heartbeat_pid(home, component) != new.pid:
            return None
        return new

    new = wait_for(healthy_again, 10)
    elapsed = time.monotonic() - killed_at
    assert new is not None, f"{component} not healthy again 10 s after kill -9"
    system["seen"].append(new)
    assert elapsed < 10
    view = supervisor_view(home)[component]
    assert view["restarts"] == restarts_before + 1 and view["last_exit_code"] == -9
    assert status(system["env"])[component]["restarts"] == restarts_before + 1
    _assert_database_whole(home)


def _assert_database_whole(home: Path) -> None:
    """integrity_check ok; generator batches continuous; every committed batch's rows present."""
    conn = sqlite3.connect(f"file:{home / 'data' / 'monitoring.db'}?mode=ro", uri=True, timeout=10,
                           isolation_level=None)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # One read transaction: the running generator's commits must not land between the reads.
        conn.execute("BEGIN")
        batches = conn.execute("SELECT batch_id, n_rows, first_id, last_id FROM generator_batches "
                               "ORDER BY batch_id").fetchall()
        assert [b[0] for b in batches] == list(range(1, len(batches) + 1))
        previous_last = 0
        for batch_id, n_rows, first_id, last_id in batches:
            if n_rows == 0:
                continue
            assert first_id == previous_last + 1, f"ids jump before batch {batch_id}"
            assert last_id - first_id + 1 == n_rows
            previous_last = last_id
        bad = conn.execute(
            "SELECT b.batch_id, b.n_rows, COUNT(i.id) FROM generator_batches b LEFT JOIN interactions i "
            "ON i.id BETWEEN b.first_id AND b.last_id AND i.batch_id = b.batch_id "
            "GROUP BY b.batch_id HAVING COUNT(i.id) != b.n_rows").fetchall()
        assert bad == []
        total = conn.execute("SELECT COUNT(*) FROM interactions").fetchone()[0]
        assert total == sum(b[1] for b in batches)
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_restart_one_component(system):
    home = system["home"]
    before = procs.read_pid_file(home / "run" / "generator.pid")
    result = run(system["env"], "restart", "generator", timeout=120)
    assert result.returncode == 0, result.stderr
    after = procs.read_pid_file(home / "run" / "generator.pid")
    system["seen"].append(after)
    assert after.pid != before.pid and procs.verify(before) is None
    _assert_database_whole(home)


def test_a_dead_supervisor_is_shown_and_start_replaces_it(system):
    home, env = system["home"], system["env"]
    sup = procs.read_pid_file(home / "run" / "supervisor.pid")
    components = {c: r.pid for c, r in recorded_pids(home).items() if c != "supervisor"}
    os.kill(sup.pid, signal.SIGKILL)
    assert wait_for(lambda: procs.verify(sup) is None, 5)
    rows = status(env)
    assert rows["supervisor"]["state"] == "dead"
    assert all(rows[c]["pid"] == pid for c, pid in components.items())  # components keep running
    assert "supervisor is not running" in run(env, "status", timeout=30).stdout
    result = run(env, "start", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "adopts" in result.stderr
    new_sup = procs.read_pid_file(home / "run" / "supervisor.pid")
    system["seen"].append(new_sup)
    assert new_sup.pid != sup.pid and procs.verify(new_sup) is not None
    assert {c: r.pid for c, r in recorded_pids(home).items() if c != "supervisor"} == components
    # ... and it supervises the adopted components: kill one, it comes back.
    generator = procs.read_pid_file(home / "run" / "generator.pid")
    os.killpg(generator.pgid, signal.SIGKILL)
    back = wait_for(lambda: (r := procs.read_pid_file(home / "run" / "generator.pid")) is not None
                    and r.pid != generator.pid and procs.verify(r) is not None and r, 10)
    assert back, "an adopted component was not restarted"
    system["seen"].append(back)


def test_logs_merged_and_per_component(system):
    merged = run(system["env"], "logs", "-n", "40", timeout=30)
    assert merged.returncode == 0
    prefixes = {line.split("|")[0].strip() for line in merged.stdout.splitlines() if "|" in line}
    assert {"generator", "supervisor"} <= prefixes
    one = run(system["env"], "logs", "generator", "-n", "5", timeout=30)
    assert one.returncode == 0 and 0 < len(one.stdout.splitlines()) <= 5
    assert run(system["env"], "logs", "nonsense", timeout=30).returncode == 2


def test_reset_refuses_while_running(system):
    result = run(system["env"], "reset", "--yes", timeout=30)
    assert result.returncode == 1 and "stop it first" in result.stderr
    assert (system["home"] / "data" / "monitoring.db").exists()


def test_stop_leaves_nothing(system):
    home, port = system["home"], system["port"]
    system["seen"] += recorded_pids(home).values()
    result = run(system["env"], "stop", timeout=120)
    assert result.returncode == 0, result.stderr
    assert list((home / "run").glob("*.pid")) == []
    assert all(not procs.group_members(r) for r in system["seen"])
    assert port_free(port)
    rows = status(system["env"])
    assert all(row["state"] in ("stopped", "not installed") for row in rows.values())
    again = run(system["env"], "stop", timeout=30)
    assert again.returncode == 0 and "already stopped" in again.stderr
    _assert_database_whole(home)


def test_reset_after_stop(system):
    home = system["home"]
    no = run(system["env"], "reset", stdin="n\n", timeout=30)
    assert no.returncode == 0 and (home / "data").exists()
    yes = run(system["env"], "reset", "--yes", timeout=30)
    assert yes.returncode == 0, yes.stderr
    assert not any((home / d).exists() for d in ("data", "models", "logs", "run"))


# -- failures and errors, each on its own home ----------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_hung_component_is_killed_and_restarted(tmp_path):
    """SIGSTOP keeps a process alive but silent: no heartbeat (generator), no health answer (dashboard)."""
    home = tmp_path / "home"
    env = base_env(home, free_port(), RTML_SUPERVISOR_HANG_TIMEOUT_SECONDS="6")
    seen: list[procs.PidRecord] = []
    try:
        assert run(env, "start").returncode == 0
        seen += recorded_pids(home).values()
        for component in ("generator", "dashboard"):
            record = procs.read_pid_file(home / "run" / f"{component}.pid")
            os.killpg(record.pgid, signal.SIGSTOP)

            def replaced():
                view = supervisor_view(home).get(component, {})
                new = procs.read_pid_file(home / "run" / f"{component}.pid")
                ok = new is not None and new.pid != record.pid and view.get("state") == "running"
                return new if ok and view.get("pid") == new.pid else None

            new = wait_for(replaced, 60)
            assert new is not None, f"a stopped {component} was not replaced within 60 s"
            seen.append(new)
            assert not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE
            view = supervisor_view(home)[component]
            assert view["restarts"] == 1 and view["last_exit_code"] == -9  # SIGTERM waits while stopped
        log = (home / "logs" / "supervisor.log").read_text()
        assert "gave no sign of life" in log and "(hung); killed" in log
        _assert_database_whole(home)
    finally:
        run(env, "stop", timeout=120)
        assert not kill_leftovers(seen + list(recorded_pids(home).values()))


def test_crash_loop_gives_up_and_stale_pid_files_are_cleaned_never_killed(tmp_path):
    """The detector's command is replaced by one that always fails; stale pid files of both kinds
    (a dead pid, a pid now used by an unrelated process) are left from an 'earlier run'."""
    home, port = tmp_path / "home", free_port()
    env = base_env(home, port, RTML_SUPERVISOR_MAX_RESTARTS="2", RTML_SUPERVISOR_BACKOFF_INITIAL_SECONDS="0.2",
                   RTML_SUPERVISOR_BACKOFF_MAX_SECONDS="0.5",
                   RTML_CMD_DETECTOR=f"{sys.executable} -c 'import sys; sys.exit(3)'",
                   RTML_CMD_DASHBOARD=f"{sys.executable} -c 'import time; time.sleep(120)'")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    me = psutil.Process(bystander.pid)
    run_dir = home / "run"
    run_dir.mkdir(parents=True)
    procs.write_pid_file(run_dir, procs.PidRecord("generator", _dead_pid(), 1, 1.0, 1.0, str(home),
                                                  "data_generator.py"))
    procs.write_pid_file(run_dir, procs.PidRecord("supervisor", bystander.pid, bystander.pid,
                                                  me.create_time() - 50, 1.0, str(home), "rtml.supervisor"))
    procs.write_pid_file(run_dir, procs.PidRecord("dashboard", bystander.pid, bystander.pid,
                                                  me.create_time(), 1.0, str(home), "dashboard.py"))
    seen: list[procs.PidRecord] = []
    try:
        result = run(env, "start", timeout=120)
        seen += recorded_pids(home).values()
        assert result.returncode == 1
        assert "detector failed" in result.stderr and "exited with code 3" in result.stderr
        assert bystander.poll() is None, "an unrelated process behind a stale pid file was signalled"
        rows = status(env)
        assert rows["detector"]["state"] == "failed"
        assert "stays down" in rows["detector"]["reason"]
        assert rows["detector"]["restarts"] == 2 and rows["detector"]["last_exit_code"] == 3
        assert rows["generator"]["state"] == "running"
        conn = sqlite3.connect(f"file:{home / 'data' / 'monitoring.db'}?mode=ro", uri=True)
        alerts = conn.execute("SELECT severity, message FROM alerts WHERE source = 'supervisor'").fetchall()
        conn.close()
        assert len(alerts) == 1 and alerts[0][0] == "critical" and "detector" in alerts[0][1]
        time.sleep(2)  # it stays down
        assert status(env)["detector"]["restarts"] == 2
    finally:
        seen += recorded_pids(home).values()
        stop = run(env, "stop", timeout=120)
        leftovers = kill_leftovers(seen)
        alive = bystander.poll() is None
        bystander.kill()
        bystander.wait()
    assert stop.returncode == 0 and not leftovers
    assert alive
    assert list(run_dir.glob("*.pid")) == []


def test_stop_cleans_stale_pid_files_and_never_signals_their_pids(tmp_path):
    home = tmp_path / "home"
    env = base_env(home, free_port())
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir = home / "run"
        run_dir.mkdir(parents=True)
        procs.write_pid_file(run_dir, procs.PidRecord("generator", _dead_pid(), 1, 1.0, 1.0, str(home),
                                                      "data_generator.py"))
        created = psutil.Process(bystander.pid).create_time()
        procs.write_pid_file(run_dir, procs.PidRecord("detector", bystander.pid, bystander.pid, created - 50, 1.0,
                                                      str(home), "drift_detector.py"))
        procs.write_pid_file(run_dir, procs.PidRecord("supervisor", bystander.pid, bystander.pid, created, 1.0,
                                                      str(home), "rtml.supervisor"))
        rows = status(env)
        assert rows["generator"]["state"] == "dead" and rows["detector"]["state"] == "dead"
        result = run(env, "stop", timeout=60)
        assert result.returncode == 0
        assert result.stderr.count("stale") == 3
        assert "already stopped" in result.stderr
        assert list(run_dir.glob("*.pid")) == []
        time.sleep(0.3)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_port_in_use_is_named_and_nothing_starts(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run(base_env(home, port), "start", timeout=120)
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "--port" in result.stderr and "RTML_DASHBOARD_PORT" in result.stderr
    assert list((home / "run").glob("*.pid")) == []


def test_port_flag_is_used(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run(base_env(home, free_port()), "start", "--port", str(port), timeout=120)
    assert result.returncode == 1 and f"port {port}" in result.stderr


def test_bad_configuration_exits_2_and_starts_nothing(tmp_path):
    home = tmp_path / "home"
    result = run(base_env(home, free_port(), RTML_SIMULATION_SPEED="fast"), "start", timeout=120)
    assert result.returncode == 2
    assert "simulation.speed" in result.stderr and "'fast'" in result.stderr
    assert not (home / "run").exists() or list((home / "run").glob("*.pid")) == []
    bad_port = run(base_env(home, free_port()), "start", "--port", "99999", timeout=60)
    assert bad_port.returncode == 2 and "dashboard.port" in bad_port.stderr


def test_a_database_failing_quick_check_is_refused(tmp_path):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "monitoring.db").write_bytes(b"SQLite format 3\x00" + b"\x07" * 8192)
    result = run(base_env(home, free_port()), "start", timeout=120)
    assert result.returncode == 1
    assert "quick_check" in result.stderr and "monitoring.db" in result.stderr
    assert list((home / "run").glob("*.pid")) == []


def test_unwritable_home_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        home = Path("/proc/rtml-cannot-exist")  # root ignores permissions; /proc refuses anyway
    else:
        tmp_path.chmod(0o500)
        home = tmp_path / "home"
    result = run(base_env(home, free_port()), "start", timeout=60)
    tmp_path.chmod(0o700)
    assert result.returncode == 1
    assert "cannot create" in result.stderr or "not writable" in result.stderr


def test_unknown_command_and_usage_errors_exit_2(tmp_path):
    env = base_env(tmp_path, free_port())
    unknown = run(env, "frobnicate", timeout=30)
    assert unknown.returncode == 2
    assert "Usage:" in unknown.stderr and "unknown command 'frobnicate'" in unknown.stderr
    assert run(env, "logs", "-n", "many", timeout=30).returncode == 2
    assert run(env, "restart", "nonsense", timeout=30).returncode == 2
    assert run(env, "status", "--yaml", timeout=30).returncode == 2
    helped = run(env, "help", timeout=30)
    assert helped.returncode == 0 and "Usage:" in helped.stdout


def test_stop_and_status_of_a_never_started_home(tmp_path):
    env = base_env(tmp_path / "home", free_port())
    result = run(env, "stop", timeout=30)
    assert result.returncode == 0 and "already stopped" in result.stderr
    rows = status(env)
    assert [row["state"] for row in rows.values()] == ["stopped"] * 4


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run([shellcheck, "-S", "warning", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "", result.stdout


# -- the whole system against PostgreSQL ---------------------------------------------------------------
def test_whole_system_on_postgres(tmp_path, postgres_database):
    """start → every component up on one PostgreSQL database → rows scored and checked → rollback
    command → kill -9 of the generator is survived → stop → reset drops the tables. No SQLite file
    is ever created."""
    import psycopg

    home = tmp_path / "home"
    env = base_env(home, free_port(), RTML_STORAGE_DATABASE_URL=postgres_database)
    seen: list[procs.PidRecord] = []
    try:
        result = run(env, "start")
        seen += recorded_pids(home).values()
        assert result.returncode == 0, result.stderr
        rows = status(env)
        assert all(rows[c]["state"] == "running" for c in COMPONENTS if installed(c)), rows
        with psycopg.connect(postgres_database, autocommit=True) as pg:
            def progress():
                n_pred = pg.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
                n_checks = pg.execute("SELECT COUNT(*) FROM drift_checks").fetchone()[0]
                return n_pred > 0 and n_checks > 0
            assert wait_for(progress, 90), "nothing scored or checked on PostgreSQL"
            assert pg.execute("SELECT version, status FROM models").fetchall() == [("v1.0", "champion")]
            beats = dict(pg.execute("SELECT component, state FROM heartbeats").fetchall())
            assert {"generator", "detector", "supervisor"} <= set(beats)
            before = recorded_pids(home)["generator"]
            os.kill(before.pid, signal.SIGKILL)
            assert wait_for(lambda: (r := recorded_pids(home).get("generator")) and r.pid != before.pid
                            and heartbeat_state(pg, "generator", r.pid), 30)
            seen += recorded_pids(home).values()
        rollback = subprocess.run([sys.executable, str(PROJECT / "drift_detector.py"), "rollback"], env=env,
                                  capture_output=True, text=True, timeout=120, cwd=PROJECT)
        assert rollback.returncode == 1 and "has no previous champion" in rollback.stderr, rollback.stderr
        assert not (home / "data" / "monitoring.db").exists()
    finally:
        seen += recorded_pids(home).values()
        run(env, "stop", timeout=120)
        leftovers = kill_leftovers(seen)
        assert not leftovers, f"processes left after stop: {leftovers}"
    reset = run(env, "reset", "--yes", timeout=60)
    assert reset.returncode == 0 and "dropped" in reset.stderr, reset.stderr
    with psycopg.connect(postgres_database, autocommit=True) as pg:
        assert pg.execute("SELECT to_regclass('interactions')").fetchone()[0] is None


def heartbeat_state(pg, component: str, pid: int) -> bool:
    row = pg.execute("SELECT pid, state FROM heartbeats WHERE component = %s", (component,)).fetchone()
    return bool(row and row[0] == pid and row[1] == "running")
