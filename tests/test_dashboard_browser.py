"""The dashboard in a real browser: ``streamlit run dashboard.py`` driven by Playwright + Debian's Chromium.

A seeded database (real generator + detector rows) and a live generator at ``--speed 600`` in a
temp home; the page must load, show its KPIs, render its plotly charts and move on its own when
the clock advances, draw its tables as HTML — and leave pandas and pyarrow out of the server
process (checked in ``/proc/<pid>/maps`` after the page rendered). A full-page screenshot is saved
in ``tmp_path`` and its path printed. This test never skips: without Chromium it fails and says how
to install it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rtml.generator import Generator
from rtml.storage import connect
from tests.conftest import PROJECT, free_port, make_settings
from tests.test_dashboard import CHAMPION, CRITICAL_MESSAGE, seed_detector_tables

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.system]
TABLES = ("alerts", "statistics", "versions", "model-events", "health")


def mapped_files(pid: int) -> set[str]:
    """Paths of the files mapped into process ``pid`` (shared libraries, extension modules)."""
    with open(f"/proc/{pid}/maps") as maps:
        return {parts[5] for parts in (line.split(maxsplit=5) for line in maps) if len(parts) == 6}


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of process ``pid`` in MiB (``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "RssAnon", "RssFile")}


def _stop(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout_s``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 45.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url}/_stcore/health not ready after {timeout_s} s")


@pytest.fixture
def live_system(tmp_path):
    """A seeded home, a generator at speed 600 and the dashboard on a free port; stopped afterwards.

    Yields ``(url, pid of the dashboard server)``."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is required for the browser test and {CHROMIUM} is missing: "
                    "install it with `apt-get install -y chromium` (never `playwright install`).")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("The Python package playwright is missing: `.venv/bin/pip install -r requirements-dev.txt`.")
    home = tmp_path / "home"
    settings = make_settings(home)
    conn = connect(settings.db_path)
    generator = Generator(settings, conn)
    generator.backfill_baseline()
    generator.replay(0.2)
    seed_detector_tables(conn, settings)
    conn.close()
    env = dict(os.environ, RTML_HOME=str(home), RTML_CONFIG=str(PROJECT / "config.toml"),
               RTML_STORAGE_DB_PATH=str(settings.db_path), PYTHONPATH=str(PROJECT))
    procs = []
    log = open(tmp_path / "processes.log", "wb")
    try:
        procs.append(subprocess.Popen([sys.executable, "data_generator.py", "--speed", "600"], cwd=PROJECT, env=env,
                                      stdout=log, stderr=subprocess.STDOUT))
        port = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none", "--server.port", str(port)],
            cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, procs[-1])
        yield url, procs[-1].pid
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()


def test_dashboard_in_chromium(live_system, tmp_path):
    from playwright.sync_api import sync_playwright

    url, server_pid = live_system
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stMetricValue"]', timeout=30_000)
            clock = page.locator('[data-testid="stMetric"]').filter(has_text="Simulated clock")
            champion = page.locator('[data-testid="stMetric"]').filter(has_text="Champion model")
            assert CHAMPION in champion.inner_text()
            first = clock.locator('[data-testid="stMetricValue"]').inner_text()
            assert ":" in first  # HH:MM of the simulated clock
            page.wait_for_function(
                """([label, before]) => [...document.querySelectorAll('[data-testid="stMetric"]')]
                       .some(m => m.innerText.includes(label)
                             && m.querySelector('[data-testid="stMetricValue"]').innerText !== before)""",
                arg=["Simulated clock", first], timeout=20_000)
            page.wait_for_function(
                """() => document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length >= 5""",
                timeout=30_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            for name in TABLES:  # HTML tables, not Arrow data frames
                page.locator(f'table[data-table="{name}"]').wait_for(timeout=15_000)
            assert page.locator('[data-testid="stDataFrame"], [data-testid="stTable"]').count() == 0
            alerts = page.locator('table[data-table="alerts"]')
            assert CRITICAL_MESSAGE in alerts.inner_text() and "age: psi 0.27 ≥ 0.05" in alerts.inner_text()
            critical_row = alerts.locator("tbody tr").filter(has_text=CRITICAL_MESSAGE).first
            assert critical_row.evaluate("row => getComputedStyle(row).backgroundColor") == "rgb(253, 226, 225)"
            assert page.locator('table[data-table="health"] tbody tr').count() >= 2
            dataframe_libraries = sorted(path for path in mapped_files(server_pid)
                                         if "/pandas/" in path or "/pyarrow/" in path)
            assert dataframe_libraries == [], dataframe_libraries[:5]
            print(f"dashboard server memory after the first render (MiB): {memory_mib(server_pid)}")
            # Streamlit scrolls inside its main container, so full_page alone shows one screen: grow the
            # viewport to the content first.
            height = page.evaluate("""() => Math.max(...[...document.querySelectorAll(
                '[data-testid="stMain"], [data-testid="stAppViewContainer"], section.main')].map(e => e.scrollHeight))""")
            page.set_viewport_size({"width": 1500, "height": min(int(height) + 40, 12_000)})
            time.sleep(1.5)  # let the charts redraw at the new size
            # Photograph between two refreshes, not while a rerun greys out the elements it has not redrawn.
            page.wait_for_function("""() => !document.querySelector('[data-stale="true"]')""", timeout=15_000)
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")
    keep = os.environ.get("RTML_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "dashboard.png")
