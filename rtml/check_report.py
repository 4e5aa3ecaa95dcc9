"""Reports of ``drift_detector.py check``: a text table, JSON and one self-contained HTML file.

Pure rendering: every function returns text. The HTML report draws its distribution overlays as
inline SVG (no JavaScript, no external resource), so it opens offline in any browser.

JSON schema (``schema_version`` 1)::

    {
      "schema_version": 1,
      "dataset_drift": true,              # the decision
      "status": "ok",                     # ok | partial | not_enough_data (then dataset_drift means unknown)
      "n_drifted": 3, "n_features": 10,   # drifted / usable features
      "share_drifted": 0.3,
      "policy": {"name": "calibrated", "params": {...}},
      "reference": {"path": "ref.csv", "n_rows": 3500},
      "current":   {"path": "cur.csv", "n_rows": 500},
      "ignored": ["id"], "warnings": [],
      "features": [                       # one entry per compared feature, in column order
        {"feature": "age", "kind": "numerical", "status": "ok", "drifted": true,
         "n_reference": 3500, "n_current": 500,               # usable (non-missing) values
         "missing_rate_reference": 0.0, "missing_rate_current": 0.0, "missing_changed": false,
         "psi": 0.12, "js_distance": 0.17, "ks_statistic": 0.16, "ks_pvalue": 1e-9,
         "chi2_statistic": null, "chi2_pvalue": null, "chi2_dof": null, "unseen_share": null,
         "thresholds": {"ks_pvalue": 0.0014, "psi": 0.05, "js_distance": 0.05, "ks_statistic": 0.05},
         "min_detectable_shift": 0.09,
         "evidence": {"statistic": "js_distance", "value": 0.17, "threshold": 0.05}}
      ]
    }

Statistics that do not apply to a feature's kind, or could not be computed, are ``null``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rtml.drift import NUMERICAL, DatasetResult, FeatureResult

SCHEMA_VERSION = 1
REF_COLOR = "#4C78A8"
CUR_COLOR = "#F58518"
MAX_CATEGORIES = 15
HIST_BINS = 30


@dataclass(frozen=True)
class Meta:
    """What the report says about its inputs."""

    reference_path: str
    current_path: str
    n_reference_rows: int
    n_current_rows: int
    ignored: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def to_dict(result: DatasetResult, meta: Meta) -> dict:
    """The JSON document as a dictionary (see the module docstring for the schema)."""
    d = result.to_dict()
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset_drift": d["dataset_drift"],
        "status": d["status"],
        "n_drifted": d["n_drifted"],
        "n_features": d["n_features"],
        "share_drifted": d["share_drifted"],
        "policy": d["policy"],
        "reference": {"path": meta.reference_path, "n_rows": meta.n_reference_rows},
        "current": {"path": meta.current_path, "n_rows": meta.n_current_rows},
        "ignored": list(meta.ignored),
        "warnings": list(meta.warnings),
        "features": d["features"],
    }


def to_json(result: DatasetResult, meta: Meta) -> str:
    """The report as JSON text (strict JSON: no NaN)."""
    return json.dumps(to_dict(result, meta), indent=2, allow_nan=False) + "\n"


# ------------------------------------------------------------------------------------------
# Table
# ------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 10 ** 6):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def decision_line(result: DatasetResult) -> str:
    """One sentence with the decision."""
    policy = result.policy["name"]
    if result.status == "not_enough_data":
        return f"Dataset drift: UNKNOWN (not enough data in any feature; policy {policy})"
    verdict = "YES" if result.dataset_drift else "no"
    return (f"Dataset drift: {verdict} ({result.n_drifted} of {result.n_features} features drifted; "
            f"policy {policy}, status {result.status})")


def _feature_row(f: FeatureResult) -> list[str]:
    pvalue = f.ks_pvalue if f.kind == NUMERICAL else f.chi2_pvalue
    alpha = f.thresholds.get("ks_pvalue" if f.kind == NUMERICAL else "chi2_pvalue")
    stat = f.ks_statistic if f.kind == NUMERICAL else f.chi2_statistic
    evidence = f"{f.evidence.statistic} {_num(f.evidence.value)} >= {_num(f.evidence.threshold)}" if f.evidence else ""
    if f.evidence and f.evidence.statistic.endswith("pvalue"):
        evidence = f"{f.evidence.statistic} {_num(f.evidence.value)} < {_num(f.evidence.threshold)}"
    verdict = "DRIFT" if f.drifted else ("-" if not f.usable else "ok")
    return [f.feature, f.kind[:3], verdict, _num(f.psi), _num(f.js_distance), _num(stat), _num(pvalue),
            _num(alpha, 4), str(f.n_reference), str(f.n_current), f.status if f.status != "ok" else "", evidence]


def to_table(result: DatasetResult, meta: Meta) -> str:
    """A fixed-width text table: one line per feature, then the decision."""
    header = ["feature", "kind", "verdict", "PSI", "JS", "KS D/chi2", "p-value", "alpha", "n_ref", "n_cur",
              "status", "decided by"]
    rows = [_feature_row(f) for f in result.features]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = [f"reference: {meta.reference_path} ({meta.n_reference_rows} rows)   "
             f"current: {meta.current_path} ({meta.n_current_rows} rows)"]
    if meta.ignored:
        lines.append(f"ignored: {', '.join(meta.ignored)}")
    lines.append("")
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append("")
    lines.append(decision_line(result))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# HTML with inline SVG
# ------------------------------------------------------------------------------------------

W, H, PAD_L, PAD_B, PAD_T, PAD_R = 420, 180, 44, 34, 10, 10


def _finite(series: pd.Series) -> np.ndarray:
    x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return x[np.isfinite(x)]


def histogram_shares(ref: np.ndarray, cur: np.ndarray, bins: int = HIST_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins over the central 99 % of both samples (outliers go to the end bins).

    Integer-valued samples spanning at most ``2 * bins`` values get one bin per integer.

    Returns the edges and the share of each sample per bin.
    """
    both = np.concatenate([ref, cur])
    lo, hi = np.quantile(both, [0.005, 0.995]) if both.size else (0.0, 1.0)
    if not hi > lo:
        lo, hi = float(both.min()) - 0.5, float(both.max()) + 0.5
    if both.size and np.all(both == np.round(both)) and hi - lo <= 2 * bins:  # integers: one bin per value
        lo, hi = float(np.floor(lo)) - 0.5, float(np.ceil(hi)) + 0.5
        edges = np.arange(lo, hi + 0.5, 1.0)
    else:
        edges = np.linspace(lo, hi, bins + 1)

    def shares(x: np.ndarray) -> np.ndarray:
        counts = np.histogram(np.clip(x, lo, hi), bins=edges)[0].astype(float)
        return counts / counts.sum() if counts.sum() else counts

    return edges, shares(ref), shares(cur)


