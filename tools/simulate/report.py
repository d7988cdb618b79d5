"""The report of a run: PNG plots and one HTML page (``write``); ``figures`` gives the
same plots as matplotlib figures for the notebook (notebooks/WhatIf.ipynb)."""

from __future__ import annotations

import html
from pathlib import Path

from .model import ASSUMED

PLOTS = (
    ("placement_days", "Placement days (search opened -> erfolgreich)"),
    ("open_searches", "Open searches per week"),
    ("rates", "Response and acceptance rate per week of sending"),
    ("staff", "Staff actions per placement (cumulative)"),
)


def _weekly_days(result) -> list:
    """The last simulated day of each week."""
    return [
        day
        for index, day in enumerate(result.days)
        if index % 7 == 6 or index == len(result.days) - 1
    ]


def figures(result) -> dict:
    """name -> matplotlib Figure, for each of ``PLOTS``."""
    from matplotlib.figure import Figure

    out = {}
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    values = result.placement_days
    if values:
        ax.hist(values, bins=range(0, max(values) + 8, 7), color="#4c78a8", edgecolor="white")
        mean = result.figures["placement_days_mean"]
        median = result.figures["placement_days_median"]
        ax.axvline(median, color="#f58518", linestyle="-", label=f"median {median:g} days")
        ax.axvline(mean, color="#e45756", linestyle="--", label=f"mean {mean:g} days")
        ax.axvline(30, color="#54a24b", linestyle=":", label="target: mean < 30")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no placement", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("days")
    ax.set_ylabel("placements")
    ax.set_title(PLOTS[0][1])
    out["placement_days"] = fig

    weeks = _weekly_days(result)
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    ax.plot([d.date for d in weeks], [d.open_searches for d in weeks], marker="o", color="#4c78a8")
    ax.set_ylabel("aktiv searches")
    ax.set_title(PLOTS[1][1])
    fig.autofmt_xdate()
    out["open_searches"] = fig

    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    labels = [row["week"] for row in result.weekly]
    ax.plot(
        labels, [row["response_rate"] for row in result.weekly], marker="o", label="response rate"
    )
    ax.plot(
        labels,
        [row["acceptance_rate"] for row in result.weekly],
        marker="s",
        label="acceptance rate",
    )
    ax.axhline(0.2, color="#54a24b", linestyle=":", label="target: acceptance > 20 %")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(PLOTS[2][1])
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    out["rates"] = fig

    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    points = [(d.date, d.staff_actions / d.placed_total) for d in weeks if d.placed_total]
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#b279a2")
    ax.set_ylabel("actions per placement")
    ax.set_title(PLOTS[3][1])
    fig.autofmt_xdate()
    out["staff"] = fig
    return out


def _table(rows) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def write(result, directory) -> Path:
    """Write ``index.html`` and one PNG per plot into ``directory``; returns the page."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for name, fig in figures(result).items():
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=100)
        images.append(f'<img src="{name}.png" alt="{html.escape(name)}">')
    f = result.figures
    model_rows = [(k + (" (assumed)" if k in ASSUMED else ""), v) for k, v in result.model.items()]
    breaches = "".join(f"<li>{html.escape(line)}</li>" for line in result.breaches[:200])
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>psymatch simulate</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto}}
table{{border-collapse:collapse;margin-bottom:1.5rem}}th,td{{border:1px solid #ccc;
padding:.2rem .6rem;text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>psymatch simulate: {f["policy"]} policy, {f["therapists"]} therapists, {f["weeks"]} weeks,
seed {f["seed"]}</h1>
<p>Figures follow docs/domain.md §14; targets of the plan: mean placement days &lt; 30,
acceptance rate &gt; 20 %, staff actions per placement of the manual process / auto &ge; 1.5.
See docs/simulate.md for how to read them.</p>
<h2>Figures</h2>{_table((k, v) for k, v in f.items() if k != "staff_actions_by_kind")}
<h2>Staff actions by kind</h2>{_table(f["staff_actions_by_kind"].items())}
<h2>Invariants</h2><p>{len(result.breaches)} breach(es).</p><ul>{breaches}</ul>
<h2>Plots</h2>{"".join(images)}
<h2>Behaviour model</h2>{_table(model_rows)}
<h2>psymatch's rules in this run</h2>{_table(result.rules.items())}
</body></html>
"""
    target = folder / "index.html"
    target.write_text(page, encoding="utf-8")
    return target
