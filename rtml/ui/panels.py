"""The dashboard's panels: each takes a :class:`~rtml.ui.data.Snapshot` and draws one section.

Every panel reads like an outline — pick → transform → chart — and shows a plain message
instead of an empty chart when its data does not exist yet.

Tables are drawn by :func:`show_table` as escaped HTML (:func:`table_html`), not with
``st.dataframe``: Streamlit's data elements serialise through Arrow and would load pandas and
pyarrow (~78 MiB) into the dashboard process.
"""

from __future__ import annotations

import html
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import streamlit as st

from rtml.config import Settings
from rtml.simulation import FEATURES
from rtml.storage.heartbeats import Heartbeat
from rtml.table import Table, is_missing
from rtml.ui import charts
from rtml.ui.data import Distribution, Snapshot
from rtml.ui.transforms import (SEVERITY_ORDER, DriftStatus, alerts_table, default_feature, drift_since, drift_status,
                                events_table, fmt_duration, fmt_time, health_table, heatmap_matrix,
                                model_action_sentence, models_table, statistic_series,
                                serving_performance, supervised_components, version_changes)

STATUS_DELTA_COLOURS = {"critical": "red", "warning": "orange", "watch": "yellow", "ok": "green", "unknown": "gray"}
MAX_CACHED_FIGURES = 24

#: Tables taller than this scroll (their header stays in view).
TABLE_MAX_HEIGHT_PX = 360
#: What an empty cell shows.
MISSING_CELL = "—"
SEVERITY_ROW_STYLES = {"critical": "background-color: #fde2e1", "warning": "background-color: #fff1dc",
                       "info": "background-color: #e3f0fb"}
HEALTH_ROW_STYLES = {"STALE": "background-color: #fde2e1; color: #b71c1c",
                     "not running": "background-color: #fde2e1; color: #b71c1c", "stopped": "color: #666"}
_TABLE_BOX_STYLE = (f"max-height: {TABLE_MAX_HEIGHT_PX}px; overflow: auto; margin-bottom: 1rem; "
                    "border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem")
_TABLE_STYLE = "width: 100%; border-collapse: collapse; font-size: 0.85rem; margin: 0"
_HEAD_CELL_STYLE = ("position: sticky; top: 0; background-color: #f0f2f6; color: #31333f; text-align: left; "
                    "padding: 0.3rem 0.5rem; white-space: nowrap; border: none")
_CELL_STYLE = "padding: 0.25rem 0.5rem; vertical-align: top; border: none; border-top: 1px solid rgba(49, 51, 63, 0.1)"
_NO_WRAP = "; white-space: nowrap"
_WRAP = "; white-space: normal; min-width: 16rem"

_figures: OrderedDict = OrderedDict()
_figures_lock = threading.Lock()


def _rows_key(table: Table, column: str) -> tuple:
    """Identity of an insert-only table's rows: count, first and last id."""
    if not len(table) or column not in table:
        return (len(table),)
    return len(table), int(table[column][0]), int(table[column][-1])


# -- tables ----------------------------------------------------------------------------------------

def cell_text(value, number_format: str | None = None) -> str:
    """One table cell as plain text: ``—`` when missing, numbers in ``number_format`` (printf style).

    Parameters
    ----------
    value : object
    number_format : str, optional
        E.g. ``"%.3f"``; applied to numbers only.

    Returns
    -------
    str

    Examples
    --------
    >>> cell_text(None), cell_text(float("nan"), "%.3f"), cell_text(0.81234, "%.3f"), cell_text(12.0, "%d")
    ('—', '—', '0.812', '12')
    """
    if is_missing(value):
        return MISSING_CELL
    if number_format is not None and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return number_format % value
    return str(value)


