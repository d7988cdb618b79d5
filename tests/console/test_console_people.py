"""The Personen panel, driven in-process: search, paged results, a person's page with its
timeline, edits as ``team`` audited with the signed-in person, refusals that write nothing,
and a page that acts only on the record it was opened for."""

from __future__ import annotations

import datetime as dt

import pytest

from console.people import (
    PeoplePanel,
    field_label,
    german_reason,
    input_text,
    open_search_in,
    people_app,
    timeline_rows,
)
from console.searches import SearchesPanel
from db.models import AuditLog, Patient, Platzsuche, Therapist
from operations import people, person_pages, staff
from psymatch.domain import validation
from tests import factories as f
from tests.operations.test_person_pages import build_story

PASSWORD = "ein-langes-passwort"


@pytest.fixture
def signed_in(clean_db, monkeypatch):
    def sign_in(username: str, role: str):
        staff.create(username, username.title(), role, PASSWORD, actor="test")
        monkeypatch.setenv("JUPYTERHUB_USER", username)
        return username

    return sign_in


def snapshot():
    return [
        [tuple(r.__data__.items()) for r in model.select().order_by(model.id)]
        for model in (Patient, Therapist, AuditLog)
    ]


def indexed_patient(**fields):
    patient = f.patient(**fields)
    people.refresh_index([patient.id])
    return patient


def search_and_open(panel, text, art, record_id):
    panel.query.value = text
    panel.search_button.click()
    assert "✓" in panel.status.value, panel.status.value
    panel.result_select.value = (art, record_id)
    panel.open_button.click()
    return panel.person


def test_results_are_paged_twenty_at_a_time(signed_in):
    signed_in("erika", "lesen")
    for _ in range(25):
        f.therapist(nachname="Musterfrau")
    panel = PeoplePanel()
    panel.query.value = "musterfrau"
    panel.search_button.click()
    assert "25 Treffer" in panel.status.value
    assert len(panel.result_select.options) == 20 and panel.result_select.value is None
    assert "Seite 1 von 2 · 25 Einträge" in panel.pager.info.value
    assert panel.pager.prev_button.disabled and not panel.pager.next_button.disabled
    panel.pager.next_button.click()
    assert len(panel.result_select.options) == 5 and panel.pager.next_button.disabled
    assert panel.pager.output.value.count("<tr>") == 6  # header + 5
    assert "Therapeut/in" in panel.pager.output.value
    panel.query.value = "  "
    panel.search_button.click()
    assert "Bitte Name, E-Mail, Telefonnummer oder PLZ eingeben" in panel.status.value
    assert "INVALID_SEARCH" in panel.status.value


def test_team_corrects_a_patient_after_a_phone_call(signed_in):
    signed_in("erika", "team")
    patient = indexed_patient(vorname="Greta", nachname="Gans", telefon="030 1")
    search = f.search(patient_obj=patient)
    panel = PeoplePanel()
    page = search_and_open(panel, "Greta Gans", "patient", patient.id)
    assert "Patient/in Greta Gans" in page.header.value
    assert f"Suche {search.id} eröffnet" in page.timeline.output.value
    assert "Seite 1 von 1 · 1 Eintrag" in page.timeline.info.value
    page.edit_field.value = "telefon"
    assert page.edit_text.value == "030 1"
    page.edit_text.value = "0171 555 666"
    page.edit_reason.value = "Anruf"
    page.edit_button.click()
    assert "✓ Gespeichert: Telefon" in page.status.value, page.status.value
    assert Patient.get_by_id(patient.id).telefon == "0171 555 666"
    (row,) = AuditLog.select().where(AuditLog.action == "edit_patient")
    assert (row.actor, row.entity_id, row.reason) == ("erika", str(patient.id), "Anruf")
    assert "Daten geändert: Telefon (von erika)" in page.timeline.output.value
    # a repeated click changes nothing and says so
    page.edit_button.click()
    assert "Keine Änderung" in page.status.value
    assert AuditLog.select().where(AuditLog.action == "edit_patient").count() == 1
    # a bad value: refused with the field's German name, nothing written
    before = snapshot()
    page.edit_field.value = "geburtsdatum"
    page.edit_text.value = "31.02.1990"
    page.edit_button.click()
    assert "✗ Geburtsdatum: Ungültiger Wert: unmögliches Datum „31.02.1990“" in page.status.value
    assert "FIELD_INVALID" in page.status.value
    assert snapshot() == before


