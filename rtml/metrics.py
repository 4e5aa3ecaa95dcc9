"""Prometheus metrics of rtml, served by the detector on ``/metrics`` (see the README).

Two kinds of metrics share one dedicated :class:`prometheus_client.CollectorRegistry` (never
the global one, so tests and tools can build several):

* **database-derived** — :class:`RtmlCollector` reads them at scrape time through its own
  read-only connection: the latest drift check per feature, dataset drift, alerts by
  severity, the champion, the newest performance window by version, rows ingested and scored,
  component heartbeats. A handful of bounded, indexed queries (:mod:`rtml.storage.metrics`)
  in one short read transaction; the numbers are the database's, so they survive a detector
  restart and agree with the dashboard.
* **in-process** — drift-check and training durations, Histograms the detector observes
  through :class:`DetectorMetrics`.

:class:`DetectorMetrics` is the detector's whole interface::

    metrics = DetectorMetrics(settings)
    metrics.start()                    # serves http://<metrics.host>:<metrics.port>/metrics
    metrics.observe_check(0.42)        # seconds one drift check took
    metrics.observe_training(12.5)     # seconds one challenger training took
    metrics.stop()

A port already in use (or any other bind failure) is logged as an error naming the address and
the setting to change, and the detector carries on without ``/metrics``.
"""

from __future__ import annotations

import errno
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from rtml.config import Settings
from rtml.storage import StorageError, connect_readonly, describe_target
from rtml.storage import metrics as store
from rtml.storage.heartbeats import read_heartbeats, sim_now
from rtml.storage.monitoring import SEVERITIES
from rtml.storage.db import Connection, DatabaseError, read_snapshot
from rtml.storage.models import max_scored_id

log = logging.getLogger(__name__)

PREFIX = "rtml"
DRIFT_STATISTICS = ("psi", "ks_statistic", "ks_pvalue", "js_distance", "chi2_statistic", "chi2_pvalue",
                    "missing_rate_reference", "missing_rate_current")
"""Per-feature statistics exported as ``rtml_drift_feature_statistic{statistic=...}`` (NULLs are skipped)."""
PERFORMANCE_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier", "base_rate")
"""Model metrics exported per version as ``rtml_model_performance{metric=...}``."""
DOWN_STATES = frozenset(("stopped", "exited", "down", "failed", "gave_up"))
"""Heartbeat states that mean the component is not running, however fresh the heartbeat."""
ALERT_WINDOW_S = 86400.0       # rtml_alerts_last_24h: alerts of the last 24 simulated hours
ALERT_CHUNK_ROWS = 10_000      # alerts read per query when bringing rtml_alerts_total up to date
ALERT_MAX_CHUNKS = 20          # ... and at most this many queries per scrape (the rest next scrape)
CHECK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TRAINING_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
MAX_SCRAPE_BUSY_MS = 1000      # a scrape never waits longer than this for a database lock


