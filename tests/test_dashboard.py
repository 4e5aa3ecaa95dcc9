"""Dashboard tests: the data layer on a seeded database, and every panel under Streamlit's AppTest.

The database is built with the real generator (baseline + 0.2 replayed days); the detector's
tables are filled with plain parameterized SQL, so the expected values are known exactly.

The dashboard process must not load pandas or pyarrow (~78 MiB): AppTest imports pandas itself,
so :func:`test_dashboard_path_never_imports_pandas` draws every panel in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rtml.generator import Generator
from rtml.simulation import CATEGORICAL_FEATURES, FEATURES
from rtml.storage import connect, connect_readonly, transaction
from rtml.table import Table
from rtml.storage.heartbeats import write_heartbeat
from rtml.ui import data, transforms
from rtml.ui.app import refresh_interval_s
from rtml.ui.panels import MISSING_CELL, table_html
from tests.conftest import PROJECT, make_settings

HOUR = 3600.0
CHAMPION = "v1.1"
CRITICAL_MESSAGE = "🔴 Significant drift detected in 4 features!"
DRIFTING = ("age", "session_duration_s", "cart_value", "device_type")


def seed_detector_tables(conn, settings) -> dict:
    """Checks, results, alerts, models, events, performance and heartbeats over the replayed span."""
    start = settings.sim_start_s
    end = start + 0.2 * 86400
    base_start, base_end = start - 7 * 86400, start
    v11_train = (start + 2 * HOUR, start + 3.4 * HOUR)
    promoted_at = start + 3.5 * HOUR
    with transaction(conn):
        conn.executemany(
            "INSERT INTO models (version, major, minor, file, sha256, created_at, promoted_at, train_start, train_end, "
            "n_train, features, library_versions, metrics, status, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [("v1.0", 1, 0, "models/v1.0.joblib", "0" * 64, start, start, base_start, base_end, 2800,
              json.dumps(list(FEATURES)), "{}", json.dumps({"roc_auc": 0.80, "accuracy": 0.76}), "archived",
              "first model, trained on the baseline"),
             (CHAMPION, 1, 1, "models/v1.1.joblib", "1" * 64, promoted_at - 60, promoted_at, *v11_train, 9000,
              json.dumps(list(FEATURES)), "{}", json.dumps({"roc_auc": 0.83, "accuracy": 0.78}), "champion",
              "beat v1.0 by 0.031 ROC AUC on the holdout")])
        conn.executemany(
            "INSERT INTO model_events (at, real_time, event, version, from_version, actor, reason, details) "
            "VALUES (?,?,?,?,?,?,?,?)",
            [(start, time.time(), "trained", "v1.0", None, "detector", "initial model", "{}"),
             (start, time.time(), "promoted", "v1.0", None, "detector", "initial model", "{}"),
             (promoted_at - 60, time.time(), "trained", CHAMPION, None, "detector", "drift alert", "{}"),
             (promoted_at, time.time(), "promoted", CHAMPION, "v1.0", "detector",
              "beat v1.0 by 0.031 ROC AUC on the holdout", "{}")])
        t, check_id = start + HOUR, 0
        while t <= end:
            drift_on = t >= start + 3 * HOUR
            true_intensity = conn.execute(
                "SELECT AVG(drift_intensity) FROM interactions WHERE event_time >= ? AND event_time < ?",
                (t - HOUR, t)).fetchone()[0] or 0.0
            ref = v11_train if t >= promoted_at else (base_start, base_end)
            version = CHAMPION if t >= promoted_at else "v1.0"
            n_drifted = len(DRIFTING) if drift_on else 0
            check_id = conn.execute(
                "INSERT INTO drift_checks (checked_at, real_time, window_start, window_end, reference_start, "
                "reference_end, reference_version, n_reference, n_current, policy, dataset_drift, n_drifted, "
                "n_features, share_drifted, status, true_intensity) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (t, time.time(), t - HOUR, t, *ref, version, 3500, 9000, "calibrated", int(drift_on), n_drifted,
                 len(FEATURES), n_drifted / len(FEATURES), "ok", true_intensity)).lastrowid
            for i, feature in enumerate(FEATURES):
                drifted = drift_on and feature in DRIFTING
                psi = 0.02 + (0.25 if drifted else 0.0) + i * 0.001
                if feature in CATEGORICAL_FEATURES:
                    stats = (psi, None, None, psi / 2, 3.0, 1e-9 if drifted else 0.4)
                    thresholds = {"chi2_pvalue": 0.002, "psi": 0.05, "js_distance": 0.05}
                else:
                    stats = (psi, 0.2 if drifted else 0.02, 1e-12 if drifted else 0.5, psi / 2, None, None)
                    thresholds = {"ks_pvalue": 0.002, "psi": 0.05, "js_distance": 0.05, "ks_statistic": 0.05}
                conn.execute(
                    "INSERT INTO drift_results (check_id, feature, kind, status, drifted, psi, ks_statistic, ks_pvalue, "
                    "js_distance, chi2_statistic, chi2_pvalue, missing_rate_reference, missing_rate_current, "
                    "min_detectable_shift, thresholds, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (check_id, feature, "categorical" if feature in CATEGORICAL_FEATURES else "numerical", "ok",
                     int(drifted), *stats, 0.0, 0.0, 0.03, json.dumps(thresholds), "{}"))
            if t == start + 3 * HOUR + 600:
                conn.execute("INSERT INTO alerts (created_at, real_time, severity, source, message, details, check_id) "
                             "VALUES (?,?,?,?,?,?,?)",
                             (t, time.time(), "critical", "drift", CRITICAL_MESSAGE, json.dumps(
                                 [{"feature": "age", "statistic": "psi", "value": 0.27, "threshold": 0.05}]), check_id))
            if t == start + 2.5 * HOUR:
                conn.execute("INSERT INTO alerts (created_at, real_time, severity, source, message, details, check_id) "
                             "VALUES (?,?,?,?,?,?,?)",
                             (t, time.time(), "info", "drift", "🔵 Drift detected in 1 feature, below the "
                              "dataset-drift threshold.", "[]", check_id))
            t += 300
        w = start + HOUR
        while w <= end:
            version = CHAMPION if w >= promoted_at else "v1.0"
            conn.execute("INSERT INTO performance (window_start, window_end, model_version, n_rows, base_rate, accuracy, "
                         "roc_auc, precision, recall, f1, log_loss, brier, computed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         (w - HOUR, w, version, 9000, 0.2, 0.79, 0.812, 0.6, 0.5, 0.55, 0.45, 0.14, time.time()))
            w += 600
    write_heartbeat(conn, component="detector", pid=os.getpid(), state="running", sim_time=end, speed=1.0,
                    started_at=time.time() - 120, details={})
    write_heartbeat(conn, component="supervisor", pid=999_999_9, state="running", started_at=time.time() - 900,
                    real_time=time.time() - 600,
                    details={"components": {"generator": {"state": "running", "pid": None, "restarts": 2},
                                            "detector": {"state": "running", "pid": os.getpid(), "restarts": 0}}})
    return {"end": end, "promoted_at": promoted_at, "last_check_id": check_id,
            "critical_at": start + 3 * HOUR + 600}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A home with a generated and seeded database (built once per module)."""
    home = tmp_path_factory.mktemp("dash")
    settings = make_settings(home)
    conn = connect(settings.db_path)
    generator = Generator(settings, conn)
    generator.backfill_baseline()
    generator.replay(0.2)
    facts = seed_detector_tables(conn, settings)
    facts["generated"] = conn.execute("SELECT COUNT(*) FROM interactions").fetchone()[0]
    conn.close()
    return home, settings, facts


