"""The Bundles panel: automatic round (simulate / run), staff composition, open bundles.

Every change goes through ``operations.bundles`` and ``operations.sending``;
a refused action shows its outcome code in the status line and writes nothing.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import traitlets

from operations.bundles import (
    create_anfrage,
    list_selectable_therapists,
    preview_anfrage,
    run_bundle_round,
)
from operations.sending import request_send

from . import queries
from .common import StatusLine, esc, frozen, run_action, staff_name, table

PATIENT_HEADERS = [
    "Pos.",
    "Suche",
    "Patient-ID",
    "Entfernung (km)",
    "Wartetage",
    "weiche Filter erfüllt",
    "Lockerung",
]


def relaxation(level: int) -> str:
    """The soft filters applied to a whole bundle (4 = none relaxed)."""
    return f"S1–S{level} angewandt" if level else "ohne weiche Filter"


def explain(selection, names: dict[int, str] | None = None, title: str = "") -> str:
    """One bundle as HTML: therapist heading and a row per patient with its explanation."""
    names = names or {}
    name = names.get(selection.therapist_id, "")
    heading = f"<b>{esc(title)}Therapeut {selection.therapist_id}</b> {esc(name)}"
    rows = [
        [
            p.position,
            p.search_id,
            p.patient_id,
            f"{p.distance_km:.1f}",
            p.waiting_days,
            ", ".join(p.soft_passed) or "–",
            relaxation(p.relaxation_level),
        ]
        for p in selection.patients
    ]
    return f"<div>{heading}{table(PATIENT_HEADERS, rows)}</div>"


def _round_summary(result) -> str:
    if result.disabled:
        return "Automatische Runden sind abgeschaltet (Feature-Flag): nichts geschehen"
    verb = "Simulation" if result.dry_run else "Runde"
    text = (
        f"{verb}: {len(result.bundles)} Bündel, {result.patients_offered} Patienten, "
        f"{result.therapists_considered} Therapeut:innen geprüft"
    )
    if not result.dry_run:
        text += f", {len(result.created)} Anfrage(n) erstellt"
    return text


class BundlesPanel(widgets.VBox):
    """Round simulation and run, composition for one therapist, sending open bundles."""

    selected_therapist_id = traitlets.Int(allow_none=True)
    selected_anfrage_id = traitlets.Int(allow_none=True)
    unsent = traitlets.List()

    def __init__(self, now: dt.datetime | None = None, actor: str | None = None, **kwargs):
        self.now = now
        self.actor = actor if actor is not None else staff_name()
        self.status = StatusLine()
        # automatic round
        self.simulate_button = widgets.Button(description="Runde simulieren", icon="flask")
        self.run_button = widgets.Button(
            description="Runde ausführen", icon="play", button_style="warning"
        )
        self.round_output = widgets.HTML()
        # staff composition
        self.plz_prefix = widgets.Text(description="PLZ-Präfix", placeholder="z. B. 10")
        self.list_button = widgets.Button(description="Therapeut:innen", icon="list")
        self.therapist_select = widgets.Dropdown(description="Therapeut", options=[])
        self.preview_button = widgets.Button(description="Vorschau", icon="eye")
        self.send_now = widgets.Checkbox(description="sofort senden", value=False)
        self.create_button = widgets.Button(
            description="Anfrage erstellen", icon="plus", button_style="primary"
        )
        self.preview_output = widgets.HTML()
        # open bundles
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.unsent_table = widgets.HTML()
        self.anfrage_select = widgets.Dropdown(description="Anfrage", options=[])
        self.send_button = widgets.Button(description="Senden", icon="paper-plane")

        self.simulate_button.on_click(lambda _: self.simulate())
        self.run_button.on_click(lambda _: self.run_round())
        self.list_button.on_click(lambda _: self.list_therapists())
        self.preview_button.on_click(lambda _: self.preview())
        self.create_button.on_click(lambda _: self.create())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.send_button.on_click(lambda _: self.send())
        traitlets.link((self.therapist_select, "value"), (self, "selected_therapist_id"))
        traitlets.link((self.anfrage_select, "value"), (self, "selected_anfrage_id"))

        super().__init__(
            [
                widgets.HTML("<h3>Bündel</h3>"),
                widgets.HTML("<h4>Automatische Runde</h4>"),
                widgets.HBox([self.simulate_button, self.run_button]),
                self.round_output,
                widgets.HTML("<h4>Anfrage zusammenstellen</h4>"),
                widgets.HBox([self.plz_prefix, self.list_button]),
                widgets.HBox([self.therapist_select, self.preview_button]),
                widgets.HBox([self.send_now, self.create_button]),
                self.preview_output,
                widgets.HTML("<h4>Offene (ungesendete) Bündel</h4>"),
                self.refresh_button,
                self.unsent_table,
                widgets.HBox([self.anfrage_select, self.send_button]),
                self.status,
            ],
            **kwargs,
        )
        self.add_class("psymatch-bundles")  # a stable handle for the browser test
        self.refresh()

    @property
    def action_controls(self):
        return (
            self.simulate_button,
            self.run_button,
            self.list_button,
            self.preview_button,
            self.create_button,
            self.refresh_button,
            self.send_button,
        )

    # --- automatic round ------------------------------------------------------------------

    def _round(self, dry_run: bool):
        result = run_action(
            self.status,
            self.action_controls,
            lambda: run_bundle_round(self.now, actor=self.actor, dry_run=dry_run),
            _round_summary,
            needs="lesen" if dry_run else "team",
        )
        if result is None:
            return None
        names = queries.therapist_names(b.therapist_id for b in result.bundles)
        parts = []
        if not dry_run:
            ids = ", ".join(str(i) for i in result.created) or "keine"
            parts.append(f"<p><b>Erstellte Anfragen:</b> {esc(ids)}</p>")
        parts += [
            explain(bundle, names, f"Bündel {i}: ")
            for i, bundle in enumerate(result.bundles, start=1)
        ]
        if result.skipped:
            skipped = result.summary()["skipped_by_reason"]
            parts.append(
                "<p><small>Übersprungen: "
                + esc(", ".join(f"{reason} ×{n}" for reason, n in sorted(skipped.items())))
                + "</small></p>"
            )
        self.round_output.value = "".join(parts)
        if not dry_run:
            self.refresh()
        return result

    def simulate(self):
        """Dry run: shows the bundles a round would create, stores nothing."""
        return self._round(dry_run=True)

    def run_round(self):
        """Commit a round: creates the Anfragen (sending is queued by the round)."""
        return self._round(dry_run=False)

    # --- staff composition ----------------------------------------------------------------

    def _prefix(self) -> str | None:
        return self.plz_prefix.value.strip() or None

    def list_therapists(self):
        """Selectable therapists of the PLZ prefix, in serving order (docs/domain.md §6.2)."""
        prefix = self.plz_prefix.value.strip()
        found = run_action(
            self.status,
            self.action_controls,
            lambda: list_selectable_therapists(prefix, now=self.now),
            lambda ts: f"{len(ts)} auswählbare Therapeut:innen für PLZ {prefix}",
            needs="lesen",
        )
        if found is None:
            self.therapist_select.options = []
            return None
        self.therapist_select.options = [
            (f"{t.id} – {' '.join(p for p in (t.titel, t.vorname, t.nachname) if p)}", t.id)
            for t in found
        ]
        self.therapist_select.value = found[0].id if found else None
        self.preview_output.value = ""
        return found

    def _need_therapist(self) -> int | None:
        if self.selected_therapist_id is None:
            self.status.error("Kein Therapeut ausgewählt")
        return self.selected_therapist_id

    def preview(self):
        """The bundle this therapist would get now, explained; stores nothing."""
        therapist_id = self._need_therapist()
        if therapist_id is None:
            return None
        prefix = self._prefix()
        selection = run_action(
            self.status,
            self.action_controls,
            lambda: preview_anfrage(therapist_id, prefix, now=self.now),
            lambda s: f"Vorschau: {len(s.patients)} Patienten für Therapeut {therapist_id}",
            needs="lesen",
        )
        self.preview_output.value = (
            ""
            if selection is None
            else explain(selection, queries.therapist_names([therapist_id]), "Vorschau – ")
        )
        return selection

    def create(self):
        therapist_id = self._need_therapist()
        if therapist_id is None:
            return None
        prefix, send_now = self._prefix(), self.send_now.value

        def success(created) -> str:
            text = f"Anfrage {created.anfrage_id} erstellt ({len(created.selection.patients)} P.)"
            if created.zum_versand:
                return text + ", zum Versand eingeplant"
            if created.send_error:
                return text + f", nicht gesendet: {created.send_error}"
            return text

        created = run_action(
            self.status,
            self.action_controls,
            lambda: create_anfrage(
                therapist_id,
                prefix,
                send_now=send_now,
                queue_send=True,
                actor=self.actor,
                now=self.now,
            ),
            success,
        )
        if created is not None:
            self.preview_output.value = explain(
                created.selection,
                queries.therapist_names([therapist_id]),
                f"Anfrage {created.anfrage_id} – ",
            )
            self.refresh()
        return created

    # --- open bundles ---------------------------------------------------------------------

    def refresh(self) -> None:
        with frozen(self.refresh_button):
            self.unsent = queries.unsent_bundles()
        self.unsent_table.value = table(
            ["Anfrage", "Therapeut-ID", "Therapeut", "Größe", "Erstellt"],
            [
                [u["anfrage_id"], u["therapist_id"], u["therapeut"], u["groesse"], u["erstellt"]]
                for u in self.unsent
            ],
        )
        previous = self.selected_anfrage_id
        options = [(f"{u['anfrage_id']} – {u['therapeut']}", u["anfrage_id"]) for u in self.unsent]
        self.anfrage_select.options = options
        ids = [v for _, v in options]
        self.anfrage_select.value = previous if previous in ids else (ids[0] if ids else None)

    def send(self):
        anfrage_id = self.selected_anfrage_id
        if anfrage_id is None:
            self.status.error("Keine Anfrage ausgewählt")
            return None
        result = run_action(
            self.status,
            self.action_controls,
            lambda: request_send(anfrage_id, actor=self.actor, now=self.now),
            lambda r: f"Anfrage {anfrage_id} zum Versand eingeplant ({r['channel']})",
        )
        if result is not None:
            self.refresh()
        return result
