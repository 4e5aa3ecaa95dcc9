"""The dashboard page: settings → read-only connection → cached snapshot → panels.

``dashboard.py`` calls :func:`main`. Connections are shared per database file through
``st.cache_resource``; query results through ``st.cache_data`` with a TTL, so any number of open
tabs costs one set of queries per refresh interval. The live part of the page is one
``st.fragment`` that reruns every ``refresh_sim_seconds / speed`` real seconds (never more often
than ``min_refresh_seconds``).
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from rtml.config import ConfigError, Settings, load_settings
from rtml.health import process_stats
from rtml.simulation import FEATURES
from rtml.storage import StorageError, connect_readonly, database_exists
from rtml.storage.heartbeats import sim_now
from rtml.ui import data, panels
from rtml.ui.transforms import fmt_time

HISTORY_WINDOWS_H = {"6 hours": 6, "24 hours": 24, "3 days": 72, "7 days": 168}
DISTRIBUTION_SAMPLE_ROWS = 5000


@dataclass(frozen=True)
class Database:
    """A shared read-only connection and the lock that serialises its use across sessions."""

    path: str
    conn: object
    lock: threading.Lock


def refresh_interval_s(settings: Settings, speed: float) -> float:
    """Real seconds between live refreshes: ``refresh_sim_seconds / speed``, at least ``min_refresh_seconds``.

    Examples
    --------
    >>> from rtml.config import load_settings
    >>> s = load_settings(environ={}, config_file="/dev/null")
    >>> refresh_interval_s(s, 1.0), refresh_interval_s(s, 600.0)
    (30.0, 2.0)
    """
    return max(settings.dashboard.refresh_sim_seconds / max(speed, 1e-9), settings.dashboard.min_refresh_seconds)


@st.cache_resource(show_spinner=False, max_entries=4)
def _open_database(target: str, file_id: tuple, label: str | None = None) -> Database:
    """One read-only connection per database (a new SQLite file at the same path gets a new one)."""
    panels.clear_figure_cache()  # figures are keyed by row ids, which a new database reuses
    return Database(path=label or target, conn=connect_readonly(target), lock=threading.Lock())


@st.cache_resource(show_spinner=False)
def _cached_loaders(ttl_s: float):
    """``cache_data`` wrappers of the data functions, with the TTL from the settings."""

    def snapshot(db_key: tuple, window_s: float, _db: Database) -> data.Snapshot:
        with _db.lock:
            return data.load_snapshot(_db.conn, window_s=window_s)

    def distribution(db_key: tuple, feature: str, ref: tuple | None, ref_label: str, cur: tuple | None,
                     cur_label: str, ref_version: str | None, _db: Database) -> data.Distribution:
        with _db.lock:
            return data.load_distribution(_db.conn, feature=feature, reference_window=ref, current_window=cur,
                                          limit=DISTRIBUTION_SAMPLE_ROWS, reference_label=ref_label,
                                          current_label=cur_label, reference_version=ref_version)

    cache = st.cache_data(ttl=ttl_s, show_spinner=False, max_entries=64)
    return cache(snapshot), cache(distribution)


_frozen = False


def _freeze_long_lived_objects() -> None:
    """Once, after the first full render (every module the page uses is imported by then): collect,
    then move the surviving objects out of the cycle collector's sight (:func:`gc.freeze`).

    Streamlit runs a full collection after every script run (``runner.postScriptGC``); with
    plotly, Streamlit and (then) pandas loaded that walked ~10^5 long-lived objects, ~100 ms of CPU per
    refresh. Afterwards it only walks what the runs allocate. Reference counting still frees
    everything as before."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def _process_stats(pid: int | None) -> dict | None:
    """CPU (average since start: no blocking), RSS and uptime of ``pid`` on this host."""
    return process_stats(int(pid), cpu_interval_s=None) if pid else None


def _settings() -> Settings:
    """The settings, loaded once per browser session."""
    if "settings" not in st.session_state:
        st.session_state["settings"] = load_settings(environ=os.environ)
    return st.session_state["settings"]


