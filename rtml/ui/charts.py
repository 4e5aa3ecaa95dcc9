"""Plotly figure builders of the dashboard: :class:`~rtml.table.Table` and numpy arrays
in, ``go.Figure`` out (no Streamlit, no I/O, no pandas)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from rtml.table import Table
from rtml.ui.transforms import (PVALUE_STATISTICS, SEVERITY_COLOURS, SEVERITY_ORDER, STATISTIC_LABELS,
                                fmt_time, to_datetime)

PROMOTION_COLOUR = "#2ca02c"
REFERENCE_COLOUR = "#1f77b4"
CURRENT_COLOUR = "#ff7f0e"
#: Vertical event lines drawn per chart at most (the newest are kept).
MAX_EVENT_LINES = 60


def _layout(fig: go.Figure, *, height: int, title: str | None = None) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      title=dict(text=title, x=0, font=dict(size=14)) if title else None,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      hovermode="closest")
    return fig


def _floats(values) -> np.ndarray:
    """``values`` as ``float64`` (``None`` → ``nan``)."""
    return np.asarray(values, dtype=np.float64)


def _has_values(values) -> bool:
    """Whether any of ``values`` is a number (not ``nan``/``None``)."""
    return bool(len(values)) and not np.isnan(_floats(values)).all()


def _rows_where(table: Table, column: str, value: str) -> Table:
    """The rows of ``table`` whose ``column`` equals ``value``."""
    return table.where(table[column] == value)


def _vline_shapes(times, *, colour: str, width: float, dash: str | None,
                  opacity: float = 1.0) -> list[dict]:
    """Vertical lines across the whole plot area as plain shape dicts (on the shared x axis; one
    shape per event, not one per subplot: ``fig.add_vline`` per subplot is slow in plotly)."""
    return [dict(type="line", xref="x", yref="paper", x0=t, x1=t, y0=0, y1=1, opacity=opacity, layer="below",
                 line=dict(color=colour, width=width, dash=dash)) for t in to_datetime(times).tolist()]


def _event_traces_and_shapes(alerts: Table, changes: Table, *, marker_y: float | None = None,
                             axes: dict | None = None) -> tuple[list[go.Scatter], list[dict]]:
    """Markers and vertical lines where alerts fired (by severity) and where the model version changed.

    ``axes`` (e.g. ``{"xaxis": "x", "yaxis": "y"}``) puts the markers on one subplot.
    """
    axes = axes or {}
    traces, shapes = [], []
    for severity in SEVERITY_ORDER:
        sub = _rows_where(alerts, "severity", severity).take(slice(0, MAX_EVENT_LINES))
        if not len(sub):
            continue
        shapes += _vline_shapes(sub["created_at"], colour=SEVERITY_COLOURS[severity], width=1, dash="dot",
                                opacity=0.6)
        traces.append(go.Scatter(x=to_datetime(sub["created_at"]), y=[marker_y] * len(sub), mode="markers",
                                 marker=dict(color=SEVERITY_COLOURS[severity], symbol="triangle-down", size=10),
                                 name=f"{severity} alert", text=sub["message"].tolist(), showlegend=True,
                                 hovertemplate="%{x}<br>%{text}<extra></extra>", **axes))
    tail = changes.take(slice(-MAX_EVENT_LINES, None))
    if len(tail):
        shapes += _vline_shapes(tail["at"], colour=PROMOTION_COLOUR, width=2, dash=None)
        traces.append(go.Scatter(x=to_datetime(tail["at"]), y=[marker_y] * len(tail), mode="markers",
                                 marker=dict(color=PROMOTION_COLOUR, symbol="star", size=12),
                                 name="model version change", showlegend=True,
                                 text=[f"{e.replace('_', ' ')} {v}" for e, v in zip(tail["event"], tail["version"])],
                                 hovertemplate="%{x}<br>%{text}<extra></extra>", **axes))
    return traces, shapes


def _stacked_axes(n: int, *, spacing: float, titles: list[str], title_size: int) -> dict:
    """The layout ``make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=spacing,
    subplot_titles=titles)`` builds — axes, domains and title annotations — as a plain dict
    (make_subplots itself costs more than the rest of the figure)."""
    heights = [(1.0 - spacing * (n - 1)) / n] * n
    layout: dict = {}
    annotations = []
    for i in range(1, n + 1):
        suffix = "" if i == 1 else str(i)
        k = n - i  # rows below this one (make_subplots' arithmetic, so the domains match it exactly)
        bottom = min(max(sum(heights[:k]) + k * spacing, 0.0), 1.0)
        top = min(max(bottom + heights[i - 1], 0.0), 1.0)
        xaxis = {"anchor": f"y{suffix}", "domain": [0.0, 1.0]}
        if i < n:
            xaxis.update(matches=f"x{n}", showticklabels=False)
        layout[f"xaxis{suffix}"] = xaxis
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "domain": [bottom, top]}
        annotations.append({"font": {"size": title_size}, "showarrow": False, "text": titles[i - 1], "x": 0.5,
                            "xanchor": "center", "xref": "paper", "y": top, "yanchor": "bottom", "yref": "paper"})
    layout["annotations"] = annotations
    return layout


def drift_statistics_figure(series: Table, alerts: Table, changes: Table, *,
                            feature: str) -> go.Figure:
    """One feature's statistics over time, one panel each, with its threshold as a dashed line.

    P-values are on a log axis (drift is *below* the line); effect sizes drift *above* it. The
    stacked panels are laid out by hand (what ``make_subplots(shared_xaxes=True)`` would build)
    and the figure is validated once, in one constructor call.
    """
    stats = list(dict.fromkeys(series["statistic"].tolist()))
    n = max(len(stats), 1)
    titles = [STATISTIC_LABELS.get(s, s) + (" (log; drift below line)" if s in PVALUE_STATISTICS
                                            else " (drift above line)") for s in stats]
    layout = _stacked_axes(n, spacing=0.04, titles=titles + [""] * (n - len(titles)), title_size=12)
    if not stats:
        layout["annotations"] = []
    traces = []
    for i, stat in enumerate(stats, start=1):
        axes = dict(xaxis=f"x{i if i > 1 else ''}", yaxis=f"y{i if i > 1 else ''}")
        part = _rows_where(series, "statistic", stat)
        traces.append(go.Scatter(x=part["time"], y=part["value"], mode="lines", name=STATISTIC_LABELS.get(stat, stat),
                                 line=dict(color="#1f77b4", width=1.8), showlegend=False, **axes))
        if _has_values(part["threshold"]):
            traces.append(go.Scatter(x=part["time"], y=part["threshold"], mode="lines", name="threshold",
                                     line=dict(color="#d62728", width=1.5, dash="dash", shape="hv"),
                                     showlegend=i == 1, legendgroup="threshold", **axes))
        if stat in PVALUE_STATISTICS:
            layout[f"yaxis{i if i > 1 else ''}"]["type"] = "log"
    events, shapes = _event_traces_and_shapes(alerts, changes, axes=dict(xaxis="x", yaxis="y") if n > 1 else None)
    layout["shapes"] = shapes
    return _layout(go.Figure(data=traces + events, layout=layout), height=100 + 150 * n)


def heatmap_figure(features: list[str], times: np.ndarray, score: np.ndarray, drifted: np.ndarray) -> go.Figure:
    """Features × checks coloured by the strongest statistic ÷ its threshold (red ≥ 1 = past it)."""
    hover = np.where(np.isnan(drifted), "no result", np.where(drifted > 0, "DRIFTED", "not drifted"))
    fig = go.Figure(go.Heatmap(
        z=score, x=times, y=features, zmin=0, zmax=3, customdata=hover,
        colorscale=[[0.0, "#e8f5e9"], [0.2, "#a5d6a7"], [1 / 3, "#fff59d"], [0.55, "#ff9800"], [1.0, "#b71c1c"]],
        colorbar=dict(title=dict(text="stat ÷<br>threshold"), tickvals=[0, 1, 2, 3], ticktext=["0", "1", "2", "≥3"]),
        hovertemplate="%{y}<br>%{x}<br>score %{z:.2f}<br>%{customdata}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=90 + 28 * max(len(features), 1), title="Which features drift, check by check")


def _shares(values: np.ndarray) -> dict[str, float]:
    """Each distinct value (as text) → its share of ``values``."""
    categories, counts = np.unique(np.array([str(v) for v in values], dtype=str), return_counts=True)
    return {str(c): n / counts.sum() for c, n in zip(categories, counts.tolist())}


def distribution_figure(reference: np.ndarray, current: np.ndarray, *, kind: str, reference_label: str,
                        current_label: str, bins: int = 40) -> go.Figure:
    """Reference vs current: overlaid histograms (numerical) or grouped share bars (categorical)."""
    fig = go.Figure()
    if kind == "categorical":
        ref_share, cur_share = _shares(reference), _shares(current)
        cats = sorted(set(ref_share) | set(cur_share))
        fig.add_trace(go.Bar(x=cats, y=[ref_share.get(c, 0.0) for c in cats], name=f"{reference_label} · n={len(reference):,}",
                             marker_color=REFERENCE_COLOUR))
        fig.add_trace(go.Bar(x=cats, y=[cur_share.get(c, 0.0) for c in cats], name=f"{current_label} · n={len(current):,}",
                             marker_color=CURRENT_COLOUR))
        fig.update_layout(barmode="group", yaxis_title="share of rows", yaxis_tickformat=".0%")
    else:
        values = np.concatenate([_floats(reference), _floats(current)])
        if len(values):
            lo, hi = np.nanquantile(values, [0.0, 0.995])
            edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
            for data, label, colour in ((reference, reference_label, REFERENCE_COLOUR),
                                        (current, current_label, CURRENT_COLOUR)):
                counts, _ = np.histogram(np.clip(_floats(data), edges[0], edges[-1]), bins=edges)
                share = counts / max(counts.sum(), 1)
                fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=share, width=np.diff(edges),
                                     name=f"{label} · n={len(data):,}", marker_color=colour, opacity=0.55))
        fig.update_layout(barmode="overlay", yaxis_title="share of rows", yaxis_tickformat=".0%", bargap=0)
    return _layout(fig, height=340)


def performance_figure(performance: Table, changes: Table, *,
                       metrics: tuple[str, ...] = ("roc_auc", "accuracy", "f1")) -> go.Figure:
    """Window metrics over time, one colour per metric, with version changes as green lines."""
    labels = {"roc_auc": "ROC AUC", "accuracy": "accuracy", "f1": "F1", "precision": "precision", "recall": "recall"}
    fig = go.Figure()
    times = to_datetime(performance["window_end"])
    for metric in metrics:
        if metric in performance and _has_values(performance[metric]):
            fig.add_trace(go.Scatter(x=times, y=_floats(performance[metric]), mode="lines",
                                     name=labels.get(metric, metric), customdata=performance["model_version"].tolist(),
                                     hovertemplate="%{x}<br>%{y:.3f} (model %{customdata})<extra></extra>"))
    empty = Table.no_rows(["created_at", "severity", "message"])
    events, shapes = _event_traces_and_shapes(empty, changes, marker_y=1.0)
    fig.add_traces(events)
    fig.update_layout(shapes=shapes, yaxis_title="metric over the window")
    return _layout(fig, height=340)


def truth_figure(checks: Table, alerts: Table, *, onset_s: float | None,
                 first_critical_s: float | None) -> go.Figure:
    """The simulator's true drift intensity and the detector's share of drifted features, with alerts."""
    fig = go.Figure()
    times = to_datetime(checks["checked_at"])
    if "true_intensity" in checks and _has_values(checks["true_intensity"]):
        fig.add_trace(go.Scatter(x=times, y=_floats(checks["true_intensity"]), mode="lines", name="true drift intensity (simulator)",
                                 line=dict(color="#444", width=2), fill="tozeroy", fillcolor="rgba(68,68,68,0.12)"))
    fig.add_trace(go.Scatter(x=times, y=_floats(checks["share_drifted"]), mode="lines", name="share of features drifted (detector)",
                             line=dict(color="#1f77b4", width=1.5)))
    drift_alerts = _rows_where(alerts, "source", "drift")
    for severity in SEVERITY_ORDER:
        sub = _rows_where(drift_alerts, "severity", severity)
        if len(sub):
            fig.add_trace(go.Scatter(x=to_datetime(sub["created_at"]), y=[1.08] * len(sub), mode="markers",
                                     marker=dict(color=SEVERITY_COLOURS[severity], symbol="triangle-down", size=11),
                                     name=f"{severity} drift alert", text=sub["message"].tolist(),
                                     hovertemplate="%{x}<br>%{text}<extra></extra>"))
    shapes = []
    first_check_s = float(np.min(_floats(checks["checked_at"]))) if len(checks) else None
    if first_check_s is not None and onset_s is not None and onset_s >= first_check_s:
        shapes += _vline_shapes([onset_s], colour="#444", width=1.5, dash="dash")
        fig.add_trace(go.Scatter(x=to_datetime([onset_s]), y=[0], mode="markers", name=f"drift began {fmt_time(onset_s)}",
                                 marker=dict(color="#444", size=9, symbol="circle")))
    if first_check_s is not None and first_critical_s is not None and first_critical_s >= first_check_s:
        shapes += _vline_shapes([first_critical_s], colour=SEVERITY_COLOURS["critical"], width=1.5,
                                dash="dash")
    fig.update_layout(shapes=shapes)
    fig.update_yaxes(range=[0, 1.15], title="intensity / share")
    return _layout(fig, height=320)
