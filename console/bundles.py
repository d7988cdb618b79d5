"""The Bundles panel: automatic round (simulate / run), staff composition, open bundles.

Every change goes through ``operations.bundles`` and ``operations.sending``;
a refused action shows its outcome code in the status line and writes nothing.

The open bundles are paged and filterable (``console.paging``) with the selection and
the send button above them; the selection offers the bundles of the page shown.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import traitlets

from db.models import Patient, utcnow
from operations.bundles import (
    create_anfrage,
    list_selectable_therapists,
    preview_anfrage,
    run_bundle_round,
)
from operations.sending import request_send

from . import fmt, queries
from .common import Confirmation, StatusLine, choose, esc, frozen, run_action, staff_name, table
from .paging import PagedTable

UNSENT_HEADERS = ["Anfrage", "Therapeut-ID", "Therapeut", "Größe", "Erstellt"]
PATIENT_HEADERS = [
    "Pos.",
    "Patient:in",
    "Alter",
    "Symptome",
    "Entfernung",
    "Wartezeit",
    "Warum ausgewählt",
]
# the soft filters (docs/domain.md §0 point 2) in plain German
SOFT_FILTERS = {
    "S1": "Zeiten passen zu den Sprechzeiten",
    "S2": "Symptome passen zum Schwerpunkt",
    "S3": "Alter im Wunschbereich der Praxis",
    "S4": "passt zur Gruppentherapie",
}


def relaxation(level: int) -> str:
    """Which wishes of the practice had to be relaxed for the whole bundle (4 = none)."""
    relaxed = [SOFT_FILTERS[f"S{k}"] for k in range(level + 1, 5)]
    if not relaxed:
        return "alle Wünsche der Praxis berücksichtigt"
    return "gelockert, weil zu wenige passten: " + "; ".join(relaxed)


def reason(p) -> str:
    """Why this patient was chosen, in one German sentence part."""
    passed = [SOFT_FILTERS[code] for code in p.soft_passed if code in SOFT_FILTERS]
    text = f"wartet {p.waiting_days} Tage, {fmt.number_de(p.distance_km, 1)} km entfernt"
    return text + (f"; {', '.join(passed)}" if passed else "")


def _age(birth: dt.date | None, today: dt.date) -> str:
    if birth is None:
        return "–"
    years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return str(years)


def explain(selection, names: dict[int, str] | None = None, title: str = "") -> str:
    """One bundle as HTML: therapist heading and a row per patient with age, symptoms,
    distance, waiting time and the plain-German reason for the choice."""
    names = names or {}
    name = names.get(selection.therapist_id, "")
    heading = f"<b>{esc(title)}Therapeut {selection.therapist_id}</b> {esc(name)}"
    ids = [p.patient_id for p in selection.patients]
    people = {
        p.id: p
        for p in Patient.select(
            Patient.id, Patient.vorname, Patient.nachname, Patient.geburtsdatum, Patient.symptome
        ).where(Patient.id.in_(ids))
    }
    today = fmt.local(utcnow()).date()
    rows = []
    for p in selection.patients:
        person = people.get(p.patient_id)
        rows.append(
            [
                p.position,
                f"{queries.person(person)} (Suche {p.search_id})" if person else p.search_id,
                _age(person.geburtsdatum, today) if person else "–",
                ", ".join(person.symptome or []) if person else "",
                f"{fmt.number_de(p.distance_km, 1)} km",
                f"{p.waiting_days} Tage",
                reason(p),
            ]
        )
    note = (
        f"<small>{esc(relaxation(selection.patients[0].relaxation_level))}</small>"
        if (selection.patients)
        else ""
    )
    return f"<div>{heading}{table(PATIENT_HEADERS, rows)}{note}</div>"


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

    def __init__(
        self,
        now: dt.datetime | None = None,
        actor: str | None = None,
        page_size: int = 25,
        **kwargs,
    ):
        self.now = now
        self.actor = actor if actor is not None else staff_name()
        self._by_id: dict[int, dict] = {}
        self._offered = False
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
        self.anfrage_select = widgets.Dropdown(description="Anfrage", options=[])
        self.send_button = widgets.Button(description="Senden", icon="paper-plane")

        self.simulate_button.on_click(lambda _: self.simulate())
        self.run_button.on_click(lambda _: self.ask_round())
        self.round_confirmation = Confirmation()
        self.create_confirmation = Confirmation()
        self.send_confirmation = Confirmation()
        self.list_button.on_click(lambda _: self.list_therapists())
        self.preview_button.on_click(lambda _: self.preview())
        self.create_button.on_click(lambda _: self.ask_create())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.send_button.on_click(lambda _: self.ask_send())
        self.observe(lambda _: self.send_confirmation.cancel(), names="selected_anfrage_id")
        self.observe(lambda _: self.create_confirmation.cancel(), names="selected_therapist_id")
        traitlets.link((self.therapist_select, "value"), (self, "selected_therapist_id"))
        traitlets.link((self.anfrage_select, "value"), (self, "selected_anfrage_id"))
        self.pager = PagedTable(
            UNSENT_HEADERS,
            actions=[
                widgets.VBox(
                    [
                        widgets.HBox([self.refresh_button, self.anfrage_select, self.send_button]),
                        self.send_confirmation,
                    ]
                )
            ],
            page_size=page_size,
            filter_placeholder="Anfrage, Therapeut …",
        )
        self.unsent_table = self.pager.output  # the page shown
        self.pager.observe(lambda _: self._offer(), names="visible_keys")

        super().__init__(
            [
                widgets.HTML("<h3>Bündel</h3>"),
                widgets.HTML("<h4>Automatische Runde</h4>"),
                widgets.HBox([self.simulate_button, self.run_button]),
                self.round_confirmation,
                self.round_output,
                widgets.HTML("<h4>Anfrage zusammenstellen</h4>"),
                widgets.HBox([self.plz_prefix, self.list_button]),
                widgets.HBox([self.therapist_select, self.preview_button]),
                widgets.HBox([self.send_now, self.create_button]),
                self.create_confirmation,
                self.preview_output,
                widgets.HTML("<h4>Offene (ungesendete) Bündel</h4>"),
                self.pager,
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

    def ask_round(self) -> None:
        """A round contacts every contactable practice: ask first, saying how many bundles
        the dry run finds (the confirmation then runs the round itself)."""
        preview = self.simulate()
        if preview is None or preview.disabled:
            return
        self.round_confirmation.ask(
            f"Runde jetzt ausführen? Sie erstellt etwa {len(preview.bundles)} Anfrage(n) mit "
            f"{preview.patients_offered} Patient:innen, die danach versendet werden.",
            "Ja, Runde ausführen",
            self.run_round,
        )

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

    def ask_create(self):
        """Creating without sending acts at once; with "sofort senden" it asks first,
        naming the therapist the email goes to."""
        therapist_id = self._need_therapist()
        if therapist_id is None:
            return None
        if not self.send_now.value:
            return self.create(therapist_id)
        name = queries.therapist_names([therapist_id]).get(therapist_id, "")
        self.create_confirmation.ask(
            f"Anfrage für Therapeut {therapist_id} {name} erstellen und sofort senden?",
            "Ja, erstellen und senden",
            lambda: self.create(therapist_id, send_now=True),
        )
        return None

    def create(self, therapist_id: int | None = None, send_now: bool | None = None):
        therapist_id = therapist_id if therapist_id is not None else self._need_therapist()
        if therapist_id is None:
            return None
        prefix = self._prefix()
        send_now = self.send_now.value if send_now is None else send_now

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
        self._by_id = {u["anfrage_id"]: u for u in self.unsent}
        self.pager.set_rows(
            [
                [u["anfrage_id"], u["therapist_id"], u["therapeut"], u["groesse"], u["erstellt"]]
                for u in self.unsent
            ],
            keys=[u["anfrage_id"] for u in self.unsent],
        )
        self._offer()

    def _offer(self) -> None:
        """The selection offers the open bundles of the page shown; the selected one stays
        selected while it is there."""
        options = [
            (f"{u['anfrage_id']} – {u['therapeut']}", u["anfrage_id"])
            for u in (self._by_id[k] for k in self.pager.visible_keys)
        ]
        # the first time the first row; later a sent bundle is not replaced by a neighbour
        # (a repeated click must not send another practice's bundle)
        choose(self.anfrage_select, options, self.selected_anfrage_id, first=not self._offered)
        self._offered = True

    def ask_send(self) -> None:
        """Sending reaches a practice: ask first, naming the Anfrage and its therapist."""
        anfrage_id = self.selected_anfrage_id
        if anfrage_id is None:
            self.status.error("Keine Anfrage ausgewählt")
            return
        row = self._by_id.get(anfrage_id)
        who = f" an {row['therapeut']} ({row['groesse']} Patient:innen)" if row else ""
        self.send_confirmation.ask(
            f"Anfrage {anfrage_id}{who} jetzt senden?",
            f"Ja, Anfrage {anfrage_id} senden",
            lambda: self.send(anfrage_id),
        )

    def send(self, anfrage_id: int | None = None):
        anfrage_id = anfrage_id if anfrage_id is not None else self.selected_anfrage_id
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