def _y(share: float, top: float) -> float:
    return PAD_T + (H - PAD_T - PAD_B) * (1.0 - share / top)


def _axes(top: float, x_labels: Sequence[tuple[float, str]]) -> list[str]:
    parts = [f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="#888"/>',
             f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" stroke="#888"/>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end" class="tick">{top:.0%}</text>',
             f'<text x="{PAD_L - 4}" y="{H - PAD_B}" text-anchor="end" class="tick">0</text>']
    for x, label in x_labels:
        parts.append(f'<text x="{x:.1f}" y="{H - PAD_B + 14}" text-anchor="middle" class="tick">'
                     f'{html.escape(label)}</text>')
    return parts


def _fmt_edge(v: float) -> str:
    return f"{v:.3g}"


def numerical_svg(ref: np.ndarray, cur: np.ndarray) -> str:
    """Overlaid step histograms (shares) of reference and current."""
    if ref.size == 0 or cur.size == 0:
        return "<p><em>No data to draw.</em></p>"
    edges, r, c = histogram_shares(ref, cur)
    top = max(float(r.max()), float(c.max()), 1e-9) * 1.1
    x0, x1 = PAD_L, W - PAD_R
    xs = x0 + (x1 - x0) * (edges - edges[0]) / (edges[-1] - edges[0])

    def path(shares: np.ndarray) -> str:
        points = [f"{xs[0]:.1f},{H - PAD_B}"]
        for i, s in enumerate(shares):
            y = _y(float(s), top)
            points += [f"{xs[i]:.1f},{y:.1f}", f"{xs[i + 1]:.1f},{y:.1f}"]
        points.append(f"{xs[-1]:.1f},{H - PAD_B}")
        return " ".join(points)

    labels = [(xs[0], _fmt_edge(edges[0])), ((xs[0] + xs[-1]) / 2, _fmt_edge((edges[0] + edges[-1]) / 2)),
              (xs[-1], _fmt_edge(edges[-1]))]
    parts = _axes(top, labels)
    parts.append(f'<polygon points="{path(r)}" fill="{REF_COLOR}" fill-opacity="0.35" stroke="{REF_COLOR}"/>')
    parts.append(f'<polygon points="{path(c)}" fill="{CUR_COLOR}" fill-opacity="0.30" stroke="{CUR_COLOR}"/>')
    return _svg(parts)


