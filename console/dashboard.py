"""The Dashboard panel: the metrics of docs/domain.md §14 for a date range, plots and a CSV export.

Controls: ``start`` / ``end`` (DatePickers, local dates, inclusive), ``apply``
("Anwenden"), ``export`` ("CSV exportieren"). Output: ``figures`` (HTML table of the key
figures), ``plots`` (an Output widget holding one matplotlib PNG: placement-days histogram
with its median, weekly Antwortrate and Annahmerate), ``download`` (HTML link with a
``data:`` URI of the last export) and ``status``. A bad range (missing or reversed dates)
is refused with a message and keeps the shown report.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from pathlib import Path

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")  # headless: the figure is rendered to a PNG buffer
import matplotlib.pyplot as plt  # noqa: E402
import traitlets  # noqa: E402
from IPython.display import Image  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from db.models import utcnow  # noqa: E402
from operations.snapshot import local_today  # noqa: E402
from psymatch import settings  # noqa: E402
from psymatch.domain import metrics  # noqa: E402

from . import metrics_queries  # noqa: E402
from .common import StatusLine, esc, frozen, png, table  # noqa: E402

DEFAULT_DAYS = 90


def _number(value, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "Anteil":
        return f"{100 * value:.1f} %"
    if unit == "Anzahl":
        return f"{int(value):,}".replace(",", ".")
    return f"{value:.1f}".replace(".", ",")


def figures_html(report: metrics.Report) -> str:
    """The key figures as a small table: name, value, numerator / denominator."""
    rows = []
    for label, unit, value, num, den in report.figures:
        basis = "" if den is None else f"{num:g} / {den:g}"
        rows.append(
            f"<tr><td style='padding:0 8px'>{esc(label)}</td>"
            f"<td style='padding:0 8px;text-align:right'>{esc(_number(value, unit))}</td>"
            f"<td style='padding:0 8px;color:#666'>{esc(basis)}</td></tr>"
        )
    head = (
        f"<b>Zeitraum {report.start:%d.%m.%Y} – {report.end:%d.%m.%Y}</b>"
        "<table class='psymatch-dashboard'><tr><th style='text-align:left;padding:0 8px'>"
        "Kennzahl</th><th style='padding:0 8px'>Wert</th><th style='text-align:left;"
        "padding:0 8px'>Basis</th></tr>"
    )
    return head + "".join(rows) + "</table>" + staff_weeks_html(report)


def staff_weeks_html(report: metrics.Report) -> str:
    """Staff actions per week and per placement (every action is an audit row)."""
    rows = [
        [
            f"{w['woche']:%d.%m.%Y}",
            w["aktionen"],
            w["vermittlungen"],
            _number(w["je_vermittlung"].value, "Aktionen") if w["vermittlungen"] else "–",
        ]
        for w in report.staff_weekly
    ]
    return "<b>Mitarbeiteraktionen je Woche</b>" + table(
        ["Woche ab", "Aktionen", "Vermittlungen", "Aktionen je Vermittlung"], rows
    )


def plots_png(report: metrics.Report) -> bytes:
    """Placement-days histogram (with median) and the weekly rates, side by side."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    try:
        days = [d for _search, d in report.placement]
        if days:
            bins = metrics.histogram(days, width=7)
            left.bar(
                [b[0] for b in bins],
                [b[2] for b in bins],
                width=6.4,
                align="edge",
                color="#5b8def",
            )
            median = report.figure("Vermittlungstage Median")
            left.axvline(median, color="#b3261e", linestyle="--", label=f"Median {median:g} Tage")
            left.axvline(30, color="#1a7f37", linestyle=":", label="Ziel < 30 Tage")
            left.legend(loc="upper right", fontsize=8)
            left.yaxis.set_major_locator(MaxNLocator(integer=True))
            left.set_xlabel("Tage von Suchbeginn bis Vermittlung")
            left.set_ylabel("Suchen")
        else:
            left.text(0.5, 0.5, "keine Vermittlungen im Zeitraum", ha="center", va="center")
            left.set_xticks([])
            left.set_yticks([])
        left.set_title("Vermittlungsgeschwindigkeit")
        if report.weekly:
            weeks = [w["woche"] for w in report.weekly]
            right.plot(
                weeks, [100 * w["antwortrate"].value for w in report.weekly], marker="o",
                label="Antwortrate",
            )  # fmt: skip
            right.plot(
                weeks, [100 * w["annahmerate"].value for w in report.weekly], marker="s",
                label="Annahmerate",
            )  # fmt: skip
            right.set_xticks(weeks, [f"{w:%d.%m.}" for w in weeks])
            right.set_ylim(0, 105)
            right.set_ylabel("%")
            right.legend(loc="upper right", fontsize=8)
            right.tick_params(axis="x", labelrotation=30, labelsize=8)
        else:
            right.text(0.5, 0.5, "keine gesendeten Anfragen", ha="center", va="center")
            right.set_xticks([])
            right.set_yticks([])
        right.set_title("Antwort- und Annahmerate je Versandwoche")
        return png(fig)
    finally:
        plt.close(fig)