def _finite(value) -> float | None:
    """``value`` as a finite float, or ``None`` (NULL, NaN, inf, not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _iso(seconds) -> str:
    number = _finite(seconds)
    if number is None:
        return ""
    return datetime.fromtimestamp(number, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RtmlCollector(Collector):
    """Reads rtml's state from the database at scrape time (see the README for every metric).

    Parameters
    ----------
    settings : Settings
        ``settings.database_url`` is the database; ``settings.dashboard.heartbeat_stale_seconds``
        decides ``rtml_component_up``.
    db_path : str or Path, default=None
        Another database: a SQLite file or a database URL (default ``settings.database_url``).
    real_clock : callable, default=time.time
        Wall clock, for heartbeat ages.

    Notes
    -----
    Scrapes may come from several HTTP threads at once; a lock serialises them over the one
    read-only connection (``check_same_thread=False``). A database error never fails the
    scrape: the database-derived families are left out, ``rtml_exporter_database_up`` is 0
    and the connection is reopened on the next scrape.
    """

    def __init__(self, settings: Settings, *, db_path: str | Path | None = None,
                 real_clock: Callable[[], float] = time.time):
        self.settings = settings
        self.db_path = db_path if db_path is not None else settings.database_url
        self.real_clock = real_clock
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._alert_last_id = 0
        self._alert_totals = dict.fromkeys(SEVERITIES, 0)
        self._last_error: str | None = None

    # -- connection -----------------------------------------------------------------------------
    def _connection(self) -> Connection:
        if self._conn is None:
            busy = min(int(self.settings.storage.busy_timeout_ms), MAX_SCRAPE_BUSY_MS)
            self._conn = connect_readonly(self.db_path, busy_timeout_ms=busy)
        return self._conn

    def close(self) -> None:
        """Close the read-only connection (the next scrape reopens it)."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except DatabaseError:
                pass
            self._conn = None

    # -- the scrape -----------------------------------------------------------------------------
    def describe(self) -> list[Metric]:
        """Nothing up front: the families depend on the data (and describing must not query)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every database-derived family, read in one consistent snapshot."""
        began = time.perf_counter()
        with self._lock:
            try:
                conn = self._connection()
                with read_snapshot(conn):
                    families = self._families(conn)
                ok = 1.0
                if self._last_error is not None:
                    log.info("Metrics: database readable again")
                self._last_error = None
            except (*DatabaseError, StorageError) as exc:
                families, ok = [], 0.0
                message = str(exc)
                (log.debug if message == self._last_error else log.warning)(
                    "Metrics: cannot read the database %s (%s); serving exporter metrics only",
                    describe_target(self.db_path), message)
                self._last_error = message
                self._close_locked()
        yield from families
        yield GaugeMetricFamily(f"{PREFIX}_exporter_database_up",
                                "1 if the last scrape read the database, 0 if it failed", value=ok)
        yield GaugeMetricFamily(f"{PREFIX}_exporter_scrape_duration_seconds",
                                "Real seconds the last scrape spent reading the database",
                                value=time.perf_counter() - began)

    def _families(self, conn: Connection) -> list[Metric]:
        out: list[Metric] = []
        now_sim, speed = sim_now(conn)
        out += self._clock(now_sim, speed)
        out += self._drift(conn)
        out += self._alerts(conn, now_sim)
        out += self._models(conn)
        out += self._throughput(conn)
        out += self._components(conn)
        return out

    def _clock(self, now_sim: float | None, speed: float) -> list[Metric]:
        out = []
        if now_sim is not None:
            out.append(GaugeMetricFamily(f"{PREFIX}_sim_time_seconds",
                                         "Simulated now (unix seconds) on the generator's clock", value=now_sim))
        out.append(GaugeMetricFamily(f"{PREFIX}_sim_speed", "Simulated seconds per real second", value=speed))
        return out

    def _drift(self, conn: Connection) -> list[Metric]:
        checks = CounterMetricFamily(f"{PREFIX}_drift_checks", "Drift checks ever run (the highest check id)")
        checks.add_metric([], store.checks_high_water(conn))
        out: list[Metric] = [checks]
        check = store.latest_check(conn)
        if check is None:
            return out
        out.append(GaugeMetricFamily(f"{PREFIX}_drift_last_check_timestamp_seconds",
                                     "Simulated time of the latest drift check", value=check["checked_at"]))
        out.append(InfoMetricFamily(f"{PREFIX}_drift_last_check", "The latest drift check",
                                    value={"status": str(check["status"]), "policy": str(check["policy"]),
                                           "reference_version": str(check["reference_version"] or "")}))
        out.append(GaugeMetricFamily(f"{PREFIX}_drift_dataset_drift",
                                     "1 if the latest check found dataset drift, else 0",
                                     value=1.0 if check["dataset_drift"] else 0.0))
        out.append(GaugeMetricFamily(f"{PREFIX}_drift_features_drifted",
                                     "Features that drifted in the latest check", value=check["n_drifted"]))
        out.append(GaugeMetricFamily(f"{PREFIX}_drift_share_drifted",
                                     "Share of features that drifted in the latest check",
                                     value=check["share_drifted"]))
        rows = GaugeMetricFamily(f"{PREFIX}_drift_window_rows", "Rows compared by the latest check",
                                 labels=["window"])
        rows.add_metric(["reference"], check["n_reference"])
        rows.add_metric(["current"], check["n_current"])
        out.append(rows)
        intensity = _finite(check["true_intensity"])
        if intensity is not None:
            out.append(GaugeMetricFamily(f"{PREFIX}_drift_true_intensity",
                                         "Simulated ground-truth drift intensity of the latest check's window",
                                         value=intensity))
        stats = GaugeMetricFamily(f"{PREFIX}_drift_feature_statistic",
                                  "A drift statistic of one feature in the latest check", labels=["feature", "statistic"])
        drifted = GaugeMetricFamily(f"{PREFIX}_drift_feature_drifted",
                                    "1 if the feature drifted in the latest check, else 0", labels=["feature"])
        for result in store.check_results(conn, check["id"]):
            drifted.add_metric([result["feature"]], 1.0 if result["drifted"] else 0.0)
            for name in DRIFT_STATISTICS:
                value = _finite(result[name])
                if value is not None:
                    stats.add_metric([result["feature"], name], value)
        out += [stats, drifted]
        return out

    def _alerts(self, conn: Connection, now_sim: float | None) -> list[Metric]:
        high = store.alerts_high_water(conn)
        if high < self._alert_last_id:  # the database was reset or replaced: count afresh
            self._alert_last_id, self._alert_totals = 0, dict.fromkeys(SEVERITIES, 0)
        for _ in range(ALERT_MAX_CHUNKS):
            rows = store.alerts_after(conn, after_id=self._alert_last_id, limit=ALERT_CHUNK_ROWS)
            for alert_id, severity in rows:
                self._alert_totals[severity] = self._alert_totals.get(severity, 0) + 1
                self._alert_last_id = alert_id
            if len(rows) < ALERT_CHUNK_ROWS:
                break
        totals = CounterMetricFamily(f"{PREFIX}_alerts", "Alerts stored since the database was created, by severity",
                                     labels=["severity"])
        for severity, n in sorted(self._alert_totals.items()):
            totals.add_metric([severity], n)
        recent = GaugeMetricFamily(f"{PREFIX}_alerts_last_24h", "Alerts of the last 24 simulated hours, by severity",
                                   labels=["severity"])
        counts = store.alert_counts_since(conn, since_s=now_sim - ALERT_WINDOW_S) if now_sim is not None else {}
        for severity in sorted(set(SEVERITIES) | set(counts)):
            recent.add_metric([severity], counts.get(severity, 0))
        return [totals, recent]

    def _models(self, conn: Connection) -> list[Metric]:
        out: list[Metric] = []
        champion = store.champion(conn)
        if champion is not None:
            out.append(InfoMetricFamily(f"{PREFIX}_champion", "The champion model serving predictions",
                                        value={"version": str(champion["version"]),
                                               "promoted_at": _iso(champion["promoted_at"]),
                                               "train_end": _iso(champion["train_end"])}))
            validation = GaugeMetricFamily(f"{PREFIX}_champion_validation_metric",
                                           "The champion's metrics on its held-out validation slice",
                                           labels=["version", "metric"])
            for name in PERFORMANCE_METRICS:
                value = _finite(champion["metrics"].get(name))
                if value is not None:
                    validation.add_metric([str(champion["version"]), name], value)
            out.append(validation)
        rows = store.latest_performance(conn)
        if rows:
            perf = GaugeMetricFamily(f"{PREFIX}_model_performance",
                                     "A metric of each model version over the latest performance window",
                                     labels=["version", "metric"])
            n_rows = GaugeMetricFamily(f"{PREFIX}_model_performance_rows",
                                       "Labelled predictions of each version in the latest performance window",
                                       labels=["version"])
            for row in rows:
                version = str(row["model_version"])
                n_rows.add_metric([version], row["n_rows"])
                for name in PERFORMANCE_METRICS:
                    value = _finite(row[name])
                    if value is not None:
                        perf.add_metric([version, name], value)
            out += [perf, n_rows, GaugeMetricFamily(
                f"{PREFIX}_model_performance_window_end_seconds",
                "Simulated end of the latest performance window", value=rows[0]["window_end"])]
        return out

    def _throughput(self, conn: Connection) -> list[Metric]:
        ingested = store.interactions_high_water(conn)
        baseline = store.baseline_last_id(conn)
        scored_to = max_scored_id(conn)
        total_in = CounterMetricFamily(f"{PREFIX}_rows_ingested", "Interactions the generator ever wrote")
        total_in.add_metric([], ingested)
        total_scored = CounterMetricFamily(f"{PREFIX}_rows_scored",
                                           "Interactions the detector ever scored (all rows after the baseline)")
        total_scored.add_metric([], max(scored_to - baseline, 0))
        backlog = GaugeMetricFamily(f"{PREFIX}_scoring_backlog_rows", "Interactions written but not yet scored",
                                    value=max(ingested - max(scored_to, baseline), 0))
        return [total_in, total_scored, backlog]

    def _components(self, conn: Connection) -> list[Metric]:
        stale_s = self.settings.dashboard.heartbeat_stale_seconds
        now = self.real_clock()
        up = GaugeMetricFamily(f"{PREFIX}_component_up",
                               f"1 if the component's heartbeat is fresh (at most {stale_s:g} real seconds old) "
                               "and its state is not stopped, else 0", labels=["component"])
        age = GaugeMetricFamily(f"{PREFIX}_component_heartbeat_age_seconds",
                                "Real seconds since the component's last heartbeat", labels=["component"])
        for name, beat in read_heartbeats(conn).items():
            seconds = max(beat.age_s(now), 0.0)
            age.add_metric([name], seconds)
            up.add_metric([name], 1.0 if seconds <= stale_s and beat.state not in DOWN_STATES else 0.0)
        return [up, age]