def _escaped(text: str) -> str:
    """``text`` safe inside HTML, shown as it is: on one line (line breaks as ``<br>``, so Markdown keeps
    the table one HTML block) and with ``:`` as ``&#58;`` (Streamlit's Markdown would turn
    ``:material/name:`` into an icon)."""
    escaped = html.escape(text, quote=True).replace(":", "&#58;")
    return escaped.replace("\r\n", "<br>").replace("\n", "<br>").replace("\r", "<br>")


def table_html(table: Table, *, name: str, formats: Mapping[str, str] | None = None,
               row_styles: Sequence[str] | None = None, wrap: Sequence[str] = ()) -> str:
    """``table`` as one line of HTML: a scrolling box (at most :data:`TABLE_MAX_HEIGHT_PX` high,
    sticky header) around a ``<table data-table="name">``.

    Every header and cell is escaped (:func:`html.escape`): messages, versions and reasons are
    data. Missing values show as :data:`MISSING_CELL`.

    Parameters
    ----------
    table : Table
        The rows, in display order; column names are the headings.
    name : str
        Identifies the table in the page (``data-table`` attribute; tests find it by this).
    formats : mapping of str to str, optional
        Column → printf-style number format (``"%.3f"``).
    row_styles : sequence of str, optional
        One inline CSS declaration list per row (``""``: none), e.g. a background colour.
    wrap : sequence of str, optional
        Columns of long text that wrap onto several lines; the others stay on one line (the box
        scrolls sideways when they do not fit).

    Returns
    -------
    str

    Examples
    --------
    >>> table_html(Table({"message": ["<b>x</b>"], "v": [None]}), name="t")  # doctest: +ELLIPSIS
    '<div ...<th ...>message</th>...<td ...>&lt;b&gt;x&lt;/b&gt;</td><td ...>—</td></tr></tbody></table></div>'
    """
    formats = formats or {}
    head = "".join(f'<th style="{_HEAD_CELL_STYLE}">{_escaped(column)}</th>' for column in table.names)
    cell_styles = [_CELL_STYLE + (_WRAP if column in wrap else _NO_WRAP) for column in table.names]
    body = []
    for i, row in enumerate(table.rows()):
        style = row_styles[i] if row_styles is not None else ""
        cells = "".join(f'<td style="{cell_style}">{_escaped(cell_text(value, formats.get(column)))}</td>'
                        for column, value, cell_style in zip(table.names, row, cell_styles))
        body.append(f'<tr style="{html.escape(style)}">{cells}</tr>' if style else f"<tr>{cells}</tr>")
    return (f'<div style="{_TABLE_BOX_STYLE}"><table data-table="{html.escape(name)}" style="{_TABLE_STYLE}">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def show_table(table: Table, *, name: str, formats: Mapping[str, str] | None = None,
               row_styles: Sequence[str] | None = None, wrap: Sequence[str] = ()) -> None:
    """Draw ``table`` with :func:`table_html` (Markdown with HTML: no Arrow, so no pandas).

    Parameters
    ----------
    table : Table
    name : str
    formats : mapping of str to str, optional
    row_styles : sequence of str, optional
    wrap : sequence of str, optional
        See :func:`table_html`.
    """
    st.markdown(table_html(table, name=name, formats=formats, row_styles=row_styles, wrap=wrap),
                unsafe_allow_html=True)


def clear_figure_cache() -> None:
    """Forget every cached figure (another database file: its ids mean other rows)."""
    with _figures_lock:
        _figures.clear()


def _figure(key: tuple, build: Callable[[], object]):
    """The figure for ``key``, built once: a refresh whose data did not change (no new check,
    alert, model event or performance window) reuses it instead of building it again.

    Keys name the rows a chart is drawn from (the tables are insert-only), so equal keys mean
    equal figures. Shared by all sessions; Streamlit only reads a figure (``to_dict``)."""
    with _figures_lock:
        fig = _figures.get(key)
        if fig is not None:
            _figures.move_to_end(key)
            return fig
    fig = build()
    with _figures_lock:
        _figures[key] = fig
        while len(_figures) > MAX_CACHED_FIGURES:
            _figures.popitem(last=False)
    return fig