def _database(settings: Settings) -> Database | None:
    """The shared connection, or ``None`` while the database (file, or rtml's schema) does not exist."""
    if settings.uses_postgres:
        if not database_exists(settings):
            return None
        db = _open_database(settings.database_url, ("postgresql",), settings.database_label)
        if getattr(db.conn, "closed", False):  # the server went away: reconnect
            _open_database.clear()
            db = _open_database(settings.database_url, ("postgresql",), settings.database_label)
        return db
    path = Path(settings.db_path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return _open_database(str(path), (info.st_dev, info.st_ino))


def main() -> None:
    """Draw the page."""
    st.set_page_config(page_title="rtml · model monitoring", page_icon="📈", layout="wide")
    st.title("rtml · live model monitoring")
    try:
        settings = _settings()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        return
    try:
        db = _database(settings)
    except StorageError as exc:
        st.error(str(exc))
        return
    if db is None:
        _wait_for_database(settings)
        return
    with db.lock:
        _, speed = sim_now(db.conn)
    interval = refresh_interval_s(settings, speed)
    window_label = st.sidebar.radio("History shown (simulated)", list(HISTORY_WINDOWS_H), index=1, key="window")
    st.sidebar.caption(f"Database: `{db.path}` (read-only)  \nLive panels refresh every {interval:g} real s "
                       f"(= {settings.dashboard.refresh_sim_seconds:g} simulated s at ×{speed:g}).")
    window_s = HISTORY_WINDOWS_H[window_label] * 3600.0
    load_snapshot, load_distribution = _cached_loaders(float(settings.dashboard.min_refresh_seconds))

    @st.fragment(run_every=interval)
    def live() -> None:
        snapshot = load_snapshot((db.path, id(db)), window_s, db)
        if draw_live_panels(snapshot, settings,
                            lambda *sides: load_distribution((db.path, id(db)), *sides, db)):
            _freeze_long_lived_objects()

    live()


#: ``(feature, reference_window, reference_label, current_window, current_label, reference_version)``
#: → the samples the distribution panel compares (see :func:`rtml.ui.data.load_distribution`).
DistributionLoader = Callable[..., data.Distribution]


def draw_live_panels(snapshot: data.Snapshot, settings: Settings, load_distribution: DistributionLoader) -> bool:
    """Every live panel of one refresh, top to bottom (what the page's fragment reruns).

    Parameters
    ----------
    snapshot : Snapshot
        What this refresh shows (:func:`rtml.ui.data.load_snapshot`).
    settings : Settings
    load_distribution : callable
        Samples the picked feature's reference and current windows (cached in the app).

    Returns
    -------
    bool
        Whether the panels were drawn (``False``: the database holds no data yet; a message says so).
    """
    if not snapshot.has_data and not snapshot.heartbeats:
        st.info("The database exists but holds no data yet: start the generator "
                "(`./run_system.sh start` or `python data_generator.py`). This page updates by itself.")
        return False
    health = panels.component_health(snapshot, settings, _process_stats)
    status = panels.current_status(snapshot, settings)
    panels.summary_banner(snapshot, settings, status, health)
    panels.header_kpis(snapshot, settings, status)
    panels.drift_heatmap(snapshot)
    feature = panels.feature_picker(snapshot)
    ref, ref_label, cur, cur_label = data.reference_and_current_windows(
        snapshot, current_window_s=settings.drift.window_minutes * 60)
    ref_version = ((snapshot.latest_check or {}).get("reference_version")
                   or (snapshot.champion or {}).get("version"))
    dist = load_distribution(feature, ref, ref_label, cur, cur_label, ref_version) if feature in FEATURES else None
    left, right = st.columns(2)
    with left:
        panels.drift_statistics(snapshot, feature)
    with right:
        st.markdown(f"**{feature}: reference vs current**")
        panels.distribution_panel(snapshot, dist)
    panels.alerts_panel(snapshot)
    panels.truth_panel(snapshot)
    panels.performance_panel(snapshot)
    panels.health_panel(health, settings)
    st.caption(f"Data read in {snapshot.load_ms:.0f} ms · showing simulated "
               f"{fmt_time(snapshot.since_s)} → {fmt_time(snapshot.now_s)} (UTC).")
    return True


def _wait_for_database(settings: Settings) -> None:
    """The no-database state: say what to do, and look again every few seconds."""
    st.info(f"No database yet at `{settings.database_label}`. Start the system with `./run_system.sh start` "
            "(or `python data_generator.py`); this page picks it up by itself.")

    @st.fragment(run_every=settings.dashboard.min_refresh_seconds * 2)
    def poll() -> None:
        if database_exists(settings):
            st.rerun()

    poll()
