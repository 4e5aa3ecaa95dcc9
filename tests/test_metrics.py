"""The Prometheus exporter (rtml.metrics) against a real database, and the Grafana dashboard over it."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rtml import performance, registry, scoring
from rtml.config import load_settings
from rtml.generator import Generator
from rtml.metrics import DetectorMetrics, RtmlCollector
from rtml.monitor import DriftMonitor
from rtml.storage import connect
from rtml.storage import models as model_store
from rtml.storage.heartbeats import write_heartbeat
from rtml.storage.interactions import read_window
from rtml.storage.monitoring import insert_alert
from tests.conftest import PROJECT, free_port, make_settings

DASHBOARD = PROJECT / "deploy" / "grafana" / "rtml-dashboard.json"
PROMETHEUS_CONFIG = PROJECT / "deploy" / "prometheus" / "prometheus.yml"


def scrape(url: str) -> dict[str, list]:
    """``{sample name: [Sample, ...]}`` of one scrape, parsed by prometheus_client's own parser."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    hits = [s for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, f"{name}{labels}: {hits}"
    return hits[0].value


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """A database with baseline + 72 simulated minutes, a champion, scored rows, a drift check,
    a performance window, alerts and heartbeats."""
    home = tmp_path_factory.mktemp("metrics")
    settings = make_settings(home, **{"simulation.n_customers": 500, "model.n_estimators": 10,
                                      "metrics.enabled": True, "metrics.port": free_port()})
    conn = connect(settings.db_path)
    gen = Generator(settings, conn)
    gen.backfill_baseline()
    gen.replay(0.05)
    now = gen.sim_time
    registry.ensure_initial_model(settings, conn, now_s=now)
    loaded = registry.load_champion(settings, conn, now_s=now)
    result = scoring.score_pending(conn, model=loaded.model, version=loaded.version,
                                   cursor=scoring.load_cursor(conn), batch_rows=5000, max_batches=100)
    assert not result.more_pending
    monitor = DriftMonitor(settings, conn)
    start = settings.sim_start_s
    baseline = read_window(conn, start_s=start - settings.simulation.baseline_days * 86400, end_s=start)
    monitor.set_reference(baseline, start_s=start - settings.simulation.baseline_days * 86400, end_s=start,
                          version=loaded.version)
    monitor.check(now - 600)
    monitor.check(now)
    performance.update_performance(conn, settings, now_s=now)
    for created_at, severity in ((now - 3 * 86400, "info"), (now - 3600, "warning"), (now - 60, "warning"),
                                 (now, "critical")):
        insert_alert(conn, created_at=created_at, severity=severity, source="drift", message="test alert")
    write_heartbeat(conn, component="detector", pid=1, state="running", sim_time=now)
    write_heartbeat(conn, component="supervisor", pid=2, state="running", real_time=time.time() - 3600)
    yield settings, conn
    conn.close()


@pytest.fixture(scope="module")
def served(system):
    """A running exporter over the system's database, and its first scrape."""
    settings, conn = system
    metrics = DetectorMetrics(settings)
    assert metrics.start()
    metrics.observe_check(0.2)
    metrics.observe_training(3.0)
    try:
        yield metrics, scrape(metrics.url)
    finally:
        metrics.stop()


