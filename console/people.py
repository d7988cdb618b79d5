"""The Personen panel (issue 15.2): find a patient or therapist by name, email, phone or PLZ,
open the person's page with its timeline, and correct it.

- Search box, then the results (``operations.people.find_people``; at most
  ``MAX_RESULTS``) in a paged, filterable table with the selection and **Öffnen** on top.
- A page is bound to the one record it was opened for: every button on it acts on that
  record, whatever the results list shows meanwhile. Actions sit at the top: for a
  therapist the status (sperren, deaktivieren, reaktivieren: reason required, then a
  confirmation naming the therapist and what follows), *potenziell verfügbar* with its
  notes; for a patient **Suche öffnen** (``on_open_search``, see ``open_search_in``). Then
  the timeline (paged, filterable), the edit form (one field at a time, enum fields as
  German choices), for therapists the preferences, and the record.
- Reading needs the role ``lesen``, every change ``team``; changes go through
  ``operations.person_edit`` (the import's validation; refused: nothing written, the reason
  shown in German with its outcome code) and are audited with the signed-in person.

The operations hand the timeline over as events with codes; ``entry_text`` words them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import ipywidgets as widgets

from db.models import Patient, Platzsuche
from operations import person_edit, person_pages
from operations.errors import OperationError
from operations.people import find_people
from psymatch.domain import validation, vocab
from psymatch.domain.schedule import WEEKDAYS

from . import fmt
from .common import Confirmation, StatusLine, choose, esc, run_action, staff_name, table
from .inputs import bounded_text
from .messages import german
from .paging import PagedTable

PAGE_SIZE = 20
MAX_RESULTS = 100
NOTES_MAX = 2000
ART_LABELS = {"patient": "Patient/in", "therapeut": "Therapeut/in"}
STATUS_KIND = {"patient": "PATIENTENSTATUS", "therapeut": "THERAPEUTENSTATUS"}
KIND = {"patient": "patients", "therapeut": "therapists"}
# therapist status actions: target status -> (choice, verb, what follows)
STATUS_ACTIONS = {
    "gesperrt": ("Sperren", "sperren", "sie/er wird nicht mehr angefragt"),
    "inaktiv": ("Deaktivieren", "deaktivieren", "sie/er wird nicht mehr angefragt"),
    "aktiv": ("Reaktivieren", "reaktivieren", "sie/er kann wieder angefragt werden"),
}
# fields psymatch maintains itself, shown read-only below the editable ones
SHOWN_MAINTAINED = {
    "patients": ("startdatum", "erster_therapieplatz_am", "funktionierender_therapieplatz_am"),
    "therapists": ("naechster_kontakt_moeglich",),
}
PREFERENCE_FLAGS = ("ueber_curavani_informiert", "bevorzugt_gruppentherapie", "kassensitz")
SCHEDULE_FIELDS = ("zeitliche_verfuegbarkeit", "arbeitszeiten", "telefonische_erreichbarkeit")
_DAY_ABBREVIATIONS = dict(zip(WEEKDAYS, ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"), strict=True))
# enum fields of patients and therapists: the vocabulary of console.fmt that words them
ENUM_FIELDS = {
    "anrede": "ANREDE",
    "geschlecht": "GESCHLECHT",
    "geschlechtspraeferenz": "THERAPEUTENGESCHLECHT_PRAEFERENZ",
    "bevorzugtes_therapeutengeschlecht": "THERAPEUTENGESCHLECHT_PRAEFERENZ",
    "psychotherapieverfahren": "THERAPIEVERFAHREN",
    "bevorzugtes_therapieverfahren": "THERAPIEVERFAHREN",
    "verkehrsmittel": "VERKEHRSMITTEL",
}
FIELD_LABELS = {
    "external_id": "Externe ID",
    "anrede": "Anrede",
    "geschlecht": "Geschlecht",
    "titel": "Titel",
    "vorname": "Vorname",
    "nachname": "Nachname",
    "strasse": "Straße",
    "plz": "PLZ",
    "ort": "Ort",
    "email": "E-Mail",
    "telefon": "Telefon",
    "fax": "Fax",
    "webseite": "Webseite",
    "kassensitz": "Kassensitz",
    "telefonische_erreichbarkeit": "Telefonische Erreichbarkeit",
    "arbeitszeiten": "Arbeitszeiten",
    "fremdsprachen": "Fremdsprachen",
    "psychotherapieverfahren": "Psychotherapieverfahren",
    "zusatzqualifikationen": "Zusatzqualifikationen",
    "besondere_leistungsangebote": "Besondere Leistungsangebote",
    "letzter_kontakt_email": "Letzter Kontakt per E-Mail",
    "letzter_kontakt_telefon": "Letzter Kontakt per Telefon",
    "letztes_persoenliches_gespraech": "Letztes persönliches Gespräch",
    "potenziell_verfuegbar": "Potenziell verfügbar",
    "potenziell_verfuegbar_notizen": "Notizen zur Verfügbarkeit",
    "ueber_curavani_informiert": "Über Curavani informiert",
    "bevorzugte_diagnosen": "Bevorzugte Diagnosen (ICD-10)",
    "bevorzugte_symptome": "Bevorzugte Symptome",
    "alter_min": "Mindestalter",
    "alter_max": "Höchstalter",
    "geschlechtspraeferenz": "Bevorzugtes Geschlecht der Patient/innen",
    "bevorzugt_gruppentherapie": "Bevorzugt Gruppentherapie",
    "status": "Status",
    "sperrgrund": "Sperrgrund",
    "sperrdatum": "Sperrdatum",
    "naechster_kontakt_moeglich": "Nächster Kontakt möglich ab",
    "hausarzt": "Hausarzt/Hausärztin",
    "krankenkasse": "Krankenkasse",
    "krankenversicherungsnummer": "Versichertennummer",
    "geburtsdatum": "Geburtsdatum",
    "symptome": "Symptome",
    "erfahrung_mit_psychotherapie": "Erfahrung mit Psychotherapie",
    "letzte_sitzung_vorherige_psychotherapie": "Letzte Sitzung der vorherigen Therapie",
    "vertraege_unterschrieben": "Verträge unterschrieben",
    "zahlungsreferenz": "Zahlungsreferenz",
    "zahlung_eingegangen": "Zahlung eingegangen",
    "startdatum": "Startdatum",
    "zeitliche_verfuegbarkeit": "Zeitliche Verfügbarkeit",
    "raeumliche_verfuegbarkeit": "Maximale Entfernung (km)",
    "offen_fuer_gruppentherapie": "Offen für Gruppentherapie",
    "offen_fuer_diga": "Offen für DiGA",
    "ausgeschlossene_therapeuten": "Dauerhaft ausgeschlossene Therapeut/innen (Nr.)",
    "bevorzugtes_therapeutengeschlecht": "Bevorzugtes Geschlecht der Therapeut/in",
    "bevorzugtes_therapieverfahren": "Bevorzugtes Therapieverfahren",
    "letzter_kontakt": "Letzter Kontakt",
    "verkehrsmittel": "Verkehrsmittel",
    "erster_therapieplatz_am": "Erster Therapieplatz am",
    "funktionierender_therapieplatz_am": "Funktionierender Therapieplatz am",
    "empfehler_der_unterstuetzung": "Empfohlen durch",
}
# German texts of the codes the people operations answer with (console/messages.py has
# the codes shared with other panels)
CODE_TEXTS = {
    "INVALID_SEARCH": "Bitte Name, E-Mail, Telefonnummer oder PLZ eingeben",
    "NO_CHANGES": "Keine Änderung angegeben",
    "UNKNOWN_FIELD": "Dieses Feld gibt es nicht",
    "FIELD_MAINTAINED": "Dieses Feld pflegt psymatch selbst",
    "FIELD_NOT_EDITABLE": "Dieses Feld lässt sich hier nicht ändern",
    "FIELD_REQUIRED": "Pflichtfeld: darf nicht leer sein",
    "FIELD_INVALID": "Ungültiger Wert",
    "PATIENT_ERASED": "Die Daten dieser Person wurden gelöscht",
    "REASON_TOO_LONG": "Der Grund ist zu lang (höchstens 1.000 Zeichen)",
    "INVALID_DATE": "Ungültiges Sperrdatum (TT.MM.JJJJ, nicht in der Zukunft)",
    "STATUS_UNCHANGED": "Diesen Status hat die Person bereits; nichts geändert",
    "INVALID_PAGE": "Diese Seite gibt es nicht",
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
    for pattern, words in _REASONS:
        match = re.fullmatch(pattern, reason or "", re.DOTALL)
        if match:
            return words.format(*match.groups())
    return reason


def field_label(name: str | None) -> str:
    if not name:
        return ""
    base, _, rest = name.partition(".")
    return FIELD_LABELS.get(base, base) + (f" ({rest})" if rest else "")


class PeopleStatus(StatusLine):
    """The status line, with the German texts of the people operations' codes and the
    fields' German names; other codes as every panel shows them."""

    def error(self, error: OperationError | str) -> None:
        if not isinstance(error, OperationError) or (
            error.code not in CODE_TEXTS and error.details.get("field") not in FIELD_LABELS
        ):
            super().error(error)
            return
        field = error.details.get("field")
        text = CODE_TEXTS.get(error.code) or german(error.code, error.message)
        if error.code == "FIELD_INVALID" and error.details.get("reason"):
            text += f": {german_reason(error.details['reason'])}"
        where = f"{field_label(field)}: " if field else ""
        self.value = (
            f"<span style='color:#b3261e'>✗ {esc(where + text)} "
            f"<small style='color:#777'>{esc(error.code)}</small></span>"
        )


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
        return fmt.date_de(value)
    if name in SCHEDULE_FIELDS:
        return schedule_text(value)
    if name == "raeumliche_verfuegbarkeit":
        return "" if value.get("max_km") is None else fmt.number_de(value["max_km"])
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def shown_value(name: str, value) -> str:
    """A stored value for reading: enum values as German labels, '—' for none."""
    if name in ENUM_FIELDS and value is not None:
        return fmt.label(value, ENUM_FIELDS[name])
    if name == "status":
        return fmt.label(value)
    text = input_text(name, value)
    return text if text else "—"