def category_shares(ref: pd.Series, cur: pd.Series, limit: int = MAX_CATEGORIES) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Shares of the ``limit`` most frequent categories (by reference, then current) plus "(other)"."""
    rc = ref.dropna().astype(str).value_counts()
    cc = cur.dropna().astype(str).value_counts()
    names = list(dict.fromkeys(list(rc.index) + list(cc.index)))
    order = sorted(names, key=lambda n: (-rc.get(n, 0), -cc.get(n, 0), n))
    keep = order[:limit]
    r = np.array([rc.get(n, 0) for n in keep], dtype=float)
    c = np.array([cc.get(n, 0) for n in keep], dtype=float)
    if len(order) > limit:
        keep = keep + ["(other)"]
        r = np.append(r, rc.sum() - r.sum())
        c = np.append(c, cc.sum() - c.sum())
    r = r / r.sum() if r.sum() else r
    c = c / c.sum() if c.sum() else c
    return keep, r, c


def categorical_svg(ref: pd.Series, cur: pd.Series) -> str:
    """Side-by-side bars of category shares, reference and current."""
    names, r, c = category_shares(ref, cur)
    if not names:
        return "<p><em>No data to draw.</em></p>"
    top = max(float(r.max()), float(c.max()), 1e-9) * 1.1
    slot = (W - PAD_L - PAD_R) / len(names)
    bar = slot * 0.38
    parts = _axes(top, [])
    for i, name in enumerate(names):
        x = PAD_L + i * slot + slot * 0.1
        for j, (share, color) in enumerate(((r[i], REF_COLOR), (c[i], CUR_COLOR))):
            y = _y(float(share), top)
            parts.append(f'<rect x="{x + j * bar:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{H - PAD_B - y:.1f}" '
                         f'fill="{color}" fill-opacity="0.8"><title>{html.escape(name)}: '
                         f'{"reference" if j == 0 else "current"} {share:.1%}</title></rect>')
        label = name if len(name) <= 10 else name[:9] + "…"
        parts.append(f'<text x="{x + bar:.1f}" y="{H - PAD_B + 14}" text-anchor="middle" class="tick">'
                     f'{html.escape(label)}</text>')
    return _svg(parts)


def _svg(parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            f'role="img">' + "".join(parts) + "</svg>")


def _stats_table(f: FeatureResult) -> str:
    rows = [("status", f.status), ("usable values (reference / current)", f"{f.n_reference} / {f.n_current}"),
            ("missing rate (reference / current)",
             f"{_num(f.missing_rate_reference)} / {_num(f.missing_rate_current)}"
             + (" — changed" if f.missing_changed else ""))]
    names = (("psi", "PSI"), ("js_distance", "Jensen-Shannon distance"), ("ks_statistic", "KS statistic D"),
             ("ks_pvalue", "KS p-value"), ("chi2_statistic", "chi-square statistic"), ("chi2_pvalue", "chi-square p-value"),
             ("chi2_dof", "chi-square dof"), ("unseen_share", "share of unseen categories"))
    for key, label in names:
        value = getattr(f, key)
        if value is None:
            continue
        threshold = f.thresholds.get(key)
        shown = str(value) if key == "chi2_dof" else _num(value, 4)
        if threshold is not None:
            op = "<" if key.endswith("pvalue") else "≥"
            shown += f" (drift if {op} {_num(threshold, 4)})"
        rows.append((label, shown))
    if f.min_detectable_shift is not None:
        unit = "KS distance" if f.kind == NUMERICAL else "category share"
        rows.append(("smallest detectable shift", f"{_num(f.min_detectable_shift)} ({unit})"))
    if f.evidence is not None:
        rows.append(("decided by", f"{f.evidence.statistic} = {_num(f.evidence.value, 4)} "
                                   f"(threshold {_num(f.evidence.threshold, 4)})"))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="stats">{body}</table>'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px} .decision{font-size:18px;padding:10px 14px;border-radius:6px;margin:12px 0}
.drift{background:#fde2e1;border:1px solid #e57373} .nodrift{background:#e3f4e1;border:1px solid #81c784}
.unknown{background:#fff4d6;border:1px solid #e0b84a}
.feature{display:flex;gap:20px;align-items:flex-start;border-top:1px solid #ddd;padding:12px 0}
.feature h2{font-size:16px;margin:0 0 6px} .badge{font-size:12px;padding:2px 6px;border-radius:4px;margin-left:6px}
.b-drift{background:#e57373;color:#fff} .b-ok{background:#81c784;color:#fff} .b-na{background:#bbb;color:#fff}
table{border-collapse:collapse;font-size:13px} th,td{padding:3px 8px;text-align:left;border-bottom:1px solid #eee}
table.summary td,table.summary th{border:1px solid #ddd} .tick{font-size:10px;fill:#555}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px -2px 10px}
.meta{color:#555;font-size:13px}
"""