def test_enum_fields_are_german_choices_and_no_code_is_shown(signed_in):
    signed_in("erika", "team")
    patient = indexed_patient(vorname="Kim", nachname="Divers", geschlecht="keine_Angabe")
    page = PeoplePanel().open_person("patient", patient.id)
    assert "keine_Angabe" not in page.details.value and "keine Angabe" in page.details.value
    page.edit_field.value = "geschlecht"
    assert page.edit_text.layout.display == "none" and page.edit_choice.layout.display is None
    assert ("keine Angabe", "keine_Angabe") in page.edit_choice.options
    page.edit_choice.value = "divers"
    page.edit_button.click()
    assert Patient.get_by_id(patient.id).geschlecht == "divers"
    assert field_label("raeumliche_verfuegbarkeit.max_km") == "Maximale Entfernung (km) (max_km)"
    assert input_text("arbeitszeiten", {"montag": ["09:00-12:00"]}) == "Mo 09:00-12:00"


def test_team_blocks_and_reactivates_a_therapist_with_confirmation(signed_in):
    signed_in("jonas", "team")
    therapist = f.therapist(vorname="Hans", nachname="Sperling")
    panel = PeoplePanel()
    page = search_and_open(panel, "Sperling", "therapeut", therapist.id)
    assert [v for _, v in page.status_action.options] == ["gesperrt", "inaktiv"]
    assert "Nächster Kontakt möglich ab" in page.details.value
    page.status_action.value = "gesperrt"
    page.status_reason.value = "möchte keine Anfragen mehr"
    before = snapshot()
    page.status_button.click()  # asks first, names the therapist and the effect
    assert page.confirmation.pending and snapshot() == before
    question = page.confirmation.question.value
    assert "Hans Sperling" in question and "sperren" in question
    assert "nicht mehr angefragt" in question and "möchte keine Anfragen mehr" in question
    page.confirmation.yes_button.click()
    assert "Status aktiv → gesperrt" in page.status.value, page.status.value
    stored = Therapist.get_by_id(therapist.id)
    assert (stored.status, stored.sperrgrund) == ("gesperrt", "möchte keine Anfragen mehr")
    assert "gesperrt seit" in page.header.value
    page.confirmation.yes_button.click()  # a second click: nothing pending, nothing changes
    assert AuditLog.select().where(AuditLog.action == "set_therapist_status").count() == 1
    assert [v for _, v in page.status_action.options] == ["inaktiv", "aktiv"]
    page.status_action.value = "aktiv"
    page.status_reason.value = ""
    before = snapshot()
    page.status_button.click()
    assert "Bitte einen Grund angeben" in page.status.value and not page.confirmation.pending
    page.status_reason.value = "x" * 501
    page.status_button.click()
    assert "TEXT_TOO_LONG" in page.status.value and not page.confirmation.pending
    assert "Grund hat 501 Zeichen, erlaubt sind 500" in page.status.value
    assert "Grund: Grund" not in page.status.value
    assert snapshot() == before
    page.status_reason.value = "hat sich gemeldet"
    page.status_button.click()
    page.confirmation.no_button.click()  # changed one's mind
    assert snapshot() == before
    page.status_button.click()
    page.confirmation.yes_button.click()
    assert Therapist.get_by_id(therapist.id).status == "aktiv"
    rows = AuditLog.select().where(AuditLog.action == "set_therapist_status")
    assert [r.actor for r in rows] == ["jonas", "jonas"]
    assert "Status geändert: gesperrt → aktiv (von jonas)" in page.timeline.output.value


def test_a_status_change_confirmed_late_acts_on_what_was_asked(signed_in):
    """The confirmation is bound to the therapist, status and reason shown at the click."""
    signed_in("jonas", "team")
    therapist = f.therapist()
    page = PeoplePanel().open_person("therapeut", therapist.id)
    page.status_action.value = "inaktiv"
    page.status_reason.value = "Praxis geschlossen"
    page.status_button.click()
    page.status_reason.value = "etwas anderes"  # typed after the question
    page.confirmation.yes_button.click()
    (row,) = AuditLog.select().where(AuditLog.action == "set_therapist_status")
    assert (row.details["after"], row.reason) == ("inaktiv", "Praxis geschlossen")