def _app(monkeypatch, home: Path) -> AppTest:
    monkeypatch.setenv("RTML_HOME", str(home))
    monkeypatch.setenv("RTML_STORAGE_DB_PATH", str(home / "data" / "monitoring.db"))
    monkeypatch.setenv("RTML_CONFIG", str(PROJECT / "config.toml"))
    return AppTest.from_file(str(PROJECT / "dashboard.py"), default_timeout=60)


def _metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.proto.delta) for m in at.metric}


class _TableReader(HTMLParser):
    """Reads back the tables :func:`rtml.ui.panels.table_html` draws: ``data-table`` name →
    ``{"headers": [...], "rows": [{header: text}], "styles": [row style]}``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict] = {}
        self._table = self._row = self._cell = None
        self._style = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("data-table", ""), {"headers": [], "rows": [], "styles": []})
        elif tag == "tr" and self._table is not None:
            self._row, self._style = [], attrs.get("style") or ""
        elif tag in ("th", "td") and self._row is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_data(self, text):
        if self._cell is not None:
            self._cell.append(text)

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if not self._table["headers"]:
                self._table["headers"] = self._row
            else:
                self._table["rows"].append(dict(zip(self._table["headers"], self._row)))
                self._table["styles"].append(self._style)
            self._row = None
        elif tag == "table":
            self._table = None


def read_tables(html_text: str) -> dict[str, dict]:
    """Every table in ``html_text`` by its ``data-table`` name (see :class:`_TableReader`)."""
    reader = _TableReader()
    reader.feed(html_text)
    return reader.tables


def _tables(at: AppTest) -> dict[str, dict]:
    return read_tables("".join(m.value for m in at.markdown))


# -- data layer ----------------------------------------------------------------------------------

def test_snapshot_matches_database(seeded):
    home, settings, facts = seeded
    conn = connect_readonly(settings.db_path)
    snap = data.load_snapshot(conn, window_s=24 * HOUR)
    assert snap.now_s == pytest.approx(facts["end"])
    assert snap.counts.generated == facts["generated"] == snap.counts.kept
    assert snap.counts.last_hour == conn.execute(
        "SELECT COUNT(*) FROM interactions WHERE event_time >= ?", (facts["end"] - HOUR,)).fetchone()[0]
    assert snap.champion["version"] == CHAMPION
    assert snap.champion_performance["roc_auc"] == pytest.approx(0.812)
    assert snap.latest_check["id"] == facts["last_check_id"]
    assert set(snap.results["feature"]) == set(FEATURES)
    assert snap.alert_counts == {"critical": 1, "info": 1}
    assert snap.alerts["message"][0] == CRITICAL_MESSAGE  # newest first
    assert snap.onset is not None and snap.onset.onset_s == pytest.approx(settings.sim_start_s + 2 * HOUR, abs=60)
    assert snap.onset.delay_s == pytest.approx(facts["critical_at"] - snap.onset.onset_s)
    assert snap.baseline == (settings.sim_start_s - 7 * 86400, settings.sim_start_s)
    status = transforms.drift_status(snap.latest_check, transforms.latest_results(snap.results, snap.latest_check),
                                     critical_share=0.3, critical_min_features=3)
    assert (status.level, set(status.drifted_features)) == ("critical", set(DRIFTING))
    ref, _, cur, _ = data.reference_and_current_windows(snap, current_window_s=HOUR)
    dist = data.load_distribution(conn, feature="age", reference_window=ref, current_window=cur, limit=500)
    assert len(dist.reference) == 500 and len(dist.current) == 500


def test_queries_are_bounded_and_indexed(seeded):
    """Every dashboard statement uses an index or the primary key (no full scan of a big table)."""
    _, settings, _ = seeded
    conn = connect_readonly(settings.db_path)
    from rtml.storage import dashboard as q

    plans = {
        "checks": (f"SELECT {', '.join(q.CHECK_COLUMNS)} FROM drift_checks WHERE checked_at >= ? "
                   "ORDER BY checked_at DESC LIMIT ?", (0, 10)),
        "results": (f"SELECT {', '.join(q.RESULT_COLUMNS)} FROM drift_results WHERE check_id >= ? AND check_id <= ?",
                    (1, 2)),
        "alerts": ("SELECT id FROM alerts WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?", (0, 5)),
        "perf": ("SELECT id FROM performance WHERE window_end >= ? ORDER BY window_end DESC LIMIT ?", (0, 5)),
        "events": ("SELECT id FROM model_events WHERE at >= ? ORDER BY at DESC LIMIT ?", (0, 5)),
        "count": ("SELECT COUNT(*) FROM interactions WHERE event_time >= ? AND event_time < ?", (0, 1)),
        "sample": ("SELECT event_time, age FROM interactions WHERE event_time >= ? AND event_time < ? "
                   "ORDER BY event_time DESC LIMIT ?", (0, 1, 5)),
    }
    for name, (sql, params) in plans.items():
        plan = " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        assert "USING" in plan and "SCAN" not in plan.replace("USING COVERING INDEX", ""), (name, plan)


def test_transforms_on_small_inputs():
    checks = Table({"checked_at": [0.0, 300.0, 600.0], "dataset_drift": [0, 1, 1], "id": [1, 2, 3]})
    assert transforms.drift_since(checks) == (300.0, True)  # fewer quiet checks than needed to close it
    assert transforms.drift_since(checks, quiet_checks=1) == (300.0, False)
    assert transforms.fmt_duration(90) == "1 min 30 s"
    assert transforms.alert_evidence([{"feature": "region", "statistic": "chi2_pvalue", "value": 1e-9,
                                       "threshold": 0.002}]) == "region: chi2_pvalue 1.00e-09 < 0.002"


def test_refresh_interval_scales_with_the_clock(settings):
    assert refresh_interval_s(settings, 1.0) == 30.0
    assert refresh_interval_s(settings, 10.0) == 3.0
    assert refresh_interval_s(settings, 1000.0) == settings.dashboard.min_refresh_seconds


# -- the app under AppTest -------------------------------------------------------------------------

def test_every_panel_renders_with_database_values(seeded, monkeypatch):
    home, settings, facts = seeded
    at = _app(monkeypatch, home).run()
    assert not at.exception, at.exception
    metrics = _metrics(at)
    assert metrics["Champion model"][0] == CHAMPION
    assert "AUC 0.812" in metrics["Champion model"][1]
    assert metrics["Interactions / hour"][1] == f"{facts['generated']:,} in total"
    assert metrics["Drift status"][0] == "CRITICAL"
    assert metrics["Alerts, last 24 sim h"][0] == "2"
    clock = transforms.fmt_time(facts["end"])
    assert metrics["Simulated clock (UTC)"] == (clock[11:], f"{clock[:10]} · speed ×1")
    assert metrics["Detection delay (sim)"][0] not in ("not yet", "—")
    subheaders = [h.value for h in at.subheader]
    for title in ("Drift over time", "Alerts", "Ground truth vs detection", "Model performance across versions",
                  "System health"):
        assert title in subheaders
    charts = at.get("plotly_chart")
    assert len(charts) >= 5  # heatmap, statistics, distribution, truth, performance
    heat = json.loads(charts[0].proto.spec)
    assert heat["data"][0]["type"] == "heatmap" and heat["data"][0]["y"][0] == FEATURES[0]
    assert not at.dataframe and not at.table  # Arrow elements would load pandas into the dashboard
    tables = _tables(at)
    assert set(tables) == {"alerts", "statistics", "versions", "model-events", "health"}
    alerts = tables["alerts"]
    assert alerts["rows"][0]["message"] == CRITICAL_MESSAGE and "#fde2e1" in alerts["styles"][0]  # critical: red
    assert "age: psi 0.27 ≥ 0.05" in alerts["rows"][0]["features · value vs threshold"]
    assert "#e3f0fb" in alerts["styles"][1]  # info: blue
    health = {row["component"]: (row, style) for row, style in zip(tables["health"]["rows"], tables["health"]["styles"])}
    assert health["detector"][0]["health"] == "healthy" and health["detector"][0]["pid"] == str(os.getpid())
    assert health["supervisor"][0]["health"] == "STALE" and "#b71c1c" in health["supervisor"][1]
    assert health["supervisor"][0]["CPU %"] == MISSING_CELL  # its pid does not run here
    assert health["generator"][0]["restarts"] == "2"
    assert "stale" not in tables["health"]["headers"]
    versions = {row["version"]: row for row in tables["versions"]["rows"]}
    assert versions[CHAMPION]["status"] == "champion" and versions[CHAMPION]["ROC AUC"] == "0.830"
    assert tables["model-events"]["rows"][0]["event"] == "promoted"
    statistics = {row["statistic"]: row for row in tables["statistics"]["rows"]}
    assert statistics["psi"]["threshold"] == "0.05"
    assert any("Drift critical" in e.value for e in at.error)


def test_table_html_escapes_every_cell():
    """Messages, versions and reasons are data: markup in them is shown as text, never run."""
    table = Table({"version <i>": ['v1"<img src=x onerror=alert(1)>'], "message": ["<script>alert(1)</script> & more"],
                     "reason": ["line one\nline two :material/home:"], "ROC AUC": [float("nan")], "threshold": [None]})
    out = table_html(table, name='a"b', formats={"ROC AUC": "%.3f"}, row_styles=["background-color: #fde2e1"])
    assert "<script" not in out and "<img" not in out and "<i>" not in out
    assert "\n" not in out  # one line: Markdown keeps it one HTML block
    assert ":material/" not in out  # Streamlit's Markdown would draw an icon
    assert "max-height: 360px" in out and "overflow: auto" in out
    [(name, parsed)] = read_tables(out).items()
    assert name == 'a"b' and parsed["headers"] == list(table.names)
    assert parsed["rows"] == [{"version <i>": 'v1"<img src=x onerror=alert(1)>',
                               "message": "<script>alert(1)</script> & more",
                               "reason": "line one\nline two :material/home:",
                               "ROC AUC": MISSING_CELL, "threshold": MISSING_CELL}]
    assert parsed["styles"] == ["background-color: #fde2e1"]


NO_DATAFRAME_SCRIPT = """
import json, os, sys

