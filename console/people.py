"""The Personen panel (issue 15.2): find a patient or therapist by name, email, phone or PLZ,
open the person's page with its timeline, and correct it.

- Search box and results (``operations.people.find_people``; at most ``MAX_RESULTS``, 20 a
  page). **Öffnen** shows the chosen person's page below.
- A page is bound to the one record it was opened for: every button on it acts on that
  record, whatever the results list shows meanwhile. Actions sit at the top: for a
  therapist the status (sperren, deaktivieren, reaktivieren: reason and a confirmation
  naming the therapist), *potenziell verfügbar* with its notes; for a patient **Suche
  öffnen** (``on_open_search``, see ``open_search_in``). Then the edit form (one field at a
  time, enum fields as German choices), for therapists the preferences, the record, and the
  timeline (20 a page).
- Reading needs the role ``lesen``, every change ``team``; changes go through
  ``operations.person_edit`` (the import's validation; refused: nothing written, the
  reason shown in German with its outcome code) and are audited with the signed-in person.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import ipywidgets as widgets

from operations import person_edit, person_pages
from operations.errors import OperationError
from operations.people import find_people
from psymatch.domain import validation, vocab
from psymatch.domain.schedule import WEEKDAYS

from .common import StatusLine, esc, run_action, staff_name, table

PAGE_SIZE = 20
MAX_RESULTS = 100
ART_LABELS = {"patient": "Patient/in", "therapeut": "Therapeut/in"}
STATUS_LABELS = {
    "patient": vocab.PATIENTENSTATUS_LABELS,
    "therapeut": vocab.THERAPEUTENSTATUS_LABELS,
}
KIND = {"patient": "patients", "therapeut": "therapists"}
# therapist status actions: (label, target status, button text)
STATUS_ACTIONS = {
    "gesperrt": ("Sperren", "sperren"),
    "inaktiv": ("Deaktivieren", "deaktivieren"),
    "aktiv": ("Reaktivieren", "reaktivieren"),
}
# fields psymatch maintains itself, shown read-only below the editable ones
SHOWN_MAINTAINED = {
    "patients": ("startdatum", "erster_therapieplatz_am", "funktionierender_therapieplatz_am"),
    "therapists": ("naechster_kontakt_moeglich",),
}
PREFERENCE_FLAGS = ("ueber_curavani_informiert", "bevorzugt_gruppentherapie", "kassensitz")
_DAY_ABBREVIATIONS = dict(zip(WEEKDAYS, ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"), strict=True))
CODE_TEXTS = {
    "INVALID_SEARCH": "Bitte Name, E-Mail, Telefonnummer oder PLZ eingeben",
    "INVALID_LIMIT": "Ungültige Trefferzahl",
}


# The validation's reasons (English, shared with the import report) in German for staff.
_REASONS = [
    (r"impossible date '(.*)'", "unmögliches Datum „{0}“"),
    (
        r"expected a date YYYY-MM-DD or DD\.MM\.YYYY, got '(.*)'",
        "bitte ein Datum TT.MM.JJJJ, nicht „{0}“",
    ),
    (r"(\S+) lies in the future", "liegt in der Zukunft"),
    (r"not a valid email address: '(.*)'", "keine gültige E-Mail-Adresse: „{0}“"),
    (
        r"the part before '@' is longer than 64 characters",
        "der Teil vor dem @ ist länger als 64 Zeichen",
    ),
    (r"postal code must be .*five digits.*", "die PLZ hat genau fünf Ziffern"),
    (r"unknown postal code '(.*)'", "unbekannte PLZ {0}"),
    (r"too long \((\d+) characters, at most (\d+)\)", "zu lang ({0} Zeichen, höchstens {1})"),
    (r"must be a single line without control characters", "bitte nur eine Zeile"),
    (r"unknown value '(.*?)' .*", "unbekannter Wert „{0}“"),
    (r"expected true/false.*", "bitte ja oder nein"),
    (r"expected a whole number, got (.*)", "bitte eine ganze Zahl, nicht {0}"),
    (r"expected a number, got (.*)", "bitte eine Zahl, nicht {0}"),
    (r"must be 0 or more, got (.*)", "darf nicht negativ sein ({0})"),
    (r"must be greater than 0, got (.*)", "muss größer als 0 sein ({0})"),
    (r"unknown symptom '(.*?)'.*", "unbekanntes Symptom „{0}“"),
    (r"symptom '(.*)' listed twice", "Symptom „{0}“ doppelt"),
    (r"needs (\d+) to (\d+) symptoms, got (\d+)", "{0} bis {1} Symptome nötig, angegeben {2}"),
    (r"'(.*)' is not an ICD-10 code.*", "„{0}“ ist kein ICD-10-Code wie F32 oder F41.1"),
    (r"therapist ids are 1 or more, got (.*)", "Therapeuten-Nummern sind 1 oder größer ({0})"),
    (
        r"alter_min (\d+) is greater than alter_max (\d+)",
        "Mindestalter {0} ist größer als Höchstalter {1}",
    ),
    (r"unknown weekday '(.*)'", "unbekannter Wochentag „{0}“"),
    (r"malformed time range '(.*)'.*", "Zeitraum „{0}“ bitte als HH:MM-HH:MM"),
    (r"malformed schedule part '(.*?)'.*", "Angabe „{0}“ bitte wie „Mo 09:00-12:00, 14:00-16:00“"),
    (r"impossible time in range '(.*)'", "unmögliche Uhrzeit in „{0}“"),
    (r"time range '(.*)' must start before it ends", "Zeitraum „{0}“ endet vor seinem Beginn"),
    (r"schedule needs at least one time range", "mindestens ein Zeitraum nötig"),
    (r"entries must be non-empty text.*", "leere Einträge sind nicht erlaubt"),
]


def german_reason(reason: str) -> str:
    """The validation's reason in German (the original text if no rule matches)."""
    for pattern, german in _REASONS:
        match = re.fullmatch(pattern, reason or "", re.DOTALL)
        if match:
            return german.format(*match.groups())
    return reason