def test_preferences_and_availability(signed_in):
    signed_in("jonas", "team")
    therapist = f.therapist()
    page = PeoplePanel().open_person("therapeut", therapist.id)
    page.pref_symptoms.value = ("Zwänge",)
    page.pref_age_min.value = "18"
    page.pref_gender.value = "Weiblich"
    page.pref_hours.value = "Mo 08:00-12:00"
    page.pref_flags["ueber_curavani_informiert"].value = True
    page.pref_button.click()
    assert "✓ Gespeichert" in page.status.value, page.status.value
    stored = Therapist.get_by_id(therapist.id)
    assert stored.bevorzugte_symptome == ["Zwänge"] and stored.alter_min == 18
    assert stored.geschlechtspraeferenz == "Weiblich" and stored.ueber_curavani_informiert
    assert page.pref_hours.value == "Mo 08:00-12:00"  # shown as saved, in the input form
    page.pref_age_max.value = "10"  # below the minimum: refused
    before = snapshot()
    page.pref_button.click()
    assert "Mindestalter 18 ist größer als Höchstalter 10" in page.status.value
    assert "FIELD_INVALID" in page.status.value and snapshot() == before
    page.available.value = True
    page.available_notes.value = "ab März"
    page.available_button.click()
    stored = Therapist.get_by_id(therapist.id)
    assert stored.potenziell_verfuegbar and stored.potenziell_verfuegbar_notizen == "ab März"


def test_a_page_acts_only_on_the_record_it_shows(signed_in):
    signed_in("erika", "team")
    first = f.therapist(nachname="Erster")
    second = f.therapist(nachname="Erster")
    panel = PeoplePanel()
    page = search_and_open(panel, "Erster", "therapeut", first.id)
    panel.result_select.value = ("therapeut", second.id)  # chosen, not opened
    page.edit_field.value = "ort"
    page.edit_text.value = "Potsdam"
    page.edit_button.click()
    page.edit_button.click()  # a double click: the second changes nothing
    assert Therapist.get_by_id(first.id).ort == "Potsdam"
    assert Therapist.get_by_id(second.id).ort is None
    assert AuditLog.select().where(AuditLog.action == "edit_therapist").count() == 1


def test_a_reader_may_look_but_not_change(signed_in):
    signed_in("lea", "lesen")
    therapist = f.therapist(nachname="Lesbar")
    page = search_and_open(PeoplePanel(), "Lesbar", "therapeut", therapist.id)
    before = snapshot()
    page.edit_field.value = "ort"
    page.edit_text.value = "Bonn"
    page.edit_button.click()
    assert "FORBIDDEN" in page.status.value
    page.status_action.value = "inaktiv"
    page.status_reason.value = "x"
    page.status_button.click()
    page.confirmation.yes_button.click()
    assert "FORBIDDEN" in page.status.value
    assert snapshot() == before


def test_the_patient_page_opens_its_search_in_the_searches_panel(signed_in):
    signed_in("erika", "team")
    patient = indexed_patient(vorname="Suse", nachname="Sucher", plz="80331")
    other = f.search()
    search = f.search(patient_obj=patient, status="pausiert")
    searches = SearchesPanel()
    searches.status_filter.value = ("aktiv",)
    searches.plz_prefix.value = "10"
    searches.refresh()
    assert searches.selected_search_id == other.id
    opened = []
    panel = PeoplePanel(on_open_search=lambda sid: opened.append(open_search_in(searches, sid)))
    page = panel.open_person("patient", patient.id)
    page.open_search_button.click()
    assert opened == [True] and searches.selected_search_id == search.id
    assert f"Suche {search.id} geöffnet" in page.status.value
    # a patient without a search: the button is off and the action refused
    lonely = PeoplePanel().open_person("patient", f.patient().id)
    assert lonely.open_search_button.disabled
    lonely.open_search()
    assert "keine Suche" in lonely.status.value


def test_the_app_opens_the_search_below(signed_in):
    signed_in("erika", "team")
    patient = indexed_patient(vorname="Ada", nachname="App")
    search = f.search(patient_obj=patient)
    app = people_app()
    panel, searches_box = app.children
    assert searches_box.children == ()  # no Searches panel until it is needed
    page = panel.open_person("patient", patient.id)
    page.open_search_button.click()
    (searches,) = searches_box.children
    assert isinstance(searches, SearchesPanel) and searches.selected_search_id == search.id
    assert "✓" in page.status.value


GERMAN_CASES = [
    ("patients", "email", "kein-at"),
    ("patients", "plz", "1011"),
    ("patients", "geburtsdatum", "31.02.1990"),
    ("patients", "geburtsdatum", "morgen"),
    ("patients", "geburtsdatum", "2999-01-01"),
    ("patients", "symptome", ["Gibt es nicht"]),
    ("patients", "symptome", ["Zwänge", "Zwänge"]),
    ("patients", "anrede", "herr"),
    ("patients", "vorname", "x" * 101),
    ("patients", "vorname", "a\nb"),
    ("patients", "zeitliche_verfuegbarkeit", "Mo 17:00-09:00"),
    ("patients", "zeitliche_verfuegbarkeit", "Xy 09:00-10:00"),
    ("patients", "zeitliche_verfuegbarkeit", "Mo 9-10"),
    ("patients", "zeitliche_verfuegbarkeit", "Mo 25:00-26:00"),
    ("patients", "raeumliche_verfuegbarkeit", "-5"),
    ("patients", "raeumliche_verfuegbarkeit", "weit"),
    ("patients", "offen_fuer_diga", "vielleicht"),
    ("patients", "ausgeschlossene_therapeuten", "0"),
    ("therapists", "alter_min", "-1"),
    ("therapists", "alter_min", "1,5"),
    ("therapists", "bevorzugte_diagnosen", "Depression"),
]


