"""The Conflicts panel: patients accepted by two or more therapists (docs/domain.md §10).

Open conflicts by default, settled ones on the filter. Each conflict shows who accepted
when, who the patient is placed with, and the alternatives the conflict notice offered
(as a real Anfrage: age, symptoms, distance, waiting time and what became of each).
Staff either confirm the first acceptance (``settle_conflict``) or reassign the patient
to another accepting therapist after ticking a confirmation that names what will happen
(``reassign_conflict``: both therapists and the patient get the email of the final state).
A row acts once: it names the therapist it showed as placed, and a repeated click on the
same row (also one the kernel handles while the first still runs) does nothing.
"""

from __future__ import annotations

import datetime as dt
import threading

import ipywidgets as widgets
import traitlets

from operations.conflicts import reassign_conflict, settle_conflict
from operations.errors import OperationError
from psymatch.domain import vocab

from . import fmt, queries
from .common import StatusLine, esc, frozen, run_action, staff_name, table

PAGE_SIZE = 20
FILTERS = [("Offen", "offen"), ("Erledigt", "erledigt"), ("Alle", "alle")]
LINE_STATUS = {
    "anstehend": "wartet auf Antwort",
    "angenommen": "zugesagt",
    "abgelehnt": "abgesagt",
    "keine_antwort": "keine Antwort",
    "anderweitig_vermittelt": "anderweitig vermittelt",
}


def local_time(value) -> str:
    """``30.11.2026 09:00`` in the platform's time zone, for a naive-UTC timestamp."""
    return fmt.datetime_de(value) if isinstance(value, dt.datetime) else ""


def age(birth, today: dt.date | None = None) -> str:
    if not isinstance(birth, dt.date):
        return "unbekannt"
    today = today or fmt.local(dt.datetime.now(dt.UTC)).date()
    years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return f"{years} Jahre"


def distance(km) -> str:
    return "unbekannt" if km is None else f"{fmt.number_de(km, 1)} km"


def waiting(days) -> str:
    if days is None:
        return "unbekannt"
    return "1 Tag" if days == 1 else f"{fmt.number_de(days)} Tage"


def line_state(row: dict) -> str:
    """What became of an offered line, in German (the answer when there is one)."""
    answer = row.get("antwortergebnis")
    if answer:
        return vocab.ANTWORT_LABELS.get(answer, fmt.label(answer))
    return LINE_STATUS.get(row["status"], fmt.label(row["status"], "ANFRAGE_PATIENT_STATUS"))


def settlement_text(conflict: dict) -> str:
    done = conflict.get("erledigung")
    if conflict["state"] != "erledigt" or not done:
        return "offen"
    text = (
        f"erledigt: {done['label']} von {done['erledigt_von']} am {local_time(done['erledigt_am'])}"
    )
    return text + (f" ({done['notiz']})" if done.get("notiz") else "")