def current_status(snapshot: Snapshot, settings: Settings) -> DriftStatus:
    """The drift verdict of the newest check (see :func:`rtml.ui.transforms.drift_status`)."""
    return drift_status(snapshot.latest_check, snapshot.latest_results,
                        critical_share=settings.alerts.critical_share,
                        critical_min_features=settings.alerts.critical_min_features)


def component_health(snapshot: Snapshot, settings: Settings, stats_of: Callable[[int | None], object]) -> Table:
    """The health table, with this dashboard's own process added when no heartbeat speaks for it."""
    beats = dict(snapshot.heartbeats)
    managed = supervised_components(beats)
    if "dashboard" not in beats and "dashboard" not in managed:  # run without the supervisor
        beats["dashboard"] = Heartbeat("dashboard", os.getpid(), snapshot.real_now, None, None, None,
                                       "serving", {})
    pids = [b.pid for b in beats.values()] + [r.get("pid") for r in managed.values() if isinstance(r, dict)]
    stats = {pid: stats_of(pid) for pid in pids if pid}
    return health_table(beats, stats, real_now=snapshot.real_now, stale_s=settings.dashboard.heartbeat_stale_seconds)


# -- 0. plain-language summary -------------------------------------------------------------------

def summary_banner(snapshot: Snapshot, settings: Settings, status: DriftStatus, health: Table) -> None:
    """Three sentences a newcomer reads first: what drifts since when, what the system did, health."""
    since, before_window = drift_since(snapshot.checks, quiet_checks=settings.alerts.n)
    now = snapshot.now_s
    if status.level in ("critical", "warning"):
        names = ", ".join(status.drifted_features) or "several features"
        when = (f"since before {fmt_time(snapshot.since_s)}" if before_window else
                f"since {fmt_time(since)} ({fmt_duration(now - since)} ago)" if since is not None and now else "")
        drift = f"**Drift {status.level}:** {status.n_drifted} of {status.n_features} features drift ({names}) {when}."
    elif status.level == "watch":
        drift = (f"**Watching:** {', '.join(status.drifted_features)} drift, but fewer than "
                 f"{settings.drift.min_drifted_features} features — no dataset drift.")
    elif status.level == "ok":
        drift = f"**No drift:** the newest check found all {status.n_features} features in line with the reference."
    else:
        drift = f"**Drift unknown:** {status.label}."
    counts = snapshot.alert_counts
    alerts = ", ".join(f"{counts[s]} {s}" for s in SEVERITY_ORDER if counts.get(s)) or "no"
    action = model_action_sentence(snapshot.model_events, since if since is not None else snapshot.since_s)
    champ = snapshot.champion
    did = f"**What the system did:** {alerts} alert(s) in the last 24 simulated hours"
    did += f"; {action}." if action else (f"; champion model {champ['version']} keeps serving." if champ
                                          else "; no model trained yet.")
    verdicts = list(zip(health["component"].tolist(), health["health"].tolist()))
    unhealthy = [name for name, verdict in verdicts if verdict in ("STALE", "not running")]
    stopped = [name for name, verdict in verdicts if verdict == "stopped"]
    if unhealthy:
        sys_line = f"**System:** attention — {', '.join(unhealthy)} not healthy (see System health)."
    elif stopped:
        sys_line = f"**System:** {', '.join(stopped)} stopped; the others are healthy."
    else:
        sys_line = f"**System:** all {len(health)} components healthy."
    body = "  \n".join([drift, did, sys_line])
    box = {"critical": st.error, "warning": st.warning, "watch": st.warning, "ok": st.success}.get(status.level, st.info)
    box(body)


# -- 1. header KPIs ----------------------------------------------------------------------------------