import plotly.io

import rtml.ui.app as app
from rtml.config import load_settings
from rtml.simulation import FEATURES
from rtml.storage import connect_readonly
from rtml.ui import data, panels

drawn = {"tables": [], "figures": 0}
table_html, to_json = panels.table_html, plotly.io.to_json

def recording_table_html(table, **kwargs):
    drawn["tables"].append(kwargs["name"])
    return table_html(table, **kwargs)

def recording_to_json(figure, *args, **kwargs):  # what st.plotly_chart serialises a figure with
    drawn["figures"] += 1
    return to_json(figure, *args, **kwargs)

panels.table_html, plotly.io.to_json = recording_table_html, recording_to_json
settings = load_settings(environ=os.environ)
conn = connect_readonly(settings.db_path)
snapshot = data.load_snapshot(conn, window_s=24 * 3600.0)

def load_distribution(feature, ref, ref_label, cur, cur_label, ref_version):
    return data.load_distribution(conn, feature=feature, reference_window=ref, current_window=cur,
                                  reference_label=ref_label, current_label=cur_label, reference_version=ref_version)

for feature in FEATURES:  # every panel, with every feature's statistics and distribution
    app.st.session_state["feature"] = feature
    assert app.draw_live_panels(snapshot, settings, load_distribution)