class ConflictRow(widgets.VBox):
    """One conflict: its state, the actions (open conflicts only), the acceptances and the
    alternatives offered."""

    def __init__(self, conflict: dict, on_reassign, on_settle, **kwargs):
        self.conflict = conflict
        self.shown_placed = conflict["vermittelt_an"]  # what staff see when they click
        self.done = False  # acted once: further clicks on this row change nothing
        self.acting = threading.Lock()
        acceptances = conflict["acceptances"]
        names = {a["therapist_id"]: a["therapeut"] for a in acceptances}
        placed = self.shown_placed
        placed_text = (
            f"vermittelt an {esc(names.get(placed) or conflict['placed_name'])} "
            f"(Therapeut {placed})"
            if placed
            else "niemandem zugewiesen"
        )
        header = widgets.HTML(
            f"<b>Patient {conflict['patient_id']} {esc(conflict['patient'])}</b> – "
            f"Suche {conflict['platzsuche_id']}, {placed_text} – "
            f"<i>{esc(settlement_text(conflict))}</i>"
        )
        others = []
        for a in acceptances:
            if a["therapist_id"] != placed and a["therapist_id"] not in others:
                others.append(a["therapist_id"])
        self.therapist_select = widgets.Dropdown(
            options=[(f"{tid} – {names[tid]}", tid) for tid in others],
            value=others[0] if others else None,
            description="Neu zuweisen an",
            style={"description_width": "initial"},
        )
        self.confirm = widgets.Checkbox(value=False, indent=False)
        self.reassign_button = widgets.Button(description="Neu zuweisen", icon="user-check")
        self.settle_button = widgets.Button(
            description="Erste Zusage bestätigen", icon="check", disabled=placed is None
        )
        self.other_button = widgets.Button(description="Anders geklärt", icon="comment")
        self.note = widgets.Text(
            description="Notiz",
            placeholder="bei „Anders geklärt“ nötig",
            style={"description_width": "initial"},
        )
        self.reassign_button.on_click(lambda _: on_reassign(self))
        self.settle_button.on_click(lambda _: on_settle(self))
        self.other_button.on_click(lambda _: on_settle(self, vocab.KONFLIKT_SONSTIGES))
        self.therapist_select.observe(lambda _: self._name_confirmation(), "value")
        self._name_confirmation()
        actions = []
        if conflict["state"] == "offen":
            actions = [
                widgets.HBox([self.therapist_select, self.reassign_button]),
                self.confirm,
                widgets.HBox([self.settle_button, self.other_button, self.note]),
            ]
        accepted = widgets.HTML(
            table(
                ["Therapeut", "Name", "Anfrage", "Antwort am", "Stand"],
                [
                    [
                        a["therapist_id"],
                        a["therapeut"],
                        f"A{a['anfrage_id']}",
                        local_time(a["antwort_datum"]),
                        "vermittelt" if a["therapist_id"] == placed else "",
                    ]
                    for a in acceptances
                ],
            )
        )
        offered = conflict.get("alternativen") or []
        alternatives = widgets.HTML(
            "<b>Vorgeschlagene Alternativen</b>"
            + table(
                [
                    "Anfrage",
                    "Therapeut",
                    "Patient",
                    "Alter",
                    "Symptome",
                    "Entfernung",
                    "Wartezeit",
                    "Stand",
                ],
                [
                    [
                        f"A{r['anfrage_id']}",
                        names.get(r["therapist_id"], r["therapist_id"]),
                        r["patient_id"],
                        age(r["geburtsdatum"]),
                        ", ".join(r["symptome"]) or "keine Angabe",
                        distance(r["distance_km"]),
                        waiting(r["waiting_days"]),
                        line_state(r),
                    ]
                    for r in offered
                ],
            )
        )
        super().__init__([header, *actions, accepted, alternatives], **kwargs)
        self.add_class("psymatch-conflict")

    def _name_confirmation(self) -> None:
        """The confirmation says what the reassignment does, for the therapist chosen now."""
        self.confirm.value = False
        names = {a["therapist_id"]: a["therapeut"] for a in self.conflict["acceptances"]}
        target = self.therapist_select.value
        if target is None:
            self.confirm.description = "Keine andere Zusage zum Neuzuweisen"
            self.reassign_button.disabled = True
            return
        former = names.get(self.shown_placed, "niemandem")
        self.confirm.description = (
            f"Ja: Patient {self.conflict['patient_id']} geht an {names[target]} statt an "
            f"{former}; beide erhalten eine E-Mail, der Patient die neue Vermittlungsmail"
        )