def header_kpis(snapshot: Snapshot, settings: Settings, status: DriftStatus) -> None:
    """Clock, volumes, drift status, champion, open alerts and the age of the last check."""
    cols = st.columns(6)
    clock = fmt_time(snapshot.now_s)
    cols[0].metric("Simulated clock (UTC)", clock[11:] or clock, delta=f"{clock[:10]} · speed ×{snapshot.speed:g}",
                   delta_color="off", delta_arrow="off",
                   help="Simulated time from the generator's heartbeat; all windows below are simulated time.")
    cols[1].metric("Interactions / hour", f"{snapshot.counts.last_hour:,}",
                   delta=f"{snapshot.counts.generated:,} in total", delta_color="off", delta_arrow="off",
                   help=f"Interactions in the last simulated hour. In total: every interaction ever generated. Still stored (retention "
                        f"{settings.storage.retention_days:g} simulated days): {snapshot.counts.kept:,}.")
    check = snapshot.latest_check
    cols[2].metric("Drift status", status.level.upper() if status.level != "unknown" else "—",
                   delta=(f"{status.n_drifted}/{status.n_features} features drift" if check else status.label),
                   delta_color=STATUS_DELTA_COLOURS[status.level], delta_arrow="off",
                   help="From the newest drift check: critical/warning = dataset drift (alert rules), "
                        "watch = some features drift, ok = none.")
    champ, perf = snapshot.champion, snapshot.champion_performance
    if champ is None:
        cols[3].metric("Champion model", "none yet", delta="no model trained", delta_color="gray", delta_arrow="off")
    else:
        perf_text = (f"AUC {perf['roc_auc']:.3f} · acc {perf['accuracy']:.3f}" if perf and perf["roc_auc"] is not None
                     and perf["accuracy"] is not None else "no scored window yet")
        cols[3].metric("Champion model", champ["version"], delta=perf_text, delta_color="blue", delta_arrow="off",
                       help="ROC AUC and accuracy of the champion over its newest performance window"
                            + (f" (ending {fmt_time(perf['window_end'])}, {perf['n_rows']:,} rows)." if perf else "."))
    counts = snapshot.alert_counts
    total = sum(counts.values())
    breakdown = " · ".join(f"{counts[s]} {s}" for s in SEVERITY_ORDER if counts.get(s)) or "none"
    cols[4].metric("Alerts, last 24 sim h", f"{total:,}", delta=breakdown, delta_arrow="off",
                   delta_color="red" if counts.get("critical") else "orange" if counts.get("warning") else "gray")
    if check is None:
        cols[5].metric("Last drift check", "none yet", delta="detector has not checked", delta_color="gray",
                       delta_arrow="off")
    else:
        age = (snapshot.now_s - check["checked_at"]) if snapshot.now_s is not None else None
        late = age is not None and age > 3 * settings.drift.check_interval_minutes * 60
        cols[5].metric("Last drift check", f"{fmt_duration(age, compact=True)} ago", delta=f"at {fmt_time(check['checked_at'])}",
                       delta_color="red" if late else "gray", delta_arrow="off",
                       help=f"Simulated time since the newest check; one is due every "
                            f"{settings.drift.check_interval_minutes:g} simulated minutes.")


# -- 2. drift over time ----------------------------------------------------------------------------

def drift_heatmap(snapshot: Snapshot) -> None:
    """Features × checks heatmap."""
    st.subheader("Drift over time")
    if not len(snapshot.checks):
        st.info("No drift checks in this window yet. The detector compares the newest window with the reference "
                "every few simulated minutes once it has a champion model.")
        return
    key = ("heatmap", _rows_key(snapshot.checks, "id"), len(snapshot.results))
    st.plotly_chart(_figure(key, lambda: charts.heatmap_figure(*heatmap_matrix(snapshot.results, snapshot.checks))),
                    key="heatmap")
    st.caption("Each cell is one feature at one check: its strongest statistic divided by its threshold "
               "(1 = at the threshold; red = past it). Hover for the verdict.")


