"""The Today panel: what needs staff action now (calls, reviews, conflicts, bundles, waits)."""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import traitlets

from . import queries
from .common import esc, table


def _fmt(value) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def render(summary: dict) -> str:
    """The panel's HTML from ``queries.today_summary()``."""
    sections = [
        (
            "Anrufe fällig",
            summary["calls"],
            ["Anruf", "Datum", "Zeit", "Therapeut", "Telefon", "Anfrage"],
            lambda c: [
                c["call_id"],
                _fmt(c["datum"]) + (" (überfällig)" if c["ueberfaellig"] else ""),
                c["zeit"],
                c["therapeut"],
                c["telefon"],
                c["anfrage_id"],
            ],
        ),
        (
            "Antworten in Prüfung",
            summary["reviews"],
            ["Eingang", "Empfangen", "Absender", "Anfrage", "Grund"],
            lambda r: [
                queries.review_label(r),
                _fmt(r["received_at"]),
                queries.review_origin(r),
                r["anfrage_id"],
                r["reason"],
            ],
        ),
        (
            "Konflikte",
            summary["conflicts"],
            ["Patient", "Annahmen", "Gewinner"],
            lambda c: [
                f"{c['patient_id']} {c['patient']}",
                ", ".join(f"{a['therapeut']} (A{a['anfrage_id']})" for a in c["acceptances"]),
                c["winner_name"],
            ],
        ),
        (
            "Anfragen versandbereit",
            summary["unsent"],
            ["Anfrage", "Therapeut", "Größe", "Erstellt"],
            lambda a: [a["anfrage_id"], a["therapeut"], a["groesse"], _fmt(a["erstellt"])],
        ),
        (
            "Längste Wartezeit ohne offene Anfrage",
            summary["waiting"],
            ["Suche", "Patient", "PLZ", "Wartetage"],
            lambda s: [s["search_id"], s["patient"], s["plz"], s["wartetage"]],
        ),
    ]
    parts = []
    for title, items, headers, row in sections:
        parts.append(f"<h4>{esc(title)}: {len(items)}</h4>")
        parts.append(table(headers, [row(i) for i in items]))
    return "".join(parts)


class TodayPanel(widgets.VBox):
    """Counts and short lists of today's work; ``today`` is injectable for tests."""

    today = traitlets.Instance(dt.date, allow_none=True)
    summary = traitlets.Dict()

    def __init__(self, today: dt.date | None = None, limit: int = 10, **kwargs):
        self.limit = limit
        self.content = widgets.HTML()
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__(
            [widgets.HTML("<h3>Heute</h3>"), self.refresh_button, self.content], **kwargs
        )
        self.today = today
        self.observe(lambda _: self.refresh(), names="today")
        self.refresh()

    def counts(self) -> dict[str, int]:
        return {key: len(items) for key, items in self.summary.items()}

    def refresh(self) -> None:
        self.refresh_button.disabled = True
        try:
            self.summary = queries.today_summary(self.today, self.limit)
            self.content.value = render(self.summary)
        finally:
            self.refresh_button.disabled = False