class ConflictsPanel(widgets.VBox):
    """Conflicts from ``operations.conflicts`` (open by default); settle or reassign."""

    conflicts = traitlets.List()

    def __init__(self, actor: str | None = None, **kwargs):
        self.actor = actor if actor is not None else staff_name()
        self.filter = widgets.Dropdown(options=FILTERS, value="offen", description="Anzeigen")
        self.filter.observe(lambda _: self.refresh(), "value")
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.count = widgets.HTML()
        self.page = 0
        self.previous_button = widgets.Button(description="Zurück", icon="chevron-left")
        self.next_button = widgets.Button(description="Weiter", icon="chevron-right")
        self.previous_button.on_click(lambda _: self.turn(-1))
        self.next_button.on_click(lambda _: self.turn(1))
        self.rows_box = widgets.VBox()
        self.status = StatusLine()
        super().__init__(
            [
                widgets.HTML("<h3>Konflikte</h3>"),
                widgets.HBox([self.filter, self.refresh_button]),
                self.status,
                widgets.HBox([self.count, self.previous_button, self.next_button]),
                self.rows_box,
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
        with frozen(self.refresh_button, self.filter):
            self.conflicts = queries.conflicts(self.filter.value)
        self._show()

    def turn(self, step: int) -> None:
        self.page += step
        self._show()

    def _show(self) -> None:
        """The current page (``PAGE_SIZE`` conflicts, oldest first) of the loaded list."""
        pages = max(1, -(-len(self.conflicts) // PAGE_SIZE))
        self.page = min(max(self.page, 0), pages - 1)
        label = {"offen": "offen", "erledigt": "erledigt", "alle": "insgesamt"}[self.filter.value]
        text = f"{len(self.conflicts)} Konflikt(e) {label}"
        if pages > 1:
            text += f" – Seite {self.page + 1} von {pages}"
        self.count.value = text
        self.previous_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= pages - 1
        shown = self.conflicts[self.page * PAGE_SIZE : (self.page + 1) * PAGE_SIZE]
        self.rows_box.children = [ConflictRow(c, self.reassign, self.settle) for c in shown]

    def _act(self, row: ConflictRow, button, action, success):
        """Run one action of a row, at most once: a click while the row is acting (the
        kernel may handle the two clicks of a double-click side by side) or after it
        acted changes nothing and leaves the status line as it is."""
        if not row.acting.acquire(blocking=False):
            return None
        try:
            if row.done:
                return None
            result = run_action(self.status, (button, self.refresh_button), action, success)
            if result is not None:
                row.done = True
                self.refresh()
            return result
        finally:
            row.acting.release()

    def reassign(self, row: ConflictRow):
        search_id = row.conflict["platzsuche_id"]
        patient_id = row.conflict["patient_id"]
        therapist_id = row.therapist_select.value
        shown, confirmed = row.shown_placed, row.confirm.value
        note = row.note.value

        def action():
            if therapist_id is None:
                raise OperationError("NO_CHOICE", "Keine andere Zusage zum Neuzuweisen")
            if not confirmed:
                raise OperationError(
                    "CONFIRMATION_REQUIRED",
                    "Bitte zuerst bestätigen, was die Neuzuweisung bewirkt (Häkchen setzen); "
                    "es wurde nichts geändert",
                )
            return reassign_conflict(
                search_id,
                therapist_id,
                shown_therapist_id=shown,
                actor=self.actor,
                notiz=note or None,
            )

        return self._act(
            row,
            row.reassign_button,
            action,
            lambda r: _reassigned_text(patient_id, search_id, r),
        )

    def settle(self, row: ConflictRow, art: str = vocab.GEWINNER_BESTAETIGT):
        search_id = row.conflict["platzsuche_id"]
        note = row.note.value
        label = vocab.KONFLIKT_ERLEDIGUNG_LABELS[art]
        return self._act(
            row,
            row.settle_button if art == vocab.GEWINNER_BESTAETIGT else row.other_button,
            lambda: settle_conflict(search_id, art, actor=self.actor, notiz=note or None),
            lambda r: (
                f"Konflikt zu Suche {search_id} erledigt: {label}"
                + (f" (Therapeut {r['therapist_id']})" if r["therapist_id"] else "")
            ),
        )


def _reassigned_text(patient_id: int, search_id: int, result: dict) -> str:
    text = (
        f"Patient {patient_id} (Suche {search_id}) neu zugewiesen an Therapeut "
        f"{result['therapist_id']}; E-Mails an beide Therapeut:innen und den Patienten folgen"
    )
    if result["phone_only"]:
        ids = ", ".join(str(i) for i in result["phone_only"])
        text += f"; ohne E-Mail-Adresse, bitte anrufen: Therapeut {ids}"
    return text