def _badge(f: FeatureResult) -> str:
    if not f.usable:
        return '<span class="badge b-na">no verdict</span>'
    return '<span class="badge b-drift">drifted</span>' if f.drifted else '<span class="badge b-ok">ok</span>'


def _summary_table(result: DatasetResult) -> str:
    head = "<tr><th>feature</th><th>kind</th><th>verdict</th><th>PSI</th><th>JS</th><th>KS D / χ²</th><th>p-value</th></tr>"
    rows = []
    for f in result.features:
        row = _feature_row(f)
        cells = [row[0], f.kind, row[2], row[3], row[4], row[5], row[6]]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="summary">{head}{"".join(rows)}</table>'


def to_html(result: DatasetResult, meta: Meta, *, reference: pd.DataFrame, current: pd.DataFrame) -> str:
    """One self-contained HTML page: the decision, a summary table, and per feature an overlay of
    the two distributions (inline SVG) with its statistics and thresholds."""
    css_class = "unknown" if result.status == "not_enough_data" else ("drift" if result.dataset_drift else "nodrift")
    params = ", ".join(f"{k}={v}" for k, v in result.policy.get("params", {}).items())
    sections = []
    for f in result.features:
        if f.kind == NUMERICAL:
            chart = numerical_svg(_finite(reference[f.feature]), _finite(current[f.feature]))
        else:
            chart = categorical_svg(reference[f.feature], current[f.feature])
        sections.append(f'<div class="feature"><div><h2>{html.escape(f.feature)} <small>({f.kind})</small>'
                        f'{_badge(f)}</h2>{chart}</div><div>{_stats_table(f)}</div></div>')
    notes = "".join(f"<li>{html.escape(w)}</li>" for w in meta.warnings)
    ignored = f"<p class='meta'>Ignored columns: {html.escape(', '.join(meta.ignored))}</p>" if meta.ignored else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title><style>{CSS}</style></head>
<body>
<h1>Drift report</h1>
<p class="meta">reference: {html.escape(meta.reference_path)} ({meta.n_reference_rows} rows) &nbsp;·&nbsp;
current: {html.escape(meta.current_path)} ({meta.n_current_rows} rows)</p>
<div class="decision {css_class}">{html.escape(decision_line(result))}</div>
<p class="meta">Policy {html.escape(result.policy.get("name", ""))}: {html.escape(params)}</p>
{ignored}{f"<ul>{notes}</ul>" if notes else ""}
{_summary_table(result)}
<p class="legend"><span style="background:{REF_COLOR}"></span>reference<span style="background:{CUR_COLOR}"></span>current
&nbsp; (shares; numerical charts use equal-width bins over the central 99 % of both samples, outliers in the end bins)</p>
{"".join(sections)}
</body></html>
"""
