"""The Conflicts panel: patients accepted by two or more therapists, with a manual override.

The override is a manual assignment through ``update_platzsuche(vermittelter_therapeut_id=...)``
(docs/domain.md §10, §12).
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import traitlets

from operations.searches import update_platzsuche

from . import queries
from .common import StatusLine, esc, frozen, run_action, staff_name, table


def _fmt(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, dt.datetime) else str(value or "")


class ConflictRow(widgets.VBox):
    """One conflict: the acceptances, the winner, and a dropdown + button to assign."""

    def __init__(self, conflict: dict, on_assign, **kwargs):
        self.conflict = conflict
        acceptances = conflict["acceptances"]
        header = widgets.HTML(
            f"<b>Patient {conflict['patient_id']} {esc(conflict['patient'])}</b> – "
            f"Suche {conflict['platzsuche_id']}, Gewinner: {esc(conflict['winner_name'])} "
            f"(Therapeut {conflict['winner']})"
        )
        details = widgets.HTML(
            table(
                ["Therapeut", "Name", "Anfrage", "Antwort am", ""],
                [
                    [
                        a["therapist_id"],
                        a["therapeut"],
                        a["anfrage_id"],
                        _fmt(a["antwort_datum"]),
                        "Gewinner" if a["therapist_id"] == conflict["winner"] else "",
                    ]
                    for a in acceptances
                ],
            )
        )
        seen = []
        for a in acceptances:
            if a["therapist_id"] not in seen:
                seen.append(a["therapist_id"])
        names = {a["therapist_id"]: a["therapeut"] for a in acceptances}
        self.therapist_select = widgets.Dropdown(
            options=[(f"{tid} – {names[tid]}", tid) for tid in seen],
            value=conflict["winner"] if conflict["winner"] in seen else seen[0],
            description="Zuweisen an",
            style={"description_width": "initial"},
        )
        self.assign_button = widgets.Button(description="Zuweisen", icon="user-check")
        self.assign_button.on_click(lambda _: on_assign(self))
        super().__init__(
            [header, details, widgets.HBox([self.therapist_select, self.assign_button])],
            **kwargs,
        )
        self.add_class("psymatch-conflict")


class ConflictsPanel(widgets.VBox):
    """Every conflict from ``list_conflicts()``; staff can override the winner."""

    conflicts = traitlets.List()

    def __init__(self, actor: str | None = None, **kwargs):
        self.actor = actor if actor is not None else staff_name()
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.count = widgets.HTML()
        self.rows_box = widgets.VBox()
        self.status = StatusLine()
        super().__init__(
            [
                widgets.HTML("<h3>Konflikte</h3>"),
                self.refresh_button,
                self.count,
                self.rows_box,
                self.status,
            ],
            **kwargs,
        )
        self.add_class("psymatch-conflicts")  # a stable handle for the browser test
        self.refresh()

    @property
    def rows(self) -> list[ConflictRow]:
        return list(self.rows_box.children)

    def row_for(self, patient_id: int) -> ConflictRow:
        return next(r for r in self.rows if r.conflict["patient_id"] == patient_id)

    def refresh(self) -> None:
        with frozen(self.refresh_button):
            self.conflicts = queries.conflicts()
        self.count.value = f"{len(self.conflicts)} Konflikt(e)"
        self.rows_box.children = [ConflictRow(c, self.assign) for c in self.conflicts]

    def assign(self, row: ConflictRow):
        search_id = row.conflict["platzsuche_id"]
        therapist_id = row.therapist_select.value
        result = run_action(
            self.status,
            (row.assign_button, self.refresh_button),
            lambda: update_platzsuche(
                search_id, vermittelter_therapeut_id=therapist_id, actor=self.actor
            ),
            lambda s: f"Suche {s.id}: Therapeut {therapist_id} zugewiesen",
        )
        if result is not None:
            self.refresh()
        return result