def csv_text(report: metrics.Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(metrics.CSV_HEADER)
    for row in metrics.csv_rows(report):
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def export_dir() -> Path:
    return Path(settings.get().VAR_DIR) / "exports"


class DashboardPanel(widgets.VBox):
    """Key figures, plots and CSV export of the metrics for a date range."""

    report = traitlets.Instance(metrics.Report, allow_none=True)

    def __init__(self, now: dt.datetime | None = None, days: int = DEFAULT_DAYS, **kwargs):
        self.now = now
        today = local_today(self._now())
        self.start = widgets.DatePicker(description="Von", value=today - dt.timedelta(days=days))
        self.end = widgets.DatePicker(description="Bis", value=today)
        self.apply = widgets.Button(description="Anwenden", icon="check", button_style="primary")
        self.export = widgets.Button(description="CSV exportieren", icon="download")
        self.figures = widgets.HTML()
        self.plots = widgets.Output()
        self.plot_png = b""
        self.download = widgets.HTML()
        self.status = StatusLine()
        self.last_export: Path | None = None
        self.apply.on_click(lambda _: self.refresh())
        self.export.on_click(lambda _: self.export_csv())
        super().__init__(
            [
                widgets.HTML("<h3>Dashboard</h3>"),
                widgets.HBox([self.start, self.end, self.apply, self.export]),
                self.status,
                self.figures,
                self.plots,
                self.download,
            ],
            **kwargs,
        )
        self.refresh()

    def _now(self) -> dt.datetime:
        return self.now or utcnow()

    def _controls(self):
        return (self.start, self.end, self.apply, self.export)

    def _load(self) -> metrics.Report | None:
        start, end = self.start.value, self.end.value
        if start is None or end is None:
            self.status.error("Zeitraum ungültig: bitte Von- und Bis-Datum wählen")
            return None
        if start > end:
            self.status.error(
                f"Zeitraum ungültig: Von ({start:%d.%m.%Y}) liegt nach Bis ({end:%d.%m.%Y})"
            )
            return None
        return metrics_queries.report(start, end, self._now())

    def refresh(self) -> metrics.Report | None:
        """Compute the metrics of the chosen range and show them; a bad range changes nothing."""
        with frozen(*self._controls()):
            report = self._load()
            if report is None:
                return None
            self.report = report
            self.figures.value = figures_html(report)
            self.plot_png = plots_png(report)
            self.plots.outputs = ()  # works with and without a kernel, unlike clear_output
            self.plots.append_display_data(Image(data=self.plot_png, format="png"))
        self.status.ok(
            f"Kennzahlen {report.start:%d.%m.%Y} – {report.end:%d.%m.%Y}: "
            f"{int(report.figure('Anfragen gesamt'))} Anfragen, "
            f"{int(report.figure('Vermittlungen'))} Vermittlungen"
        )
        return report

    def export_csv(self) -> Path | None:
        """Write the metric rows of the chosen range to ``VAR_DIR/exports`` (and a link)."""
        with frozen(*self._controls()):
            report = self._load()
            if report is None:
                return None
            text = csv_text(report)
            folder = export_dir()
            folder.mkdir(parents=True, exist_ok=True)
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            path = folder / f"kennzahlen_{report.start}_{report.end}_{stamp}.csv"
            path.write_text(text, encoding="utf-8")
        self.last_export = path
        encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
        self.download.value = (
            f"<a download='{esc(path.name)}' href='data:text/csv;charset=utf-8;base64,"
            f"{encoded}' target='_blank'>{esc(path.name)} herunterladen</a>"
        )
        self.status.ok(f"CSV exportiert: {path} ({len(metrics.csv_rows(report))} Zeilen)")
        return path