def field_label(name: str | None) -> str:
    if not name:
        return ""
    base, _, rest = name.partition(".")
    return vocab.FIELD_LABELS.get(base, base) + (f" ({rest})" if rest else "")


class PeopleStatus(StatusLine):
    """The status line with German field names instead of model field names."""

    def error(self, error: OperationError | str) -> None:
        if isinstance(error, OperationError):
            field = error.details.get("field")
            message = CODE_TEXTS.get(error.code, error.message)
            if error.code == "FIELD_INVALID" and error.details.get("reason"):
                message = f"Ungültiger Wert: {german_reason(error.details['reason'])}"
            where = f"{field_label(field)}: " if field else ""
            text = f"{where}{message} [{error.code}]"
            self.value = f"<span style='color:#b3261e'>✗ {esc(text)}</span>"
        else:
            super().error(error)


# --- showing values -------------------------------------------------------------------------


def schedule_text(value: dict | None) -> str:
    """A weekly schedule in the form the import reads: ``Mo 09:00-12:00, 14:00-16:00; Di …``."""
    if not value:
        return ""
    return "; ".join(
        f"{_DAY_ABBREVIATIONS.get(day, day)} {', '.join(ranges)}" for day, ranges in value.items()
    )


def input_text(name: str, value) -> str:
    """A stored value as the text the edit form (and the import) accepts."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if name in ("zeitliche_verfuegbarkeit", "arbeitszeiten", "telefonische_erreichbarkeit"):
        return schedule_text(value)
    if name == "raeumliche_verfuegbarkeit":
        return "" if value.get("max_km") is None else f"{value['max_km']:g}".replace(".", ",")
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def shown_value(name: str, value) -> str:
    """A stored value for reading: enum values as German labels, '—' for none."""
    labels = vocab.ENUM_FIELD_LABELS.get(name)
    if labels is not None and value is not None:
        return labels.get(value, str(value))
    text = input_text(name, value)
    return text if text else "—"


# --- the person's page ----------------------------------------------------------------------


class PersonPage(widgets.VBox):
    """One person's page, bound to ``(art, record_id)`` for every action it offers."""

    def __init__(
        self,
        art: str,
        record_id: int,
        *,
        actor: str | None = None,
        on_open_search: Callable[[int], object] | None = None,
        **kwargs,
    ):
        self.art = art
        self.record_id = record_id
        self.kind = KIND[art]
        self.actor = actor if actor is not None else staff_name()
        self.on_open_search = on_open_search
        self.data: dict = {}
        self.timeline_page = 1
        self.status = PeopleStatus()
        self.header = widgets.HTML()
        self.details = widgets.HTML()
        self.timeline = widgets.HTML()
        self.timeline_label = widgets.Label()
        self.timeline_prev = widgets.Button(description="Zurück", icon="arrow-left")
        self.timeline_next = widgets.Button(description="Weiter", icon="arrow-right")
        self.timeline_prev.on_click(lambda _: self.show_timeline(self.timeline_page - 1))
        self.timeline_next.on_click(lambda _: self.show_timeline(self.timeline_page + 1))

        # edit one field
        editable = [
            name
            for name in validation.FIELDS[self.kind]
            if name not in person_edit.NOT_EDITABLE[self.kind]
        ]
        self.edit_field = widgets.Dropdown(
            description="Feld",
            options=sorted(((field_label(n), n) for n in editable), key=lambda o: o[0].lower()),
            value=None,
        )
        self.edit_text = widgets.Textarea(description="Neuer Wert", rows=1)
        self.edit_choice = widgets.Dropdown(description="Neuer Wert", options=[])
        self.edit_reason = widgets.Text(description="Anlass", placeholder="optional")
        self.edit_button = widgets.Button(description="Speichern", icon="save")
        self.edit_field.observe(lambda _: self._prefill(), names="value")
        self.edit_button.on_click(lambda _: self.save_field())

        actions: list[widgets.Widget] = []
        if art == "therapeut":
            self.status_action = widgets.Dropdown(description="Status", options=[])
            self.status_reason = widgets.Text(description="Grund", placeholder="Pflichtfeld")
            self.status_date = widgets.Text(
                description="Sperrdatum", placeholder="TT.MM.JJJJ (leer: heute)"
            )
            self.status_confirm = widgets.Checkbox(
                description="", indent=False, layout=widgets.Layout(width="auto")
            )
            self.status_button = widgets.Button(
                description="Status ändern", button_style="warning", icon="ban"
            )
            self.status_action.observe(lambda _: self._confirm_text(), names="value")
            self.status_button.on_click(lambda _: self.change_status())
            self.available = widgets.Checkbox(description="potenziell verfügbar", indent=False)
            self.available_notes = widgets.Textarea(
                description="Notizen", placeholder="z. B. ab März zwei Plätze", rows=2
            )
            self.available_button = widgets.Button(description="Verfügbarkeit speichern")
            self.available_button.on_click(lambda _: self.save_available())
            self.pref_symptoms = widgets.SelectMultiple(
                description="Symptome", options=list(vocab.SYMPTOME), rows=6
            )
            self.pref_age_min = widgets.Text(description="Alter ab", placeholder="leer: egal")
            self.pref_age_max = widgets.Text(description="Alter bis", placeholder="leer: egal")
            self.pref_gender = widgets.Dropdown(
                description="Geschlecht",
                options=[("—", None)]
                + [
                    (vocab.THERAPEUTENGESCHLECHT_PRAEFERENZ_LABELS[v], v)
                    for v in vocab.THERAPEUTENGESCHLECHT_PRAEFERENZ
                ],
            )
            self.pref_hours = widgets.Text(
                description="Arbeitszeiten", placeholder="Mo 09:00-12:00; Di 14:00-18:00"
            )
            self.pref_phone = widgets.Text(
                description="Telefonzeiten", placeholder="Di 08:00-09:00"
            )
            self.pref_flags = {
                name: widgets.Checkbox(description=field_label(name), indent=False)
                for name in PREFERENCE_FLAGS
            }
            self.pref_button = widgets.Button(description="Präferenzen speichern", icon="save")
            self.pref_button.on_click(lambda _: self.save_preferences())
            for w in (self.pref_hours, self.pref_phone, self.status_reason, self.status_date):
                w.style = {"description_width": "initial"}
            actions = [
                widgets.HTML("<b>Status</b>"),
                widgets.HBox([self.status_action, self.status_reason, self.status_date]),
                widgets.HBox([self.status_confirm, self.status_button]),
                widgets.HTML("<b>Verfügbarkeit</b>"),
                widgets.HBox([self.available, self.available_notes, self.available_button]),
            ]
        else:
            self.open_search_button = widgets.Button(description="Suche öffnen", icon="search")
            self.open_search_button.on_click(lambda _: self.open_search())
            actions = [self.open_search_button]

        children = [self.header, *actions, self.status]
        children += [
            widgets.HTML("<b>Feld ändern</b>"),
            widgets.HBox([self.edit_field, self.edit_text, self.edit_choice]),
            widgets.HBox([self.edit_reason, self.edit_button]),
        ]
        if art == "therapeut":
            children += [
                widgets.HTML("<b>Präferenzen</b>"),
                widgets.HBox([self.pref_symptoms, widgets.VBox(list(self.pref_flags.values()))]),
                widgets.HBox([self.pref_age_min, self.pref_age_max, self.pref_gender]),
                widgets.HBox([self.pref_hours, self.pref_phone]),
                self.pref_button,
            ]
        children += [
            widgets.HTML("<b>Verlauf</b>"),
            widgets.HBox([self.timeline_prev, self.timeline_label, self.timeline_next]),
            self.timeline,
            widgets.HTML("<b>Stammdaten</b>"),
            self.details,
        ]
        super().__init__(children, **kwargs)
        self.add_class("psymatch-person")
        self.reload()

    # --- reading ---------------------------------------------------------------------------

    @property
    def action_controls(self):
        controls = [self.edit_button]
        if self.art == "therapeut":
            controls += [self.status_button, self.available_button, self.pref_button]
        else:
            controls.append(self.open_search_button)
        return controls

    @property
    def record(self):
        return self.data.get("record")

    def reload(self) -> None:
        """Read the record and the first timeline page again (after every change)."""
        load = person_pages.patient_page if self.art == "patient" else person_pages.therapist_page
        data = run_action(
            self.status, (), lambda: load(self.record_id, PAGE_SIZE), lambda d: "", needs="lesen"
        )
        if data is None:
            return
        self.status.clear()
        self.data = data
        record = data["record"]
        status = STATUS_LABELS[self.art].get(data["status"], data["status"])
        extra = ""
        if self.art == "therapeut" and record.status == "gesperrt":
            extra = (
                f" – gesperrt seit {esc(shown_value('sperrdatum', record.sperrdatum))}: "
                f"{esc(record.sperrgrund or '')}"
            )
        self.header.value = (
            f"<h3>{esc(ART_LABELS[self.art])} {esc(data['name'])} "
            f"<small>(Nr. {self.record_id}, {esc(status)}){extra}</small></h3>"
        )
        fields = [*validation.FIELDS[self.kind], *SHOWN_MAINTAINED[self.kind]]
        rows = [[field_label(n), shown_value(n, getattr(record, n, None))] for n in fields]
        self.details.value = table(["Feld", "Wert"], rows, css="psymatch-table psymatch-details")
        self._show_page(data["timeline"])
        self._prefill()
        if self.art == "therapeut":
            self._fill_therapist(record)
        else:
            self.open_search_button.disabled = data["suche_id"] is None
            self.open_search_button.tooltip = (
                f"Suche {data['suche_id']} im Such-Panel öffnen"
                if data["suche_id"]
                else "Keine Suche für diese Person"
            )

    def _fill_therapist(self, record) -> None:
        self.status_action.options = [
            (label, status)
            for status, (label, _) in STATUS_ACTIONS.items()
            if status != record.status
        ]
        self.status_reason.value = ""
        self.status_date.value = ""
        self._confirm_text()
        self.available.value = bool(record.potenziell_verfuegbar)
        self.available_notes.value = record.potenziell_verfuegbar_notizen or ""
        self.pref_symptoms.value = tuple(
            s for s in (record.bevorzugte_symptome or []) if s in vocab.SYMPTOME
        )
        self.pref_age_min.value = input_text("alter_min", record.alter_min)
        self.pref_age_max.value = input_text("alter_max", record.alter_max)
        self.pref_gender.value = record.geschlechtspraeferenz
        self.pref_hours.value = schedule_text(record.arbeitszeiten)
        self.pref_phone.value = schedule_text(record.telefonische_erreichbarkeit)
        for name, box in self.pref_flags.items():
            box.value = bool(getattr(record, name))

    def _confirm_text(self) -> None:
        self.status_confirm.value = False
        target = self.status_action.value
        if target is None:
            self.status_confirm.description = ""
            return
        verb = STATUS_ACTIONS[target][1]
        self.status_confirm.description = (
            f"Ja, {self.data.get('name', '')} (Nr. {self.record_id}) {verb}"
            + (": wird nicht mehr angefragt" if target != "aktiv" else "")
        )

    def _show_page(self, page: dict) -> None:
        self.timeline_page = page["seite"]
        self.timeline_label.value = (
            f"Seite {page['seite']} von {page['seiten']} "
            f"({page['gesamt']} {'Eintrag' if page['gesamt'] == 1 else 'Einträge'})"
        )
        self.timeline_prev.disabled = page["seite"] <= 1
        self.timeline_next.disabled = page["seite"] >= page["seiten"]
        self.timeline.value = table(
            ["Zeit", "Art", "Eintrag"],
            [[e["zeit"], e["art"], e["text"]] for e in page["eintraege"]],
            css="psymatch-table psymatch-timeline",
        )

    def show_timeline(self, page: int) -> None:
        load = (
            person_pages.patient_timeline
            if self.art == "patient"
            else person_pages.therapist_timeline
        )
        result = run_action(
            self.status,
            (self.timeline_prev, self.timeline_next),
            lambda: load(self.record_id, max(1, page), PAGE_SIZE),
            lambda p: f"Verlauf Seite {p['seite']}",
            needs="lesen",
        )
        if result is not None:
            self._show_page(result)

    def _prefill(self) -> None:
        name = self.edit_field.value
        labels = vocab.ENUM_FIELD_LABELS.get(name)
        enum_values = dict(
            anrede=vocab.ANREDE,
            geschlecht=vocab.GESCHLECHT,
            geschlechtspraeferenz=vocab.THERAPEUTENGESCHLECHT_PRAEFERENZ,
            bevorzugtes_therapeutengeschlecht=vocab.THERAPEUTENGESCHLECHT_PRAEFERENZ,
            psychotherapieverfahren=vocab.THERAPIEVERFAHREN,
            bevorzugtes_therapieverfahren=vocab.THERAPIEVERFAHREN,
            verkehrsmittel=vocab.VERKEHRSMITTEL,
        ).get(name)
        value = getattr(self.record, name, None) if name and self.record is not None else None
        if enum_values:
            self.edit_choice.options = [("—", None)] + [(labels[v], v) for v in enum_values]
            self.edit_choice.value = value if value in enum_values else None
        self.edit_choice.layout.display = None if enum_values else "none"
        self.edit_text.layout.display = "none" if enum_values else None
        self.edit_text.value = "" if enum_values or not name else input_text(name, value)

    # --- changes -----------------------------------------------------------------------------

    def _edit(self, changes: dict, reason=None, call=None):
        """Save ``changes`` to this page's record (or run ``call(record_id)``), then reload."""
        record_id = self.record_id
        if call is None:
            operation = (
                person_edit.edit_patient if self.art == "patient" else person_edit.edit_therapist
            )

            def call(record_id):
                return operation(record_id, changes, actor=self.actor, reason=reason)

        result = run_action(
            self.status, self.action_controls, lambda: call(record_id), lambda r: ""
        )
        if result is None:
            return None
        message = (
            "Gespeichert: " + ", ".join(field_label(n) for n in result["changed"])
            if result["changed"]
            else "Keine Änderung: diese Werte sind bereits gespeichert"
        )
        self.reload()
        self.status.ok(message)
        return result

    def save_field(self):
        name = self.edit_field.value
        if name is None:
            self.status.error("Bitte ein Feld wählen")
            return None
        if self.edit_choice.layout.display != "none":
            value = self.edit_choice.value
        else:
            value = self.edit_text.value
        return self._edit({name: value}, self.edit_reason.value or None)

    def save_preferences(self):
        changes = {
            "bevorzugte_symptome": list(self.pref_symptoms.value),
            "alter_min": self.pref_age_min.value,
            "alter_max": self.pref_age_max.value,
            "geschlechtspraeferenz": self.pref_gender.value,
            "arbeitszeiten": self.pref_hours.value,
            "telefonische_erreichbarkeit": self.pref_phone.value,
            **{name: box.value for name, box in self.pref_flags.items()},
        }
        return self._edit(changes)

    def save_available(self):
        value, notes = self.available.value, self.available_notes.value
        return self._edit(
            {},
            call=lambda record_id: person_edit.set_potenziell_verfuegbar(
                record_id, value, notes, actor=self.actor
            ),
        )

    def change_status(self):
        target = self.status_action.value
        if target is None:
            self.status.error("Bitte eine Statusänderung wählen")
            return None
        if not self.status_confirm.value:
            self.status.error("Bitte zuerst bestätigen (Häkchen setzen); es wurde nichts geändert")
            return None
        record_id = self.record_id
        reason, day = self.status_reason.value, self.status_date.value
        result = run_action(
            self.status,
            self.action_controls,
            lambda: person_edit.set_therapist_status(
                record_id,
                target,
                reason,
                actor=self.actor,
                sperrdatum=day if target == "gesperrt" else None,
            ),
            lambda r: "",
        )
        if result is None:
            return None
        self.reload()
        self.status.ok(
            f"{self.data['name']}: Status "
            f"{vocab.THERAPEUTENSTATUS_LABELS[result['before']]} → "
            f"{vocab.THERAPEUTENSTATUS_LABELS[result['after']]}"
        )
        return result

    def open_search(self):
        search_id = self.data.get("suche_id")
        if search_id is None:
            self.status.error("Für diese Person gibt es keine Suche")
            return None
        if self.on_open_search is None:
            self.status.error("Das Such-Panel ist hier nicht verbunden")
            return None
        if self.on_open_search(search_id) is False:
            self.status.error(f"Suche {search_id} ließ sich im Such-Panel nicht öffnen")
            return None
        self.status.ok(f"Suche {search_id} geöffnet")
        return search_id


