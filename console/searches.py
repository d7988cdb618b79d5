"""The Searches panel: list, filter and sort Platzsuchen; open, pause, resume, cancel, exclude,
list the selected search's exclusions (reason, date, who) and lift one with a reason;
GDPR erasure of the selected search's patient (staff name, reason and a confirmation required).

Every change goes through ``operations.searches``; a refused change shows its
outcome code in the status line and writes nothing.

The list is paged and filterable (``console.paging``; 20,000 searches at Germany scale) with
the selection and the actions on the selected search above it; the selection offers the
searches of the page shown. Status, PLZ prefix and sort choose which searches are read.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import traitlets

from operations.errors import OperationError
from operations.privacy import erase_patient
from operations.searches import (
    create_platzsuche,
    exclude_therapist,
    list_exclusions,
    remove_exclusion,
    update_platzsuche,
)

from . import queries
from .common import (
    Confirmation,
    StatusLine,
    choose,
    esc,
    frozen,
    run_action,
    signed_in_user,
    staff_name,
    table,
)
from .inputs import bounded_text
from .paging import PagedTable

STATUS_FILTERS = [
    ("aktiv + pausiert", ("aktiv", "pausiert")),
    ("aktiv", ("aktiv",)),
    ("pausiert", ("pausiert",)),
    ("alle", ()),
]
STATUS_TEXT = {
    "aktiv": "aktiv",
    "pausiert": "pausiert",
    "abgebrochen": "abgebrochen",
    "erfolgreich": "erfolgreich vermittelt",
}
SORTS = [("längste Wartezeit zuerst", True), ("kürzeste Wartezeit zuerst", False)]
HEADERS = ["Suche", "Patient-ID", "Patient", "PLZ", "Status", "Wartetage", "Ausschlüsse"]


class SearchesPanel(widgets.VBox):
    """Filterable table of searches and the staff actions on one selected search."""

    selected_search_id = traitlets.Int(allow_none=True)
    rows = traitlets.List()

    def __init__(
        self,
        today: dt.date | None = None,
        actor: str | None = None,
        page_size: int = 25,
        **kwargs,
    ):
        self.today = today
        self.actor = actor if actor is not None else staff_name()
        self._by_id: dict[int, dict] = {}
        self._offered = False
        self.status = StatusLine()
        # filter and sort
        self.status_filter = widgets.Dropdown(options=STATUS_FILTERS, description="Status")
        self.plz_prefix = widgets.Text(description="PLZ-Präfix", placeholder="z. B. 10")
        self.sort = widgets.Dropdown(options=SORTS, description="Sortierung")
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        # actions on the selected search
        self.search_select = widgets.Dropdown(description="Suche", options=[])
        self.pause_button = widgets.Button(description="Pausieren", icon="pause")
        self.resume_button = widgets.Button(description="Fortsetzen", icon="play")
        self.cancel_button = widgets.Button(
            description="Abbrechen", icon="times", button_style="danger"
        )
        self.therapist_id = widgets.IntText(description="Therapeut-ID")
        self.exclusion_reason = widgets.Text(description="Grund", placeholder="Pflichtfeld")
        self.exclude_button = widgets.Button(description="Ausschließen", icon="ban")
        # the selected search's exclusions, and lifting one with a reason
        self.exclusions_table = widgets.HTML()
        self.exclusions: list[dict] = []
        self.lift_select = widgets.Dropdown(description="Ausschluss", options=[])
        self.lift_reason = widgets.Text(description="Grund", placeholder="Pflichtfeld")
        self.lift_button = widgets.Button(description="Ausschluss aufheben", icon="undo")
        # GDPR erasure of the selected search's patient
        self.erase_actor = widgets.Text(
            value="", description="Mitarbeiter/in", placeholder="Pflichtfeld"
        )
        if signed_in_user():  # under JupyterHub one acts as oneself, never as someone else
            self.erase_actor.value, self.erase_actor.disabled = self.actor, True
        self.erase_reason = widgets.Text(description="Grund", placeholder="Pflichtfeld")
        self.erase_confirm = widgets.Checkbox(
            description="Personenbezogene Daten unwiderruflich löschen", indent=False
        )
        self.erase_button = widgets.Button(
            description="Daten löschen (DSGVO)", icon="user-times", button_style="danger"
        )
        # opening a search
        self.patient_id = widgets.IntText(description="Patient-ID")
        self.open_button = widgets.Button(description="Suche eröffnen", icon="plus")

        self.refresh_button.on_click(lambda _: self.refresh())
        self.pause_button.on_click(lambda _: self.set_status("pausiert"))
        self.resume_button.on_click(lambda _: self.set_status("aktiv"))
        self.cancel_button.on_click(lambda _: self.ask_cancel())
        self.confirmation = Confirmation()
        self.exclude_button.on_click(lambda _: self.exclude())
        self.lift_button.on_click(lambda _: self.lift_exclusion())
        self.open_button.on_click(lambda _: self.open_search())
        self.erase_button.on_click(lambda _: self.erase())
        for control in (self.status_filter, self.sort):
            control.observe(lambda _: self.refresh(), names="value")
        self.plz_prefix.observe(lambda _: self.refresh(), names="value")
        traitlets.link((self.search_select, "value"), (self, "selected_search_id"))
        self.observe(lambda _: self.show_exclusions(), names="selected_search_id")
        self.observe(lambda _: self.confirmation.cancel(), names="selected_search_id")

        self.pager = PagedTable(
            HEADERS,
            actions=[
                widgets.VBox(
                    [
                        widgets.HBox([self.refresh_button, self.search_select]),
                        widgets.HBox([self.pause_button, self.resume_button, self.cancel_button]),
                        self.confirmation,
                        widgets.HBox(
                            [self.therapist_id, self.exclusion_reason, self.exclude_button]
                        ),
                        self.exclusions_table,
                        widgets.HBox([self.lift_select, self.lift_reason, self.lift_button]),
                        self.status,
                    ]
                )
            ],
            page_size=page_size,
            filter_placeholder="Suche, Patient, PLZ …",
        )
        self.table = self.pager.output  # the page shown
        self.pager.observe(lambda _: self._offer(), names="visible_keys")

        super().__init__(
            [
                widgets.HTML("<h3>Platzsuchen</h3>"),
                widgets.HBox([self.status_filter, self.plz_prefix, self.sort]),
                self.pager,
                widgets.HTML(
                    "<h4>Daten löschen (DSGVO)</h4><p>Anonymisiert die Patientin / den Patienten "
                    "der ausgewählten Suche (Namen, Kontaktdaten, eigene E-Mails); Statistiken "
                    "bleiben. Eine aktive oder pausierte Suche zuerst abbrechen.</p>"
                ),
                widgets.HBox([self.erase_actor, self.erase_reason]),
                widgets.HBox([self.erase_confirm, self.erase_button]),
                widgets.HTML("<h4>Neue Suche</h4>"),
                widgets.HBox([self.patient_id, self.open_button]),
            ],
            **kwargs,
        )
        self.add_class("psymatch-searches")  # a stable handle for the browser test
        self.refresh()

    @property
    def action_controls(self):
        return (
            self.pause_button,
            self.resume_button,
            self.cancel_button,
            self.exclude_button,
            self.lift_button,
            self.open_button,
            self.erase_button,
            self.refresh_button,
        )

    def refresh(self) -> None:
        """Reload the list; the selected search stays selected while it is on the page
        shown, and nothing is selected once it is gone (never a neighbour)."""
        with frozen(self.refresh_button):
            self.rows = queries.search_rows(
                self.status_filter.value, self.plz_prefix.value, self.today, self.sort.value
            )
        self._by_id = {r["search_id"]: r for r in self.rows}
        self.pager.set_rows(
            [
                [
                    r["search_id"],
                    r["patient_id"],
                    r["patient"],
                    r["plz"],
                    r["status"],
                    r["wartetage"],
                    r["ausschluesse"],
                ]
                for r in self.rows
            ],
            keys=[r["search_id"] for r in self.rows],
        )
        self._offer()
        self.show_exclusions()

    def _offer(self) -> None:
        """The selection offers the searches of the page shown; the selected one stays
        selected while it is there."""
        options = [
            (f"{r['search_id']} – {r['patient']} ({r['status']})", r["search_id"])
            for r in (self._by_id[k] for k in self.pager.visible_keys)
        ]
        # the first time the first row; later a vanished selection is not replaced by a
        # neighbour (a repeated click must not act on another search)
        choose(self.search_select, options, self.selected_search_id, first=not self._offered)
        self._offered = True

    def select(self, search_id: int) -> bool:
        """Show the page holding ``search_id`` and select it; when the list (status and PLZ
        filter) has no such search nothing is selected. True if it is selected now."""
        return self.pager.select(self.search_select, search_id)

    def show_exclusions(self) -> None:
        """The selected search's exclusions: therapist, reason, date and who."""
        search_id = self.selected_search_id
        self.exclusions = list_exclusions(search_id) if search_id is not None else []
        names = queries.therapist_names(e["therapist_id"] for e in self.exclusions)
        rows = [
            [
                f"{e['therapist_id']} {names.get(e['therapist_id'], '')}".strip(),
                e["reason"] or "—",
                (e["excluded_at"] or "—").replace("T", " "),
                e["by"] or "unbekannt",
            ]
            for e in self.exclusions
        ]
        title = (
            f"Ausschlüsse der Suche {esc(search_id)}" if search_id is not None else "Ausschlüsse"
        )
        self.exclusions_table.value = f"<b>{title}</b>" + table(
            ["Therapeut", "Grund", "Seit", "Von"], rows
        )
        self.lift_select.options = [
            (f"{e['therapist_id']} {names.get(e['therapist_id'], '')}".strip(), e["therapist_id"])
            for e in self.exclusions
        ]
        self.lift_select.value = None

    def lift_exclusion(self):
        """Lift the chosen exclusion of the selected search; a reason is required."""
        search_id = self._need_selection()
        if search_id is None:
            return None
        therapist_id = self.lift_select.value
        if therapist_id is None:
            self.status.error("Keinen Ausschluss ausgewählt")
            return None
        reason = self.lift_reason.value
        result = run_action(
            self.status,
            self.action_controls,
            lambda: remove_exclusion(
                search_id, therapist_id, bounded_text(reason, field="Grund"), actor=self.actor
            ),
            lambda _: f"Ausschluss von Therapeut {therapist_id} für Suche {search_id} aufgehoben",
        )
        if result is not None:
            self.lift_reason.value = ""
            self.refresh()
        return result

    def _need_selection(self) -> int | None:
        if self.selected_search_id is None:
            self.status.error("Keine Suche ausgewählt")
        return self.selected_search_id

    def ask_cancel(self) -> None:
        """Cancelling ends the search for good: ask first, naming the search and its
        patient; the confirmation acts on that search even if the list changes meanwhile."""
        search_id = self._need_selection()
        if search_id is None:
            return
        row = self._by_id.get(search_id)
        who = f" ({row['patient']}, wartet seit {row['wartetage']} Tagen)" if row else ""
        self.confirmation.ask(
            f"Suche {search_id}{who} endgültig abbrechen? Sie verlässt alle offenen Anfragen "
            "und kommt nicht in den Pool zurück.",
            f"Ja, Suche {search_id} abbrechen",
            lambda: self.set_status("abgebrochen", search_id=search_id),
        )

    def set_status(self, status: str, search_id: int | None = None):
        search_id = search_id if search_id is not None else self._need_selection()
        if search_id is None:
            return None
        row = self._by_id.get(search_id)
        before = row["status"] if row else None
        result = run_action(
            self.status,
            self.action_controls,
            lambda: update_platzsuche(search_id, status=status, actor=self.actor),
            lambda s: (
                f"Suche {s.id} war schon {STATUS_TEXT.get(s.status, s.status)}: nichts geändert"
                if s.status == before
                else f"Suche {s.id} ist jetzt {STATUS_TEXT.get(s.status, s.status)}"
            ),
        )
        if result is not None:
            self.refresh()
        return result

    def exclude(self):
        search_id = self._need_selection()
        if search_id is None:
            return None
        therapist_id = self.therapist_id.value
        result = run_action(
            self.status,
            self.action_controls,
            lambda: exclude_therapist(
                search_id,
                therapist_id,
                bounded_text(self.exclusion_reason.value, field="Grund"),
                actor=self.actor,
            ),
            lambda added: (
                f"Therapeut {therapist_id} für Suche {search_id} ausgeschlossen"
                if added
                else f"Therapeut {therapist_id} war für Suche {search_id} schon ausgeschlossen"
            ),
        )
        if result is not None:
            self.exclusion_reason.value = ""
            self.refresh()
        return result

    def open_search(self):
        patient_id = self.patient_id.value
        result = run_action(
            self.status,
            self.action_controls,
            lambda: create_platzsuche(patient_id, actor=self.actor),
            lambda s: f"Suche {s.id} für Patient {patient_id} eröffnet",
        )
        if result is not None:
            self.refresh()
            self.select(result.id)  # its page shown, when the filters list it
        return result

    def erase(self):
        """Erase the selected search's patient; needs name, reason and the confirmation."""
        search_id = self._need_selection()
        if search_id is None:
            return None
        row = self._by_id.get(search_id)
        if row is None:
            self.status.error("Suche nicht in der Liste: bitte aktualisieren")
            return None
        patient_id = row["patient_id"]

        def action():
            if not self.erase_confirm.value:
                raise OperationError("CONFIRMATION_REQUIRED", "Löschung bitte bestätigen")
            reason = bounded_text(self.erase_reason.value, field="Grund")
            return erase_patient(patient_id, self.erase_actor.value, reason)

        result = run_action(
            self.status,
            self.action_controls,
            action,
            lambda r: (
                f"Patient {patient_id} war schon gelöscht"
                if r["already_erased"]
                else f"Daten von Patient {patient_id} gelöscht"
            ),
            needs="admin",
        )
        if result is not None:
            self.erase_confirm.value = False
            self.erase_reason.value = ""
            self.refresh()
        return result
