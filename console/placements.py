"""The Vermittlungen panel: placements awaiting the patient's answer (docs/domain.md §11.3).

Staff see every placed, still ``aktiv`` search with the state of its placement email and
reminder, record what the patient said on the phone (the same three outcomes as the
email's links, through ``operations.placements.record_placement_outcome``, source
``staff``) and can queue a placement email with another template, e.g. a meeting
confirmation. Nothing here renders an email: that needs the signing key, which only the
workers have; the console writes outbox rows.

The list is paged and filterable with the selection and the actions above it
(``console.paging``); the selection offers the searches of the page shown. Dates in local
time, German labels (``console.fmt``).
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import traitlets

from db.models import Patient, Therapist
from operations import placements
from psymatch.domain import vocab
from psymatch.domain.searches import EMAIL_TEMPLATES

from . import fmt
from .common import StatusLine, choose, frozen, run_action, staff_name
from .paging import PagedTable

HEADERS = ["Suche", "Patient", "Therapeut", "Vermittlungsmail", "gesendet am", "Tage", "Erinnerung"]


def _email_status(value) -> str:
    return "keine" if value is None else fmt.label(value, "EMAILSTATUS")


TEMPLATE_LABELS = {
    "email_contact": "Kontakt per E-Mail",
    "phone_contact": "Kontakt per Telefon",
    "meeting_confirmation_email": "Termin vereinbart (Bestätigung per E-Mail)",
    "meeting_confirmation_phone": "Termin vereinbart (Bestätigung per Telefon)",
}


def _name(model, row_id) -> str:
    row = model.by_id(row_id)
    return " ".join(p for p in (row.vorname, row.nachname) if p) if row else ""


class PlacementsPanel(widgets.VBox):
    """Placements awaiting confirmation; record an outcome or send another template."""

    rows = traitlets.List()
    selected_search_id = traitlets.Int(allow_none=True)

    def __init__(
        self,
        now: dt.datetime | None = None,
        actor: str | None = None,
        page_size: int = 25,
        **kwargs,
    ):
        self.now = now
        self.actor = actor if actor is not None else staff_name()
        self.names: dict[int, tuple[str, str]] = {}
        self.status = StatusLine()
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.search_select = widgets.Dropdown(
            description="Suche", options=[], layout=widgets.Layout(width="520px")
        )
        self.outcome_buttons = {
            outcome: widgets.Button(
                description=label,
                tooltip=label,
                layout=widgets.Layout(width="auto"),
                button_style="success" if outcome == vocab.STATTGEFUNDEN else "",
            )
            for outcome, label in vocab.VERMITTLUNGSERGEBNIS_LABELS.items()
        }
        self.template = widgets.Dropdown(
            description="Vorlage",
            options=[(TEMPLATE_LABELS[t], t) for t in EMAIL_TEMPLATES],
            value="meeting_confirmation_email",
            style={"description_width": "initial"},
        )
        self.meeting_date = widgets.DatePicker(description="Termin am")
        self.meeting_time = widgets.Text(description="Uhrzeit", placeholder="HH:MM")
        self.send_button = widgets.Button(
            description="Vermittlungsmail senden",
            icon="envelope",
            layout=widgets.Layout(width="auto"),
        )

        self.refresh_button.on_click(lambda _: self.refresh())
        for outcome, button in self.outcome_buttons.items():
            button.on_click(lambda _, o=outcome: self.record(o))
        self.send_button.on_click(lambda _: self.send_email())
        traitlets.link((self.search_select, "value"), (self, "selected_search_id"))
        self.pager = PagedTable(
            HEADERS,
            actions=[
                widgets.VBox(
                    [
                        widgets.HBox([self.refresh_button, self.search_select]),
                        widgets.HTML("<b>Rückmeldung nach Anruf erfassen</b>"),
                        widgets.HBox(list(self.outcome_buttons.values())),
                        widgets.HTML("<b>Vermittlungsmail mit anderer Vorlage</b>"),
                        widgets.HBox([self.template, self.meeting_date, self.meeting_time]),
                        self.send_button,
                        self.status,
                    ]
                )
            ],
            page_size=page_size,
            filter_placeholder="Name, Suche, Therapeut …",
        )
        self.listing = self.pager.output
        self.pager.observe(lambda _: self._offer(), names="visible_keys")

        super().__init__(
            [
                widgets.HTML("<h3>Vermittlungen (Rückmeldung der Patienten offen)</h3>"),
                self.pager,
            ],
            **kwargs,
        )
        self.add_class("psymatch-placements")
        self.refresh()

    @property
    def action_controls(self):
        return (self.refresh_button, self.send_button, *self.outcome_buttons.values())

    def refresh(self) -> None:
        with frozen(self.refresh_button):
            self.rows = placements.awaiting_confirmation(self.now)
        self.names = {
            r["platzsuche_id"]: (
                _name(Patient, r["patient_id"]),
                _name(Therapist, r["therapist_id"]),
            )
            for r in self.rows
        }
        self.pager.set_rows(
            [
                [
                    r["platzsuche_id"],
                    f"{r['patient_id']} {self.names[r['platzsuche_id']][0]}",
                    f"{r['therapist_id']} {self.names[r['platzsuche_id']][1]}",
                    _email_status(r["email_status"]),
                    fmt.date_de(r["sent_at"]),
                    "" if r["days"] is None else fmt.number_de(r["days"]),
                    _email_status(r["reminder_status"]),
                ]
                for r in self.rows
            ],
            keys=[r["platzsuche_id"] for r in self.rows],
        )
        self._offer()

    def _offer(self) -> None:
        """The selection offers the searches of the page shown; the selected one stays
        selected while it is there."""
        previous = self.selected_search_id
        shown = set(self.pager.visible_keys)
        options = [
            (
                f"{r['platzsuche_id']} – {self.names[r['platzsuche_id']][0]} "
                f"bei {self.names[r['platzsuche_id']][1]}",
                r["platzsuche_id"],
            )
            for r in self.rows
            if r["platzsuche_id"] in shown
        ]
        # the first time the first row; later a vanished selection is not replaced
        # by a neighbour (a repeated click must not act on another record)
        choose(self.search_select, options, previous, first=not getattr(self, "_offered", False))
        self._offered = True

    def _need_search(self) -> int | None:
        if self.selected_search_id is None:
            self.status.error("Keine Suche ausgewählt")
        return self.selected_search_id

    def record(self, outcome: str):
        search_id = self._need_search()
        if search_id is None:
            return None
        label = vocab.VERMITTLUNGSERGEBNIS_LABELS[outcome]
        result = run_action(
            self.status,
            self.action_controls,
            lambda: placements.record_placement_outcome(
                search_id, outcome, actor=self.actor, source="staff", now=self.now
            ),
            lambda r: (
                f"Suche {search_id}: {label} erfasst"
                if r["changed"]
                else f"Suche {search_id}: bereits erfasst "
                f"({vocab.VERMITTLUNGSERGEBNIS_LABELS[r['recorded']]}), nichts geändert"
            ),
        )
        if result is not None:
            self.refresh()
        return result

    def send_email(self):
        search_id = self._need_search()
        if search_id is None:
            return None
        template = self.template.value
        meeting = None
        if template.startswith("meeting_"):
            meeting = {"date": self.meeting_date.value, "time": self.meeting_time.value}
        return run_action(
            self.status,
            self.action_controls,
            lambda: placements.request_placement_email(
                search_id, template, meeting, actor=self.actor, now=self.now
            ),
            lambda r: (
                f"Suche {search_id}: Vermittlungsmail ({TEMPLATE_LABELS[template]}) "
                "in Warteschlange"
            ),
        )