drawn["loaded"] = sorted(m for m in sys.modules if m.partition(".")[0] in ("pandas", "pyarrow"))
print(json.dumps(drawn))
"""


def test_dashboard_path_never_imports_pandas(seeded):
    """A fresh interpreter imports the app and draws every panel, for every feature, with Streamlit's own
    element code (bare mode): neither pandas nor pyarrow may end up imported."""
    home, settings, _ = seeded
    env = dict(os.environ, RTML_HOME=str(home), RTML_STORAGE_DB_PATH=str(settings.db_path),
               RTML_CONFIG=str(PROJECT / "config.toml"), PYTHONPATH=str(PROJECT))
    proc = subprocess.run([sys.executable, "-c", NO_DATAFRAME_SCRIPT], cwd=PROJECT, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    drawn = json.loads(proc.stdout.strip().splitlines()[-1])
    assert drawn["loaded"] == []
    assert set(drawn["tables"]) == {"alerts", "statistics", "versions", "model-events", "health"}
    assert drawn["figures"] >= 5 * len(FEATURES)  # heatmap, statistics, distribution, truth, performance


def test_feature_picker_switches_the_distribution(seeded, monkeypatch):
    home, _, _ = seeded
    at = _app(monkeypatch, home).run()
    assert at.selectbox(key="feature").value in DRIFTING
    at.selectbox(key="feature").set_value("region").run()
    assert not at.exception, at.exception
    dist = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if json.loads(c.proto.spec)["data"][0]["type"] == "bar")
    assert sorted(dist["data"][0]["x"]) == ["east", "north", "south", "west"]


def test_live_refresh_sees_new_rows(seeded, monkeypatch, tmp_path):
    """A rerun after the detector writes shows the new alert (the fragment's work, done by hand)."""
    home, settings, facts = seeded
    copy = tmp_path / "home"
    (copy / "data").mkdir(parents=True)
    src = connect_readonly(settings.db_path)
    dst = connect(copy / "data" / "monitoring.db")
    src.backup(dst)
    at = _app(monkeypatch, copy).run()
    with transaction(dst):
        dst.execute("INSERT INTO alerts (created_at, real_time, severity, source, message, details) "
                    "VALUES (?,?,?,?,?,?)", (facts["end"] - 1, time.time(), "warning", "drift", "fresh alert", "[]"))
    time.sleep(settings.dashboard.min_refresh_seconds + 0.1)  # the query cache's TTL
    at.run()
    assert not at.exception, at.exception
    assert _metrics(at)["Alerts, last 24 sim h"][0] == "3"


def test_empty_database_shows_a_message(tmp_path, monkeypatch):
    settings = make_settings(tmp_path)
    connect(settings.db_path).close()  # schema, no rows
    at = _app(monkeypatch, tmp_path).run()
    assert not at.exception, at.exception
    assert any("holds no data yet" in i.value for i in at.info)


def test_missing_database_shows_a_message(tmp_path, monkeypatch):
    at = _app(monkeypatch, tmp_path).run()
    assert not at.exception, at.exception
    assert any("No database yet" in i.value for i in at.info)


def test_early_state_without_detector(tmp_path, monkeypatch):
    """Only the generator has run: no checks, no model, no alerts — messages, not exceptions."""
    settings = make_settings(tmp_path)
    conn = connect(settings.db_path)
    Generator(settings, conn).backfill_baseline()
    Generator(settings, conn).replay(0.01)
    at = _app(monkeypatch, tmp_path).run()
    assert not at.exception, at.exception
    metrics = _metrics(at)
    assert metrics["Champion model"][0] == "none yet"
    assert metrics["Last drift check"][0] == "none yet"
    infos = " ".join(i.value for i in at.info)
    assert "No drift checks" in infos and "No model yet" in infos
    assert at.get("plotly_chart")  # the distribution (baseline vs newest hour) still draws


def test_performance_follows_the_serving_version_through_a_promotion_and_a_rollback():
    from rtml.ui.transforms import serving_performance

    perf = Table({"window_end": [10.0, 20.0, 20.0, 30.0, 30.0, 40.0],
                  "model_version": ["v1.0", "v1.0", "v1.1", "v1.0", "v1.1", "v1.0"],
                  "roc_auc": [0.70, 0.62, 0.71, 0.69, 0.72, 0.70]})
    changes = Table({"at": [15.0, 25.0], "version": ["v1.1", "v1.0"]})  # promotion, then rollback
    kept = serving_performance(perf, changes)
    assert list(zip(kept["window_end"].tolist(), kept["model_version"].tolist())) == [
        (10.0, "v1.0"), (20.0, "v1.1"), (30.0, "v1.0"), (40.0, "v1.0")]
    assert serving_performance(perf, Table.no_rows(["at", "version"])).equals(perf)