def test_scrape_matches_the_database(system, served):
    settings, conn = system
    metrics, samples = served
    assert metrics.url == f"http://127.0.0.1:{settings.metrics.port}/metrics"
    assert value(samples, "rtml_exporter_database_up") == 1.0

    champion = model_store.read_champion(conn)
    info = samples["rtml_champion_info"]
    assert len(info) == 1 and info[0].labels["version"] == champion.version == "v1.0"
    assert value(samples, "rtml_champion_validation_metric", version="v1.0",
                 metric="roc_auc") == pytest.approx(champion.metrics["roc_auc"])

    check_id, dataset_drift, n_drifted, checked_at = conn.execute(
        "SELECT id, dataset_drift, n_drifted, checked_at FROM drift_checks ORDER BY checked_at DESC LIMIT 1").fetchone()
    assert value(samples, "rtml_drift_checks_total") == 2 == check_id
    assert value(samples, "rtml_drift_dataset_drift") == dataset_drift
    assert value(samples, "rtml_drift_features_drifted") == n_drifted
    assert value(samples, "rtml_drift_last_check_timestamp_seconds") == checked_at
    results = conn.execute("SELECT feature, drifted, psi, ks_statistic, js_distance, chi2_pvalue FROM drift_results "
                           "WHERE check_id = ?", (check_id,)).fetchall()
    assert len(results) == 10
    for feature, drifted, psi, ks, js, chi2_p in results:
        assert value(samples, "rtml_drift_feature_drifted", feature=feature) == drifted
        assert value(samples, "rtml_drift_feature_statistic", feature=feature, statistic="psi") == psi
        assert value(samples, "rtml_drift_feature_statistic", feature=feature, statistic="js_distance") == js
        for statistic, stored in (("ks_statistic", ks), ("chi2_pvalue", chi2_p)):
            exported = [s for s in samples["rtml_drift_feature_statistic"]
                        if s.labels == {"feature": feature, "statistic": statistic}]
            assert [s.value for s in exported] == ([] if stored is None else [stored])  # NULL: no sample

    n_rows = conn.execute("SELECT COUNT(*) FROM interactions").fetchone()[0]
    n_scored = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    assert n_scored > 1000
    assert value(samples, "rtml_rows_ingested_total") == n_rows
    assert value(samples, "rtml_rows_scored_total") == n_scored
    assert value(samples, "rtml_scoring_backlog_rows") == 0

    assert {s.labels["severity"]: s.value for s in samples["rtml_alerts_total"]} == {
        "info": 1, "warning": 2, "critical": 1}
    assert {s.labels["severity"]: s.value for s in samples["rtml_alerts_last_24h"]} == {
        "info": 0, "warning": 2, "critical": 1}  # the info alert is 3 simulated days old

    perf = dict(zip(("model_version", "roc_auc", "accuracy", "n_rows"), conn.execute(
        "SELECT model_version, roc_auc, accuracy, n_rows FROM performance ORDER BY window_end DESC LIMIT 1"
    ).fetchone()))
    assert value(samples, "rtml_model_performance", version=perf["model_version"], metric="roc_auc") == perf["roc_auc"]
    assert value(samples, "rtml_model_performance", version=perf["model_version"], metric="accuracy") == perf["accuracy"]
    assert value(samples, "rtml_model_performance_rows", version=perf["model_version"]) == perf["n_rows"]

    assert value(samples, "rtml_component_up", component="detector") == 1.0
    assert value(samples, "rtml_component_up", component="supervisor") == 0.0   # stale heartbeat
    assert value(samples, "rtml_component_up", component="generator") == 0.0    # replay finished: stopped
    assert value(samples, "rtml_component_heartbeat_age_seconds", component="supervisor") > 3000

    assert value(samples, "rtml_drift_check_duration_seconds_count") == 1
    assert value(samples, "rtml_drift_check_duration_seconds_sum") == pytest.approx(0.2)
    assert value(samples, "rtml_training_duration_seconds_count") == 1


def test_alert_totals_follow_new_alerts(system, served):
    settings, conn = system
    metrics, _ = served
    before = scrape(metrics.url)
    insert_alert(conn, created_at=settings.sim_start_s, severity="critical", source="supervisor", message="x")
    after = scrape(metrics.url)
    assert (value(after, "rtml_alerts_total", severity="critical")
            == value(before, "rtml_alerts_total", severity="critical") + 1)
    with metrics.time_check():
        pass
    assert value(scrape(metrics.url), "rtml_drift_check_duration_seconds_count") == 2


def test_disabled_serves_nothing(tmp_path, caplog):
    port = free_port()
    settings = make_settings(tmp_path, **{"metrics.enabled": False, "metrics.port": port})
    metrics = DetectorMetrics(settings)
    with caplog.at_level(logging.INFO, logger="rtml.metrics"):
        assert metrics.start() is False
    assert metrics.url is None and "disabled" in caplog.text
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    metrics.observe_check(0.1)  # observing still works and never raises
    metrics.stop()


def test_port_in_use_is_a_clear_error_not_a_crash(tmp_path, caplog):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = make_settings(tmp_path, **{"metrics.enabled": True, "metrics.port": port})
        metrics = DetectorMetrics(settings)
        with caplog.at_level(logging.ERROR, logger="rtml.metrics"):
            assert metrics.start() is False
        assert metrics.server is None
        message = caplog.text
        assert f"port {port} is already in use" in message and "metrics.port" in message
        assert "RTML_METRICS_PORT" in message and "keeps running" in message
        metrics.observe_training(1.0)
        metrics.stop()