# --- search and results ----------------------------------------------------------------------


class PeoplePanel(widgets.VBox):
    """Search box, paged results and the page of the person opened from them."""

    def __init__(
        self,
        actor: str | None = None,
        on_open_search: Callable[[int], object] | None = None,
        **kwargs,
    ):
        self.actor = actor
        self.on_open_search = on_open_search
        self.results: list[dict] = []
        self.results_page = 1
        self.person: PersonPage | None = None
        self.status = PeopleStatus()
        self.query = widgets.Text(
            description="Suche",
            placeholder="Name, E-Mail, Telefon oder PLZ",
            continuous_update=False,
        )
        self.search_button = widgets.Button(description="Suchen", icon="search")
        self.results_table = widgets.HTML()
        self.results_label = widgets.Label()
        self.prev_button = widgets.Button(description="Zurück", icon="arrow-left")
        self.next_button = widgets.Button(description="Weiter", icon="arrow-right")
        self.result_select = widgets.Dropdown(description="Person", options=[])
        self.open_button = widgets.Button(description="Öffnen", icon="user")
        self.person_box = widgets.VBox()
        self.search_button.on_click(lambda _: self.search())
        self.prev_button.on_click(lambda _: self.show_results(self.results_page - 1))
        self.next_button.on_click(lambda _: self.show_results(self.results_page + 1))
        self.open_button.on_click(lambda _: self.open_selected())
        self.result_select.layout.width = "32em"
        super().__init__(
            [
                widgets.HTML("<h3>Personen</h3>"),
                widgets.HBox([self.query, self.search_button]),
                self.status,
                widgets.HBox([self.result_select, self.open_button]),
                widgets.HBox([self.prev_button, self.results_label, self.next_button]),
                self.results_table,
                self.person_box,
            ],
            **kwargs,
        )
        self.add_class("psymatch-people")
        self.show_results(1)

    def search(self):
        text = self.query.value
        found = run_action(
            self.status,
            (self.search_button,),
            lambda: find_people(text, MAX_RESULTS),
            lambda f: (
                f"{len(f)} Treffer"
                + (" (mehr gibt es: bitte genauer suchen)" if len(f) >= MAX_RESULTS else "")
            ),
            needs="lesen",
        )
        if found is None:
            return None
        self.results = found
        self.show_results(1)
        return found

    def show_results(self, page: int) -> None:
        data = person_pages.page_of(self.results, max(1, page), PAGE_SIZE)
        self.results_page = data["seite"]
        self.results_label.value = (
            f"Seite {data['seite']} von {data['seiten']} ({data['gesamt']} Treffer)"
        )
        self.prev_button.disabled = data["seite"] <= 1
        self.next_button.disabled = data["seite"] >= data["seiten"]
        self.results_table.value = table(
            ["Art", "Nr.", "Name", "PLZ", "Ort", "E-Mail", "Telefon", "Status"],
            [
                [
                    ART_LABELS[r["art"]],
                    r["id"],
                    r["name"],
                    r["plz"] or "",
                    r["ort"] or "",
                    r["email"] or "",
                    r["telefon"] or "",
                    STATUS_LABELS[r["art"]].get(r["status"], r["status"]),
                ]
                for r in data["eintraege"]
            ],
            css="psymatch-table psymatch-people-results",
        )
        self.result_select.options = [
            (
                f"{ART_LABELS[r['art']]} {r['name']} (Nr. {r['id']}, {r['plz'] or '—'})",
                (r["art"], r["id"]),
            )
            for r in data["eintraege"]
        ]
        self.result_select.value = None

    def open_selected(self):
        chosen = self.result_select.value
        if chosen is None:
            self.status.error("Bitte zuerst eine Person auswählen")
            return None
        return self.open_person(*chosen)

    def open_person(self, art: str, record_id: int) -> PersonPage:
        """Show the page of one patient (``patient``) or therapist (``therapeut``)."""
        self.person = PersonPage(
            art, record_id, actor=self.actor, on_open_search=self.on_open_search
        )
        self.person_box.children = [self.person]
        self.status.clear()
        return self.person


def open_search_in(searches_panel, search_id: int) -> bool:
    """Show ``search_id`` in a Searches panel (console/searches.py): every status, no PLZ
    filter, the search selected. For the lead to wire the Personen page's **Suche öffnen**
    to the panel where staff work on searches; True if the search is now selected."""
    searches_panel.status_filter.value = ()
    searches_panel.plz_prefix.value = ""
    searches_panel.refresh()
    ids = [value for _, value in searches_panel.search_select.options]
    if search_id not in ids:
        return False
    searches_panel.search_select.value = search_id
    return searches_panel.selected_search_id == search_id


def people_app() -> widgets.VBox:
    """The Personen notebook: the panel, and below it a Searches panel, created the first
    time a patient page's **Suche öffnen** is clicked, showing that search."""
    searches_box = widgets.VBox()

    def open_search(search_id: int) -> bool:
        from .searches import SearchesPanel

        if not searches_box.children:
            searches_box.children = [SearchesPanel()]
        return open_search_in(searches_box.children[0], search_id)

    return widgets.VBox([PeoplePanel(on_open_search=open_search), searches_box])