def feature_picker(snapshot: Snapshot) -> str:
    """The feature the two detail charts show (default: the most drifted one in the newest check)."""
    latest = snapshot.latest_results
    default = default_feature(latest)
    if "feature" not in st.session_state:
        st.session_state["feature"] = default
    return st.selectbox("Feature", FEATURES, key="feature",
                        help="Shown in the statistics and distribution charts below; "
                             "defaults to the most drifted feature of the newest check.")


def drift_statistics(snapshot: Snapshot, feature: str) -> None:
    """One feature's statistics over time with thresholds, alerts and promotions."""
    if not len(snapshot.checks):
        return
    key = ("drift_stats", feature, _rows_key(snapshot.checks, "id"), len(snapshot.results),
           _rows_key(snapshot.alerts, "id"), _rows_key(snapshot.model_events, "id"))

    def build():
        series = statistic_series(snapshot.results, snapshot.checks, feature)
        if not len(series):
            return False  # cached too: no statistics for this feature in these checks
        return charts.drift_statistics_figure(series, snapshot.alerts, version_changes(snapshot.model_events),
                                              feature=feature)

    fig = _figure(key, build)
    if fig is False:
        st.info(f"No statistics for {feature} in this window.")
        return
    st.markdown(f"**{feature}: drift statistics per check**")
    st.plotly_chart(fig, key="drift_stats")
    st.caption("Dotted lines: alerts (red critical, orange warning, blue info). Green lines: a new model "
               "version was promoted.")


# -- 3. alerts -------------------------------------------------------------------------------------

def alerts_panel(snapshot: Snapshot) -> None:
    """Alerts, newest first, colour-coded, with the evidence behind each."""
    st.subheader("Alerts")
    if not len(snapshot.alerts):
        st.success(f"No alerts since {fmt_time(snapshot.since_s)} (simulated).")
        return
    table = alerts_table(snapshot.alerts)
    show_table(table, name="alerts", row_styles=[SEVERITY_ROW_STYLES.get(s, "") for s in table["severity"]],
               wrap=("message", "features · value vs threshold"))


# -- 4. distribution comparison ----------------------------------------------------------------------

def distribution_panel(snapshot: Snapshot, dist: Distribution | None) -> None:
    """Reference vs current for the picked feature, with the newest check's statistics."""
    if dist is None or (not len(dist.reference) and not len(dist.current)):
        st.info("No interactions to compare yet.")
        return
    if not len(dist.reference):
        st.warning("The reference window has no rows left (deleted by retention?); showing the current side only.")
    key = ("distribution", dist.feature, dist.reference_window, dist.current_window, dist.reference_label,
           dist.current_label, len(dist.reference), len(dist.current),
           (snapshot.latest_check or {}).get("reference_version"))
    st.plotly_chart(_figure(key, lambda: charts.distribution_figure(
        dist.reference, dist.current, kind=dist.kind, reference_label=dist.reference_label,
        current_label=dist.current_label)), key="distribution")
    windows = []
    for label, window in ((dist.reference_label, dist.reference_window), (dist.current_label, dist.current_window)):
        if window:
            windows.append(f"{label}: {fmt_time(window[0])} → {fmt_time(window[1])}")
    st.caption(" · ".join(windows) + f" · newest ≤ {max(len(dist.reference), len(dist.current)):,} rows per side.")
    latest = snapshot.latest_results
    rows = latest.where(latest["feature"] == dist.feature)
    if len(rows):
        r = rows.row(0)
        stats = {k: r[k] for k in ("psi", "js_distance", "ks_statistic", "ks_pvalue", "chi2_pvalue")
                 if k in r and not is_missing(r[k])}
        thresholds = r["thresholds"] if isinstance(r["thresholds"], dict) else {}
        show_table(Table({"statistic": list(stats), "value": np.array([float(v) for v in stats.values()]),
                            "threshold": [thresholds.get(k) for k in stats]}),
                   name="statistics", formats={"value": "%.4g", "threshold": "%.4g"})
        verdict = "**drifted**" if r["drifted"] else "not drifted"
        st.caption(f"Newest check ({fmt_time(snapshot.latest_check['checked_at'])}): {dist.feature} {verdict}.")