@pytest.mark.parametrize(("kind", "field", "value"), GERMAN_CASES)
def test_every_validation_reason_staff_meet_reads_german(kind, field, value):
    with pytest.raises(validation.RowError) as caught:
        validation.validate_changes(kind, {field: value}, today=dt.date(2026, 12, 1))
    reason = caught.value.reason
    assert german_reason(reason) != reason, reason
    assert german_reason("alter_min 30 is greater than alter_max 20") == (
        "Mindestalter 30 ist größer als Höchstalter 20"
    )


def test_the_timeline_reads_german_without_codes(clean_db):
    """The operations' events (tests/operations/test_person_pages.py's story) in German."""
    patient, therapist, search, anfrage_id = build_story()
    rows = timeline_rows(person_pages.patient_timeline_entries(patient.id))
    joined = "\n".join(" | ".join(row) for row in rows)
    for text in [
        f"Suche | Suche {search.id} eröffnet",
        f"In Anfrage {anfrage_id} an Dr. Erika Muster aufgenommen (Suche {search.id}, Platz 1)",
        f"Anfrage {anfrage_id} an Dr. Erika Muster gesendet",
        f"Antwort von Dr. Erika Muster (Anfrage {anfrage_id}): angenommen (danach: in Sitzungen)",
        "Vermittlungsmail (gesendet): Ihr Therapieplatz",
        f"E-Mail-Antwort zu Anfrage {anfrage_id} (verarbeitet)",
        f"Anruf bei Dr. Erika Muster zu Anfrage {anfrage_id} am 01.12.2026 08:05: abgebrochen",
        f"30.11.2026 09:00 | Notiz | Suche {search.id}: Rückruf erbeten (jonas)",
        "Rückmeldung zur Vermittlung erfasst: Erstgespräch hat stattgefunden, ich beginne "
        "(von erika)",
        "Protokoll | Daten geändert: Telefon (von erika)",
        f"Vermittlung | Suche {search.id} erfolgreich: vermittelt an Dr. Erika Muster",
    ]:
        assert text in joined, text
    rows = timeline_rows(person_pages.therapist_timeline_entries(therapist.id))
    joined += "\n" + "\n".join(" | ".join(row) for row in rows)
    for text in [
        f"Anfrage {anfrage_id} erstellt (1 Patient/innen, vom Team zusammengestellt)",
        f"Anfrage {anfrage_id}: vollständige Annahme (1 angenommen, 0 abgelehnt)",
        f"Vermittlung erfolgreich (Suche {search.id}, Patient/in {patient.id})",
        "Status geändert: aktiv → gesperrt (von erika) – Grund: keine Kapazität mehr",
        "Therapeut/in: Status aktiv → gesperrt: keine Kapazität mehr (erika)",
        "Anfrage erstellt (von staff)",
    ]:
        assert text in joined, text
    for code in (
        "vollstaendige_Annahme",
        "in_Sitzungen",
        "Gesendet",
        "record_placement_outcome",
        "edit_patient",
        "set_therapist_status",
        "create_anfrage",
        "personal",
    ):
        assert code not in joined, code


def test_a_patient_without_a_running_search_gets_one_from_the_page(signed_in):
    """Look the patient up, open a search for them, see it in the Searches panel below."""
    signed_in("erika", "team")
    patient = indexed_patient(vorname="Nele", nachname="Neu")
    app = people_app()
    panel, searches_box = app.children
    page = search_and_open(panel, "Nele Neu", "patient", patient.id)
    assert page.new_search_button.layout.display == ""
    page.new_search_button.click()
    search = Platzsuche.get(Platzsuche.patient == patient.id)
    assert search.status == "aktiv" and f"Suche {search.id} für Nele Neu eröffnet" in (
        page.status.value
    )
    assert AuditLog.get(AuditLog.action == "create_platzsuche").actor == "erika"
    (searches,) = searches_box.children
    assert searches.selected_search_id == search.id
    assert page.new_search_button.layout.display == "none"  # one running search at a time
    page.start_search()  # a repeated click: refused by the operation, nothing written
    assert "ACTIVE_SEARCH_EXISTS" in page.status.value
    assert Platzsuche.select().where(Platzsuche.patient == patient.id).count() == 1