# --- the timeline in German ------------------------------------------------------------------

KIND_LABELS = {
    "search": "Suche",
    "anfrage": "Anfrage",
    "reply": "Antwort",
    "email": "E-Mail",
    "call": "Anruf",
    "note": "Notiz",
    "audit": "Protokoll",
    "placement": "Vermittlung",
}
TRIGGER_LABELS = {"runde": "automatische Runde", "personal": "vom Team zusammengestellt"}
NOTE_PLACES = {"search": "Suche", "anfrage": "Anfrage", "therapist": "Therapeut/in"}


def _answer(code) -> str:
    if code in vocab.NACH_ANNAHME:  # the acceptance, and what became of it
        return f"angenommen (danach: {fmt.label(code, 'PATIENTENERGEBNIS')})"
    return fmt.label(code, "PATIENTENERGEBNIS")


def _audit_text(e: dict) -> str:
    text = fmt.label(e["event"], "AUDIT_ACTION")
    details = e.get("details") or {}
    if details.get("outcome"):
        text += ": " + fmt.label(details["outcome"], "VERMITTLUNGSERGEBNISSE")
    if details.get("fields"):
        text += ": " + ", ".join(field_label(f) for f in details["fields"])
    if "before" in details and "after" in details:
        text += (
            f": {fmt.label(details['before'], 'THERAPEUTENSTATUS')} → "
            f"{fmt.label(details['after'], 'THERAPEUTENSTATUS')}"
        )
    text += f" (von {e['actor']})"
    if e.get("reason"):
        text += f" – Grund: {e['reason']}"
    return text