# -- 5. model performance --------------------------------------------------------------------------

def performance_panel(snapshot: Snapshot) -> None:
    """Metrics over time with version changes; the version history and model events."""
    st.subheader("Model performance across versions")
    if snapshot.champion is None and not len(snapshot.models):
        st.info("No model yet: the detector trains the first one on the baseline, then scores every interaction.")
        return
    if len(snapshot.performance):
        key = ("performance", _rows_key(snapshot.performance, "id"), _rows_key(snapshot.model_events, "id"))
        changes = version_changes(snapshot.model_events)
        st.plotly_chart(_figure(key, lambda: charts.performance_figure(
            serving_performance(snapshot.performance, changes), changes)), key="performance")
        st.caption("Each point: the serving model's metrics over one window of labelled interactions. "
                   "Green lines: promotions.")
    else:
        st.info("No performance windows in this period yet.")
    left, right = st.columns(2)
    with left:
        st.markdown("**Version history**")
        show_table(models_table(snapshot.models), name="versions",
                   formats={"rows": "%d", "ROC AUC": "%.3f", "accuracy": "%.3f"}, wrap=("reason",))
    with right:
        st.markdown("**Model events**")
        if len(snapshot.model_events):
            show_table(events_table(snapshot.model_events), name="model-events", wrap=("reason",))
        else:
            st.caption("No model events in this window.")


# -- 6. system health ------------------------------------------------------------------------------

def health_panel(health: Table, settings: Settings) -> None:
    """Per component: state, pid, CPU, memory, uptime, restarts, heartbeat age (stale in red)."""
    st.subheader("System health")
    if not len(health):
        st.info("No component has written a heartbeat yet.")
        return
    show_table(health.drop(["stale"]), name="health", formats={"pid": "%d", "CPU %": "%.1f", "restarts": "%d"},
               row_styles=[HEALTH_ROW_STYLES.get(verdict, "") for verdict in health["health"]])
    st.caption(f"Stale = no heartbeat for more than {settings.dashboard.heartbeat_stale_seconds:g} real seconds. "
               "CPU % is the average since the process started; CPU and memory come from this machine's process table "
               "('—' when the pid is not running here).")


# -- 7. ground truth vs detection ------------------------------------------------------------------

def truth_panel(snapshot: Snapshot) -> None:
    """The simulator's true drift intensity against what the detector flagged, and the delay."""
    st.subheader("Ground truth vs detection")
    onset = snapshot.onset
    cols = st.columns(3)
    cols[0].metric("Simulated drift began", fmt_time(onset.onset_s) if onset else "not yet")
    cols[1].metric("First critical drift alert", fmt_time(onset.first_critical_s) if onset and onset.first_critical_s
                   else "not yet")
    cols[2].metric("Detection delay (sim)", fmt_duration(onset.delay_s) if onset and onset.delay_s is not None
                   else "not yet")
    if not len(snapshot.checks):
        st.info("No drift checks in this window yet.")
        return
    onset_s, first_critical_s = (onset.onset_s, onset.first_critical_s) if onset else (None, None)
    key = ("truth", _rows_key(snapshot.checks, "id"), _rows_key(snapshot.alerts, "id"), onset_s, first_critical_s)
    st.plotly_chart(_figure(key, lambda: charts.truth_figure(snapshot.checks, snapshot.alerts, onset_s=onset_s,
                                                             first_critical_s=first_critical_s)), key="truth")
    st.caption("Grey: the drift the simulator injected (mean over each check's window; the detector never sees it). "
               "Blue: the share of features the detector flagged. Triangles: drift alerts.")
