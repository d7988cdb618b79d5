"""The overview panel: how much is in the system right now.

Counts in German number format and the local time they were read at (``console.fmt``).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
from peewee import fn

from db.models import Patient, Platzsuche, Therapeutenanfrage, Therapist, utcnow

from . import fmt


def counts() -> dict[str, int]:
    """Headline numbers for staff, one query each."""
    search_status = dict(
        Platzsuche.select(Platzsuche.status, fn.COUNT(Platzsuche.id))
        .group_by(Platzsuche.status)
        .tuples()
    )
    return {
        "Patienten": Patient.select().count(),
        "Therapeuten (aktiv)": Therapist.select().where(Therapist.status == "aktiv").count(),
        "Platzsuchen aktiv": search_status.get("aktiv", 0),
        "Platzsuchen pausiert": search_status.get("pausiert", 0),
        "Platzsuchen erfolgreich": search_status.get("erfolgreich", 0),
        "Anfragen offen": Therapeutenanfrage.select()
        .where(Therapeutenanfrage.antwort_datum.is_null())
        .count(),
    }


def render_table(values: dict[str, int], at=None) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        f"<td style='text-align:right'>{html.escape(fmt.number_de(value))}</td></tr>"
        for label, value in values.items()
    )
    stand = f"<small>Stand: {html.escape(fmt.datetime_de(at))} Uhr</small>" if at else ""
    return f"<table class='psymatch-overview'>{rows}</table>{stand}"


class OverviewPanel(widgets.VBox):
    """Counts with a refresh button; freezes the button while it reloads."""

    def __init__(self, **kwargs):
        self.table = widgets.HTML()
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__(
            [widgets.HTML("<h3>Überblick</h3>"), self.table, self.refresh_button], **kwargs
        )
        self.refresh()

    def refresh(self) -> None:
        self.refresh_button.disabled = True
        try:
            self.table.value = render_table(counts(), utcnow())
        finally:
            self.refresh_button.disabled = False