def test_stop_releases_the_port(system):
    settings, _ = system
    port = free_port()
    metrics = DetectorMetrics(settings.replace(**{"metrics.port": port}))
    assert metrics.start()
    assert value(scrape(metrics.url), "rtml_exporter_database_up") == 1.0
    metrics.stop()
    metrics.stop()  # twice is fine
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # raises if the server still held the port


def test_unreadable_database_keeps_the_scrape_alive(tmp_path, caplog):
    settings = make_settings(tmp_path)  # no database created
    collector = RtmlCollector(settings)
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry()
    reg.register(collector)
    with caplog.at_level(logging.WARNING, logger="rtml.metrics"):
        text = generate_latest(reg).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["rtml_exporter_database_up"].samples[0].value == 0.0
    assert "rtml_rows_ingested" not in families
    assert "does not exist" in caplog.text
    collector.close()


def test_metrics_settings(tmp_path):
    settings = load_settings(environ={}, home=tmp_path, config_file=PROJECT / "config.toml")
    assert (settings.metrics.enabled, settings.metrics.host, settings.metrics.port) == (True, "127.0.0.1", 9108)
    env = load_settings(environ={"RTML_METRICS_ENABLED": "false", "RTML_METRICS_PORT": "9200"}, home=tmp_path,
                        config_file=PROJECT / "config.toml")
    assert env.metrics.enabled is False and env.metrics.port == 9200


# -- Grafana and Prometheus deployment files ---------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "le", "inf", "nan"}


def metric_names_in(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers left after removing label matchers, ranges,
    grouping clauses, function calls, strings, Grafana variables and numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)              # strings
    text = re.sub(r"\{[^}]*\}", "", text)                      # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                     # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)   # grouping labels
    text = re.sub(r"\$\{?\w+\}?", "", text)                    # Grafana variables
    text = re.sub(r"\b[a-zA-Z_]\w*\s*\(", "(", text)           # function names
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text))
    return {n for n in names if n.lower() not in PROMQL_WORDS}


def test_metric_name_extraction():
    assert metric_names_in('histogram_quantile(0.95, sum by (le) (rate(rtml_x_bucket{a=~"$i"}[$__rate_interval])))') \
        == {"rtml_x_bucket"}
    assert metric_names_in('rtml_a{statistic="psi"} / on (feature) rtml_b') == {"rtml_a", "rtml_b"}


def test_grafana_dashboard_structure(served):
    _, samples = served
    exported = set(samples)
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    uses_variable = {"type": "prometheus", "uid": "${datasource}"}
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == uses_variable
            assert metric_names_in(variable["query"]["query"].replace("label_values", "f")) <= exported | {"instance"}

    panels = dashboard["panels"]
    assert len(panels) >= 6
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    named: set[str] = set()
    for panel in panels:
        assert panel["title"] and panel["type"]
        assert set(panel["gridPos"]) >= {"x", "y", "w", "h"} and 0 <= panel["gridPos"]["x"] < 24
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"] == uses_variable, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no targets"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))
        for target in panel["targets"]:
            assert target.get("datasource", uses_variable) == uses_variable
            names = metric_names_in(target["expr"])
            assert names, f"{panel['title']}: {target['expr']!r} selects no metric"
            unknown = names - exported
            assert not unknown, f"{panel['title']}: {sorted(unknown)} not exported (have {sorted(exported)})"
            named |= names
    # The panels the issue asks for are there.
    for required in ("rtml_drift_feature_statistic", "rtml_drift_feature_drifted", "rtml_drift_dataset_drift",
                     "rtml_alerts_total", "rtml_model_performance", "rtml_rows_ingested_total",
                     "rtml_rows_scored_total", "rtml_component_up", "rtml_champion_info"):
        assert required in named, required


def test_prometheus_scrape_config():
    text = PROMETHEUS_CONFIG.read_text()
    assert "\t" not in text
    assert re.search(r"^scrape_configs:\s*$", text, re.M)
    assert re.search(r"^\s*- job_name: rtml-detector\s*$", text, re.M)
    assert re.search(r"^\s*metrics_path: /metrics\s*$", text, re.M)
    assert re.search(r'^\s*- targets: \["127\.0\.0\.1:9108"\]', text, re.M)
    assert Path(PROMETHEUS_CONFIG).parent.name == "prometheus"