def entry_text(e: dict) -> str:
    """One timeline entry (``operations.person_pages``) in German."""
    event = e["event"]
    to = f" an {e['therapist']}" if e.get("therapist") else ""
    if e["kind"] == "audit":
        return _audit_text(e)
    if event == "search_opened":
        return f"Suche {e['search_id']} eröffnet"
    if event == "search_successful":
        return f"Suche {e['search_id']} erfolgreich: vermittelt{to}"
    if event == "placement_successful":
        return f"Vermittlung erfolgreich (Suche {e['search_id']}, Patient/in {e['patient_id']})"
    if event == "note":
        where = NOTE_PLACES.get(e["where"], e["where"])
        number = f" {e['where_id']}" if e["where"] != "therapist" else ""
        return f"{where}{number}: {e['text']} ({e['author']})"
    if event == "line_added":
        return (
            f"In Anfrage {e['anfrage_id']}{to} aufgenommen "
            f"(Suche {e['search_id']}, Platz {e['position']})"
        )
    if event == "anfrage_sent":
        return f"Anfrage {e['anfrage_id']}{to} gesendet"
    if event == "anfrage_created":
        return (
            f"Anfrage {e['anfrage_id']} erstellt ({fmt.number_de(e['size'])} Patient/innen, "
            f"{TRIGGER_LABELS.get(e['trigger'], fmt.label(e['trigger']))})"
        )
    if event == "reminder_sent":
        return f"Erinnerung zu Anfrage {e['anfrage_id']} gesendet"
    if event == "answer":
        who = f" von {e['therapist']}" if e.get("therapist") else ""
        text = f"Antwort{who} (Anfrage {e['anfrage_id']}): {_answer(e['answer'])}"
        return text + (f" – {e['notes']}" if e.get("notes") else "")
    if event == "line_status":
        return f"Anfrage {e['anfrage_id']}{to}: {fmt.label(e['status'], 'ANFRAGE_PATIENT_STATUS')}"
    if event == "anfrage_answered":
        return (
            f"Anfrage {e['anfrage_id']}: {fmt.label(e['answer_type'], 'ANTWORTTYP')} "
            f"({e['accepted']} angenommen, {e['declined']} abgelehnt)"
        )
    if event == "email":
        return (
            f"{fmt.label(e['art'], 'EMAIL_ART')} ({fmt.label(e['status'], 'EMAILSTATUS')}): "
            f"{e['subject']}"
        )
    if event == "email_answered":
        return f"Antwort auf „{e['subject']}“"
    if event == "inbound":
        return (
            f"E-Mail-Antwort zu Anfrage {e['anfrage_id']} "
            f"({fmt.label(e['status'], 'INBOUND_STATUS')})"
        )
    if event == "click":
        return (
            f"Klick zu Anfrage {e['anfrage_id']}, Patient/in {e['patient_id']}: "
            f"{vocab.ANTWORT_LABELS.get(e['answer'], fmt.label(e['answer']))} "
            f"({fmt.label(e['status'], 'INBOUND_STATUS')})"
        )
    if event == "call":
        who = e["therapist"] or "Patient/in"
        about = f" zu Anfrage {e['anfrage_id']}" if e.get("anfrage_id") else ""
        text = (
            f"Anruf bei {who}{about} am {fmt.date_de(e['day'])} {e['time']}: "
            f"{fmt.label(e['status'], 'TELEFONANRUFSTATUS')}"
        )
        return text + (f" – {e['result']}" if e.get("result") else "")
    return fmt.label(event)