@dataclass
class MetricsServer:
    """A running ``/metrics`` HTTP server (from :func:`start_metrics_server`)."""

    server: object
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop serving, close the socket and join the server thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout_s)


def start_metrics_server(settings: Settings, registry: CollectorRegistry) -> MetricsServer | None:
    """Serve ``registry`` on ``http://<metrics.host>:<metrics.port>/metrics`` in a daemon thread.

    Parameters
    ----------
    settings : Settings
        ``settings.metrics`` gives the address.
    registry : CollectorRegistry
        What to serve.

    Returns
    -------
    MetricsServer or None
        The running server; ``None`` if it could not bind (the error is logged, naming the
        address and the settings to change — the caller carries on without metrics).
    """
    host, port = settings.metrics.host, settings.metrics.port
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.error("Cannot serve Prometheus metrics on %s:%d: port %d is already in use (another detector or "
                      "exporter?). Set metrics.port (RTML_METRICS_PORT) to a free port, or metrics.enabled = false "
                      "(RTML_METRICS_ENABLED=false). The detector keeps running without /metrics.", host, port, port)
        else:
            log.error("Cannot serve Prometheus metrics on %s:%d: %s. Check metrics.host (RTML_METRICS_HOST) and "
                      "metrics.port (RTML_METRICS_PORT), or set metrics.enabled = false. The detector keeps running "
                      "without /metrics.", host, port, exc)
        return None
    served = MetricsServer(server, thread, host, int(server.server_address[1]))
    log.info("Serving Prometheus metrics on %s", served.url)
    return served