def timeline_rows(entries: list[dict]) -> list[list[str]]:
    """Table rows (Zeit, Art, Eintrag) of timeline entries."""
    return [
        [fmt.datetime_de(e["at"]), KIND_LABELS.get(e["kind"], e["kind"]), entry_text(e)]
        for e in entries
    ]


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
        self.status = PeopleStatus()
        self.header = widgets.HTML()
        self.details = widgets.HTML()
        self.timeline = PagedTable(
            ["Zeit", "Art", "Eintrag"],
            page_size=PAGE_SIZE,
            filter_placeholder="Verlauf filtern (z. B. E-Mail, Anfrage 12)",
            css="psymatch-table psymatch-timeline",
        )

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
            self.status_button = widgets.Button(
                description="Status ändern …", button_style="warning", icon="ban"
            )
            self.confirmation = Confirmation()
            self.status_action.observe(lambda _: self.confirmation.cancel(), names="value")
            self.status_button.on_click(lambda _: self.ask_status())
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
                options=[("—", None), *fmt.options("THERAPEUTENGESCHLECHT_PRAEFERENZ")],
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
                widgets.HBox(
                    [self.status_action, self.status_reason, self.status_date, self.status_button]
                ),
                self.confirmation,
                widgets.HBox([self.available, self.available_notes, self.available_button]),
            ]
        else:
            self.open_search_button = widgets.Button(description="Suche öffnen", icon="search")
            self.open_search_button.on_click(lambda _: self.open_search())
            self.new_search_button = widgets.Button(description="Suche eröffnen", icon="plus")
            self.new_search_button.on_click(lambda _: self.start_search())
            actions = [widgets.HBox([self.open_search_button, self.new_search_button])]

        children = [self.header, *actions, self.status]
        children += [widgets.HTML("<b>Verlauf</b>"), self.timeline]
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
        children += [widgets.HTML("<b>Stammdaten</b>"), self.details]
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
            controls += [self.open_search_button, self.new_search_button]
        return controls

    @property
    def record(self):
        return self.data.get("record")

    def reload(self) -> None:
        """Read the record and its whole timeline again (after every change)."""

        load = person_pages.patient_page if self.art == "patient" else person_pages.therapist_page
        data = run_action(
            self.status, (), lambda: load(self.record_id, PAGE_SIZE), lambda d: "", needs="lesen"
        )
        if data is None:
            return
        self.data = data
        record = data["record"]
        status = fmt.label(data["status"], STATUS_KIND[self.art])
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
        self.timeline.set_rows(timeline_rows(data["entries"]))
        self._prefill()
        if self.art == "therapeut":
            self._fill_therapist(record)
        else:
            running = any(x["status"] in ("aktiv", "pausiert") for x in data["suchen"])
            # a new search only when none runs (one aktiv search per patient, domain §3)
            self.new_search_button.layout.display = "none" if running else ""
            self.open_search_button.disabled = data["suche_id"] is None
            self.open_search_button.tooltip = (
                f"Suche {data['suche_id']} im Such-Panel öffnen"
                if data["suche_id"]
                else "Keine Suche für diese Person"
            )

    def _fill_therapist(self, record) -> None:
        self.status_action.options = [
            (choice, status)
            for status, (choice, _, _) in STATUS_ACTIONS.items()
            if status != record.status
        ]
        self.status_action.value = None
        self.status_reason.value = ""
        self.status_date.value = ""
        self.confirmation.cancel()
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

    def _prefill(self) -> None:
        name = self.edit_field.value
        kind = ENUM_FIELDS.get(name)
        value = getattr(self.record, name, None) if name and self.record is not None else None
        if kind:
            self.edit_choice.options = [("—", None), *fmt.options(kind)]
            self.edit_choice.value = value if value in getattr(vocab, kind) else None
        self.edit_choice.layout.display = None if kind else "none"
        self.edit_text.layout.display = "none" if kind else None
        self.edit_text.value = "" if kind or not name else input_text(name, value)

    # --- changes -----------------------------------------------------------------------------

    def _edit(self, call):
        """Run ``call(record_id)`` for this page's record, then reload and say what changed."""
        record_id = self.record_id
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

    def _operation(self):
        return person_edit.edit_patient if self.art == "patient" else person_edit.edit_therapist

    def save_field(self):
        name = self.edit_field.value
        if name is None:
            self.status.error("Bitte ein Feld wählen; es wurde nichts geändert")
            return None
        if self.edit_choice.layout.display != "none":
            value = self.edit_choice.value
        else:
            value = self.edit_text.value
        reason_text, operation = self.edit_reason.value, self._operation()

        def call(record_id):
            reason = bounded_text(reason_text, field="Anlass") or None
            return operation(record_id, {name: value}, actor=self.actor, reason=reason)

        return self._edit(call)

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
        return self._edit(
            lambda record_id: person_edit.edit_therapist(record_id, changes, actor=self.actor)
        )

    def save_available(self):
        value, notes = self.available.value, self.available_notes.value

        def call(record_id):
            text = bounded_text(notes, field="Notizen", limit=NOTES_MAX)
            return person_edit.set_potenziell_verfuegbar(record_id, value, text, actor=self.actor)

        return self._edit(call)

    def ask_status(self):
        """Check the input, then ask for confirmation naming the therapist and the effect;
        the confirmed action is bound to what was shown when staff clicked."""
        target = self.status_action.value
        if target is None:
            self.status.error("Bitte eine Statusänderung wählen; es wurde nichts geändert")
            return None
        try:
            reason = bounded_text(self.status_reason.value, field="Grund")
        except OperationError as error:
            self.status.error(error)
            return None
        if not reason:
            self.status.error(OperationError("REASON_REQUIRED", "a reason is required"))
            return None
        record_id, day = self.record_id, self.status_date.value
        choice, verb, effect = STATUS_ACTIONS[target]
        self.status.clear()
        self.confirmation.ask(
            f"{self.data.get('name', '')} (Nr. {record_id}) {verb}: {effect}. Grund: {reason}",
            f"Ja, {verb}",
            lambda: self._change_status(record_id, target, reason, day),
        )
        return target

    def _change_status(self, record_id: int, target: str, reason: str, day: str):
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
            f"{self.data['name']}: Status {fmt.label(result['before'], 'THERAPEUTENSTATUS')} → "
            f"{fmt.label(result['after'], 'THERAPEUTENSTATUS')}"
        )
        return result

    def start_search(self):
        """Open a new Platzsuche for this patient (same validation as the Searches panel),
        then show it where staff work on searches."""
        from operations.searches import create_platzsuche

        patient_id = self.record_id
        created = run_action(
            self.status,
            self.action_controls,
            lambda: create_platzsuche(patient_id, actor=self.actor),
            lambda s: f"Suche {s.id} für {self.data.get('name', '')} eröffnet",
        )
        if created is None:
            return None
        self.reload()
        if self.on_open_search is not None:
            self.on_open_search(created.id)
        self.status.ok(f"Suche {created.id} für {self.data.get('name', '')} eröffnet")
        return created

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
    """Search box, paged results with the selection on top, and the opened person's page."""

    def __init__(
        self,
        actor: str | None = None,
        on_open_search: Callable[[int], object] | None = None,
        **kwargs,
    ):
        self.actor = actor
        self.on_open_search = on_open_search
        self.results: list[dict] = []
        self.person: PersonPage | None = None
        self.status = PeopleStatus()
        self.query = widgets.Text(
            description="Suche",
            placeholder="Name, E-Mail, Telefon oder PLZ",
            layout=widgets.Layout(width="28em"),
        )
        self.search_button = widgets.Button(description="Suchen", icon="search")
        self.result_select = widgets.Dropdown(
            description="Person", options=[], layout=widgets.Layout(width="34em")
        )
        self.open_button = widgets.Button(description="Öffnen", icon="user")
        self.pager = PagedTable(
            ["Art", "Nr.", "Name", "PLZ", "Ort", "E-Mail", "Telefon", "Status"],
            actions=[self.result_select, self.open_button],
            page_size=PAGE_SIZE,
            filter_placeholder="Treffer filtern",
            css="psymatch-table psymatch-people-results",
        )
        self.person_box = widgets.VBox()
        self.search_button.on_click(lambda _: self.search())
        self.open_button.on_click(lambda _: self.open_selected())
        self.pager.observe(lambda change: self._offer(change["new"]), names="visible_keys")
        super().__init__(
            [
                widgets.HTML("<h3>Personen</h3>"),
                widgets.HBox([self.query, self.search_button]),
                self.status,
                self.pager,
                self.person_box,
            ],
            **kwargs,
        )
        self.add_class("psymatch-people")
        self._offer([])

    def search(self):
        text = self.query.value
        found = run_action(
            self.status,
            (self.search_button,),
            lambda: find_people(text, MAX_RESULTS),
            lambda f: (
                f"{fmt.number_de(len(f))} Treffer"
                + (" – es gibt mehr: bitte genauer suchen" if len(f) >= MAX_RESULTS else "")
            ),
            needs="lesen",
        )
        if found is None:
            return None
        self.results = found
        self.pager.filter.value = ""
        self.pager.set_rows(
            [
                [
                    ART_LABELS[r["art"]],
                    r["id"],
                    r["name"],
                    r["plz"] or "",
                    r["ort"] or "",
                    r["email"] or "",
                    r["telefon"] or "",
                    fmt.label(r["status"], STATUS_KIND[r["art"]]),
                ]
                for r in found
            ],
            keys=[(r["art"], r["id"]) for r in found],
        )
        self.pager.page = 0
        self._offer(self.pager.visible_keys)
        return found

    def _offer(self, keys) -> None:
        """Offer exactly the rows of the page shown; the chosen person stays chosen while
        listed, else nothing is (the choice never jumps to a neighbour)."""
        by_key = {(r["art"], r["id"]): r for r in self.results}
        options = [
            (
                f"{ART_LABELS[art]} {by_key[(art, rid)]['name']} "
                f"(Nr. {rid}, {by_key[(art, rid)]['plz'] or '—'})",
                (art, rid),
            )
            for art, rid in keys
            if (art, rid) in by_key
        ]
        choose(self.result_select, options, self.result_select.value)

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
    """Show ``search_id`` in a Searches panel (console/searches.py): every status, the PLZ
    of its patient as filter (a short list even with 20,000 searches), the search selected.
    For the lead to wire the Personen page's **Suche öffnen** to the panel where staff work
    on searches; True if the search is now selected."""
    plz = Platzsuche.select(Patient.plz).join(Patient).where(Platzsuche.id == search_id).scalar()
    searches_panel.plz_prefix.value = plz or ""  # first: the next line lists all statuses
    searches_panel.status_filter.value = ()
    searches_panel.refresh()
    # the list is paged: turn to the search's page (False when the filters do not list it)
    return searches_panel.select(search_id) and searches_panel.selected_search_id == search_id


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