class DetectorMetrics:
    """The detector's metrics: the database collector, duration Histograms and the HTTP server.

    Parameters
    ----------
    settings : Settings
        ``settings.metrics`` (enabled, host, port) and ``settings.database_url``.
    db_path : str or Path, default=None
        Another database (file or URL) for the collector (default ``settings.database_url``).
    registry : CollectorRegistry, default=None
        Where to register (default: a new, dedicated registry).

    Notes
    -----
    Observing works whether or not the server runs, so the detector can call
    :meth:`observe_check` and :meth:`observe_training` unconditionally; they never raise.
    """

    def __init__(self, settings: Settings, *, db_path: str | Path | None = None,
                 registry: CollectorRegistry | None = None):
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.collector = RtmlCollector(settings, db_path=db_path)
        self.registry.register(self.collector)
        self.check_duration = Histogram(f"{PREFIX}_drift_check_duration_seconds",
                                        "Real seconds one drift check took (window read, statistics, storing "
                                        "and the performance update)", buckets=CHECK_BUCKETS, registry=self.registry)
        self.training_duration = Histogram(f"{PREFIX}_training_duration_seconds",
                                           "Real seconds one challenger training took (in the background thread)",
                                           buckets=TRAINING_BUCKETS, registry=self.registry)
        self.server: MetricsServer | None = None

    @property
    def url(self) -> str | None:
        """The ``/metrics`` URL while serving, else ``None``."""
        return self.server.url if self.server else None

    def start(self) -> bool:
        """Start serving if ``metrics.enabled``; returns whether ``/metrics`` is being served."""
        if self.server is not None:
            return True
        if not self.settings.metrics.enabled:
            log.info("Prometheus metrics disabled (metrics.enabled = false)")
            return False
        self.server = start_metrics_server(self.settings, self.registry)
        return self.server is not None

    def stop(self) -> None:
        """Stop serving and close the collector's database connection (safe to call twice)."""
        server, self.server = self.server, None
        if server is not None:
            try:
                server.close()
            except Exception:  # noqa: BLE001 - shutting down metrics must never stop the detector
                log.exception("Stopping the metrics server failed")
        self.collector.close()

    def observe_check(self, seconds: float | None) -> None:
        """Record how long one drift check took (real seconds; ``None``/NaN/negative are ignored)."""
        value = _finite(seconds)
        if value is not None and value >= 0:
            self.check_duration.observe(value)

    def observe_training(self, seconds: float | None) -> None:
        """Record how long one challenger training took (real seconds; ``None``/NaN/negative ignored)."""
        value = _finite(seconds)
        if value is not None and value >= 0:
            self.training_duration.observe(value)

    @contextmanager
    def time_check(self) -> Iterator[None]:
        """Time the block as one drift check: ``with metrics.time_check(): ...``."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.observe_check(time.perf_counter() - began)
