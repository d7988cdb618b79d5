"""The staff console panels: built, driven by button clicks, checked through the models."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from ipywidgets import HTML

from console import queries
from console.conflicts import ConflictsPanel
from console.responses import ResponsePanel, ReviewQueuePanel
from console.searches import SearchesPanel
from console.today import TodayPanel
from db.models import (
    AuditLog,
    InboundMessage,
    LinkKlick,
    Patient,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
)
from operations.bundles import create_anfrage
from operations.replies import process_click, store_click
from operations.responses import record_response
from tests import factories as f

TODAY = f.NOW.date()


def sent_bundle(therapist):
    created = create_anfrage(therapist.id, now=f.NOW)
    f.mark_sent(created.anfrage_id, f.NOW)
    return Therapeutenanfrage.get_by_id(created.anfrage_id), [
        p.patient_id for p in created.selection.patients
    ]


def snapshot():
    return (
        [tuple(r.__data__.items()) for r in Platzsuche.select().order_by(Platzsuche.id)],
        [
            tuple(r.__data__.items())
            for r in TherapeutAnfragePatient.select().order_by(TherapeutAnfragePatient.id)
        ],
        [
            tuple(r.__data__.items())
            for r in Therapeutenanfrage.select().order_by(Therapeutenanfrage.id)
        ],
    )


def make_conflict():
    first_t, second_t = f.therapist(), f.therapist(plz="10117")
    f.searches(3)
    a1, patients = sent_bundle(first_t)
    a2, patients2 = sent_bundle(second_t)
    shared = patients[0]
    record_response(
        a1.id, {p: "angenommen" if p == shared else "abgelehnt_sonstiges" for p in patients}
    )
    record_response(a2.id, dict.fromkeys(patients2, "angenommen"))
    return first_t, second_t, shared


def review_item(anfrage_id, key="m1", text="Ich nehme vielleicht jemanden."):
    payload = {"From": "praxis@example.org", "Subject": "Re: Anfrage", "TextBody": text}
    return InboundMessage.create(
        provider="postmark",
        message_key=key,
        raw_payload=json.dumps(payload),
        sender="praxis@example.org",
        subject="Re: Anfrage",
        therapeutenanfrage=anfrage_id,
        status="pruefung",
        review_reason="Antwort nicht eindeutig",
    )


# --- queries and the Today panel ---------------------------------------------------------------


def test_today_panel_lists_what_needs_action(clean_db):
    therapist = f.therapist(telefon="030 123")
    f.searches(3, start_wait=10)
    unsent = create_anfrage(therapist.id, now=f.NOW).anfrage_id
    waiting = f.search(days_waiting=40)  # created after the bundle: in no pending bundle
    Telefonanruf.create(
        therapist=therapist, geplantes_datum=TODAY, geplante_zeit="09:00", dauer_minuten=5
    )
    Telefonanruf.create(
        therapist=therapist,
        geplantes_datum=TODAY - dt.timedelta(days=2),
        geplante_zeit="10:00",
        dauer_minuten=5,
    )
    Telefonanruf.create(  # tomorrow: not due
        therapist=therapist,
        geplantes_datum=TODAY + dt.timedelta(days=1),
        geplante_zeit="09:00",
        dauer_minuten=5,
    )
    review_item(unsent)

    panel = TodayPanel(today=TODAY)
    counts = panel.counts()
    assert counts == {
        "calls": 2,
        "answers": 0,
        "questions": 0,
        "reviews": 1,
        "conflicts": 0,
        "placements": 0,
        "unsent": 1,
        "waiting": 1,
    }
    assert [c["ueberfaellig"] for c in panel.summary["calls"]] == [True, False]
    assert panel.summary["waiting"][0]["search_id"] == waiting.id
    assert panel.summary["waiting"][0]["wartetage"] == 40
    assert "Anrufe fällig: 2" in panel.text()
    assert "030 123" in panel.text()
    assert "Antwort nicht eindeutig" in panel.text()

    f.mark_sent(unsent)
    panel.refresh_button.click()
    assert panel.counts()["unsent"] == 0
    assert not panel.refresh_button.disabled
    panel.today = TODAY - dt.timedelta(days=1)  # observed: refreshes itself
    assert panel.counts()["calls"] == 1


def test_waiting_query_skips_searches_in_pending_bundles_and_placed_ones(clean_db):
    therapist = f.therapist()
    in_bundle = f.searches(3)
    create_anfrage(therapist.id, now=f.NOW)
    free = f.search(days_waiting=5)
    placed = f.search(days_waiting=50, vermittelter_therapeut=therapist)
    ids = [s["search_id"] for s in queries.waiting_without_bundle(TODAY)]
    assert ids == [free.id]
    assert placed.id not in ids and not set(ids) & {s.id for s in in_bundle}


def test_today_panel_shows_conflicts(clean_db):
    first_t, _, shared = make_conflict()
    panel = TodayPanel(today=TODAY)
    assert panel.counts()["conflicts"] == 1
    assert panel.summary["conflicts"][0]["winner"] == first_t.id
    assert "Konflikte: 1" in panel.text()


# --- Searches panel ------------------------------------------------------------------------------


def test_searches_panel_filters_and_sorts(clean_db):
    berlin_old = f.search(days_waiting=30)
    berlin_new = f.search(days_waiting=3)
    munich = f.search(days_waiting=20, patient_obj=f.patient(plz="80331"))
    paused = f.search(days_waiting=10, status="pausiert")
    f.search(days_waiting=60, status="abgebrochen")
    panel = SearchesPanel(today=TODAY)
    assert [r["search_id"] for r in panel.rows] == [
        berlin_old.id,
        munich.id,
        paused.id,
        berlin_new.id,
    ]
    assert panel.rows[0]["wartetage"] == 30
    panel.plz_prefix.value = "10"
    assert munich.id not in [r["search_id"] for r in panel.rows]
    panel.status_filter.value = ("pausiert",)
    assert [r["search_id"] for r in panel.rows] == [paused.id]
    assert panel.selected_search_id is None  # the filtered-out selection is not replaced
    panel.status_filter.value = ("aktiv",)
    panel.search_select.value = berlin_old.id
    panel.sort.value = False
    assert [r["search_id"] for r in panel.rows] == [berlin_new.id, berlin_old.id]
    assert panel.selected_search_id == berlin_old.id  # a listed selection is kept
    assert f"<td style='padding:0 8px'>{berlin_old.id}</td>" in panel.pager.output.value
    assert panel.table is panel.pager.output  # the old handle shows the page shown


def first_column(html: str) -> list[int]:
    """The ids in the first column of a rendered table, in order."""
    return [int(i) for i in re.findall(r"<tr><td style='padding:0 8px'>(\d+)</td>", html)]


def offered(dropdown) -> list:
    return [value for _, value in dropdown.options]


def test_searches_panel_renders_and_offers_one_page_of_sixty(clean_db):
    made = f.searches(60, start_wait=1)
    order = [s.id for s in reversed(made)]  # who waited longest first
    panel = SearchesPanel(today=TODAY)
    assert [r["search_id"] for r in panel.rows] == order  # every search is read …
    html = panel.pager.output.value
    assert first_column(html) == order[:25] and html.count("<tr>") == 26  # … 25 rendered
    assert offered(panel.search_select) == order[:25]
    assert panel.selected_search_id == order[0]  # the first load selects the first row
    assert "Seite 1 von 3 · 60 Einträge" in panel.pager.info.value
    # the actions are above the filter and the table
    assert panel.pager.children[0] is panel.pager.actions
    assert panel.search_select in panel.pager.actions.children[0].children[0].children
    panel.pager.next_button.click()
    assert first_column(panel.pager.output.value) == order[25:50]
    assert offered(panel.search_select) == order[25:50]
    assert panel.selected_search_id is None  # the selection left with its page: no neighbour
    panel.pager.next_button.click()
    assert offered(panel.search_select) == order[50:]
    assert first_column(panel.pager.output.value) == order[50:]
    panel.pager.size_select.value = 50
    assert offered(panel.search_select) == order[:50]


def test_searches_panel_filter_narrows_the_rows_and_the_selection(clean_db):
    f.searches(60, start_wait=1)
    munich = [f.search(days_waiting=i, patient_obj=f.patient(plz="80331")) for i in (70, 5)]
    panel = SearchesPanel(today=TODAY)
    panel.pager.next_page()
    panel.pager.filter.value = "80331"
    assert panel.pager.page == 0
    assert panel.pager.matching_keys == [munich[0].id, munich[1].id]
    assert first_column(panel.pager.output.value) == [munich[0].id, munich[1].id]
    assert offered(panel.search_select) == [munich[0].id, munich[1].id]
    assert "2 Einträge (von 62)" in panel.pager.info.value
    panel.search_select.value = munich[1].id
    panel.refresh_button.click()  # a reload keeps the filter and the selection
    assert panel.pager.filter.value == "80331" and panel.selected_search_id == munich[1].id
    panel.pager.filter.value = f"80331 {munich[1].patient.nachname}"  # every word must occur
    assert panel.pager.matching_keys == [munich[1].id]
    assert panel.selected_search_id == munich[1].id


def test_searches_panel_keeps_the_selection_while_it_is_on_the_page(clean_db):
    made = f.searches(60, start_wait=1)
    order = [s.id for s in reversed(made)]
    panel = SearchesPanel(today=TODAY)
    panel.search_select.value = order[3]
    panel.refresh_button.click()
    assert panel.selected_search_id == order[3]
    f.search(days_waiting=500)  # a search arrives above it: still on page 1
    panel.refresh()
    assert panel.selected_search_id == order[3] and offered(panel.search_select)[4] == order[3]
    panel.pager.next_page()  # page 2: the page stays across reloads, so does its selection
    panel.search_select.value = order[40]
    panel.refresh()
    assert panel.pager.page == 1 and panel.selected_search_id == order[40]
    panel.pager.previous_page()
    panel.search_select.value = order[23]  # the last row of page 1 after the arrival
    f.search(days_waiting=400)  # pushes it onto page 2: not on the page shown any more
    panel.refresh()
    assert order[23] not in panel.pager.visible_keys and panel.selected_search_id is None


def test_searches_panel_cancels_exactly_the_selected_search_on_page_two(clean_db):
    made = f.searches(60, start_wait=1)
    order = [s.id for s in reversed(made)]
    panel = SearchesPanel(today=TODAY)
    panel.pager.next_page()
    target = order[27]
    panel.search_select.value = target
    panel.cancel_button.click()
    assert f"Suche {target}" in panel.confirmation.question.value
    before = snapshot()
    panel.confirmation.yes_button.click()
    assert "✓" in panel.status.value and f"Suche {target} ist jetzt abgebrochen" in (
        panel.status.value
    )
    statuses = {s.id: s.status for s in Platzsuche.select()}
    assert statuses.pop(target) == "abgebrochen"
    assert set(statuses.values()) == {"aktiv"}
    assert [row for row in snapshot()[0] if dict(row)["id"] != target] == [
        row for row in before[0] if dict(row)["id"] != target
    ]
    # it left the list; page 2 stays shown and nothing is selected (never a neighbour)
    assert panel.pager.page == 1 and target not in panel.pager.visible_keys
    assert offered(panel.search_select) == order[25:27] + order[28:51]
    assert panel.selected_search_id is None
    panel.cancel_button.click()
    assert "Keine Suche ausgewählt" in panel.status.value and not panel.confirmation.pending


def test_searches_panel_shows_the_page_of_a_search_it_opens(clean_db):
    f.searches(60, start_wait=1)
    patient = f.patient()
    panel = SearchesPanel(today=TODAY)
    panel.pager.filter.value = "Pat"  # matches every row, the new one too
    panel.patient_id.value = patient.id
    panel.open_button.click()
    search = Platzsuche.get(Platzsuche.patient == patient.id)
    assert panel.pager.page == 2 and search.id in panel.pager.visible_keys  # waits 0 days
    assert panel.selected_search_id == search.id
    assert not panel.select(999_999) and panel.selected_search_id is None


def test_searches_panel_decrypts_only_the_names_it_shows(clean_db, monkeypatch):
    from db import crypto

    made = f.searches(60, start_wait=1)
    stored = Patient.select(Patient.vorname.coerce(False), Patient.nachname.coerce(False))
    name_tokens = {token for row in stored.tuples() for token in row}
    decrypted = []
    real = crypto.decrypt

    def decrypt(token):
        if token in name_tokens:
            decrypted.append(token)
        return real(token)

    monkeypatch.setattr(crypto, "decrypt", decrypt)
    panel = SearchesPanel(today=TODAY)
    assert len(decrypted) == 2 * 25  # first and last name of the 25 patients shown
    assert str(panel.rows[0]["patient"]) == f"Paul {made[-1].patient.nachname}"
    label = dict((v, k) for k, v in panel.search_select.options)[made[-1].id]
    assert label == f"{made[-1].id} – Paul {made[-1].patient.nachname} (aktiv)"
    decrypted.clear()
    panel.pager.filter.value = made[0].patient.nachname  # a text filter reads every name
    assert len(decrypted) == 2 * 35 and panel.pager.matching_keys == [made[0].id]
    panel.pager.filter.value = "Paul"  # once
    assert len(decrypted) == 2 * 35 and len(panel.pager.matching_keys) == 60


def test_searches_panel_pause_resume_cancel(clean_db):
    search = f.search()
    panel = SearchesPanel(today=TODAY)
    panel.search_select.value = search.id
    panel.pause_button.click()
    assert Platzsuche.get_by_id(search.id).status == "pausiert"
    assert "✓" in panel.status.value and "pausiert" in panel.status.value
    panel.pause_button.click()  # a no-op, still fine
    panel.resume_button.click()
    assert Platzsuche.get_by_id(search.id).status == "aktiv"
    panel.cancel_button.click()  # asks first, naming the search
    assert Platzsuche.get_by_id(search.id).status == "aktiv"
    assert panel.confirmation.pending and f"Suche {search.id}" in panel.confirmation.question.value
    panel.confirmation.yes_button.click()
    assert Platzsuche.get_by_id(search.id).status == "abgebrochen"
    panel.confirmation.yes_button.click()  # a second click finds nothing pending
    assert panel.selected_search_id is None  # the selection does not jump to a neighbour
    panel.status_filter.value = ()  # "alle": the cancelled search is listed again
    panel.search_select.value = search.id
    panel.resume_button.click()
    assert "INVALID_TRANSITION" in panel.status.value
    assert Platzsuche.get_by_id(search.id).status == "abgebrochen"
    assert not any(b.disabled for b in panel.action_controls)


def test_searches_panel_double_click_on_cancel_cancels_exactly_one_search(clean_db):
    """The list's next search (who waited longest) must survive a double-click."""
    first, second = f.search(), f.search()
    panel = SearchesPanel(today=TODAY)
    panel.search_select.value = first.id
    panel.cancel_button.click()
    panel.confirmation.yes_button.click()
    before = snapshot()
    panel.cancel_button.click()  # the second click of the double-click
    panel.confirmation.yes_button.click()
    assert "Keine Suche ausgewählt" in panel.status.value and not panel.confirmation.pending
    assert snapshot() == before
    assert Platzsuche.get_by_id(first.id).status == "abgebrochen"
    assert Platzsuche.get_by_id(second.id).status == "aktiv"
    # choosing another search drops a pending question about the former one
    panel.search_select.value = second.id
    panel.cancel_button.click()
    panel.search_select.value = None
    assert not panel.confirmation.pending


def test_over_long_text_is_refused_in_german_and_writes_nothing(clean_db):
    search = f.search()
    therapist = f.therapist()
    panel = SearchesPanel(today=TODAY)
    panel.search_select.value = search.id
    panel.therapist_id.value = therapist.id
    panel.exclusion_reason.value = "zu lang " * 100
    before = snapshot()
    panel.exclude_button.click()
    assert "TEXT_TOO_LONG" in panel.status.value and "erlaubt sind 500" in panel.status.value
    assert snapshot() == before


def test_searches_panel_opens_a_search_or_names_the_invalid_field(clean_db):
    good = f.patient()
    bad = f.patient(krankenkasse=None)
    panel = SearchesPanel(today=TODAY)
    panel.patient_id.value = bad.id
    before = snapshot()
    panel.open_button.click()
    assert "PATIENT_DATA_INVALID (krankenkasse)" in panel.status.value
    assert snapshot() == before
    panel.patient_id.value = good.id
    panel.open_button.click()
    search = Platzsuche.get(Platzsuche.patient == good.id)
    assert search.status == "aktiv"
    assert f"Suche {search.id}" in panel.status.value and "✓" in panel.status.value
    assert panel.selected_search_id == search.id
    panel.open_button.click()
    assert "ACTIVE_SEARCH_EXISTS" in panel.status.value
    panel.patient_id.value = 999999
    panel.open_button.click()
    assert "PATIENT_NOT_FOUND" in panel.status.value
    assert Platzsuche.select().count() == 1


def test_searches_panel_exclusion_needs_a_reason(clean_db):
    search = f.search()
    therapist = f.therapist()
    panel = SearchesPanel(today=TODAY)
    panel.search_select.value = search.id
    panel.therapist_id.value = therapist.id
    panel.exclusion_reason.value = "   "
    before = snapshot()
    panel.exclude_button.click()
    assert "REASON_REQUIRED" in panel.status.value
    assert snapshot() == before
    panel.exclusion_reason.value = "Patient kennt die Therapeutin privat"
    panel.exclude_button.click()
    assert "ausgeschlossen" in panel.status.value and "✓" in panel.status.value
    exclusions = Platzsuche.get_by_id(search.id).ausgeschlossene_therapeuten
    assert [e["id"] for e in exclusions] == [therapist.id]
    assert "privat" in exclusions[0]["reason"]
    assert panel.exclusion_reason.value == ""
    assert panel.rows[0]["ausschluesse"] == 1
    panel.therapist_id.value = 999999
    panel.exclusion_reason.value = "x"
    panel.exclude_button.click()
    assert "THERAPIST_NOT_FOUND" in panel.status.value


def test_searches_panel_without_selection_says_so(clean_db):
    panel = SearchesPanel(today=TODAY)
    assert panel.selected_search_id is None
    panel.pause_button.click()
    assert "Keine Suche ausgewählt" in panel.status.value


# --- Response panel and review queue ----------------------------------------------------------


@pytest.fixture
def bundle(clean_db):
    therapist = f.therapist()
    f.searches(3)
    anfrage, patients = sent_bundle(therapist)
    return therapist, anfrage, patients


def test_response_panel_records_an_answer(bundle):
    therapist, anfrage, patients = bundle
    panel = ResponsePanel()
    panel.load(anfrage.id)
    assert set(panel.form.dropdowns) == set(patients)
    assert f"Anfrage {anfrage.id}" in panel.form.info.value
    panel.form.set_outcome(patients[0], "angenommen")
    before = snapshot()
    panel.save_button.click()  # two patients without an answer
    assert "MISSING_RESPONSES" in panel.status.value
    assert snapshot() == before
    panel.form.set_outcome(patients[1], "abgelehnt_nicht_geeignet")
    panel.form.set_outcome(patients[2], "abgelehnt_Kapazitaet")
    panel.notes.value = "telefonisch"
    panel.save_button.click()
    assert "teilweise Annahme" in panel.status.value and "✓" in panel.status.value
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    assert (anfrage.antworttyp, anfrage.angenommen_anzahl, anfrage.abgelehnt_anzahl) == (
        "teilweise_Annahme",
        1,
        2,
    )
    assert "telefonisch" in anfrage.notizen
    placed = Platzsuche.get(Platzsuche.patient == patients[0])
    assert placed.vermittelter_therapeut_id == therapist.id
    excluded = Platzsuche.get(Platzsuche.patient == patients[1])
    assert [e["id"] for e in excluded.ausgeschlossene_therapeuten] == [therapist.id]
    panel.save_button.click()
    assert "ALREADY_ANSWERED" in panel.status.value
    assert not panel.save_button.disabled


def test_response_panel_errors_for_unknown_or_unsent_anfrage(clean_db):
    therapist = f.therapist()
    f.searches(3)
    unsent = create_anfrage(therapist.id, now=f.NOW).anfrage_id
    panel = ResponsePanel()
    panel.load(999999)
    assert "gibt es nicht" in panel.form.info.value
    panel.save_button.click()
    assert "ANFRAGE_NOT_FOUND" in panel.status.value
    panel.load(unsent)
    for pid in panel.form.dropdowns:
        panel.form.set_outcome(pid, "abgelehnt_sonstiges")
    panel.save_button.click()
    assert "ANFRAGE_NOT_SENT" in panel.status.value
    assert Therapeutenanfrage.get_by_id(unsent).antwort_datum is None


def test_review_queue_decides_per_patient(bundle):
    therapist, anfrage, patients = bundle
    item = review_item(anfrage.id, text="Frau X nehme ich gern.")
    panel = ReviewQueuePanel()
    assert [i["inbound_id"] for i in panel.items] == [item.id]
    assert panel.selected_inbound_id == item.id
    assert "Antwort nicht eindeutig" in panel.reason.value
    assert "Frau X nehme ich gern." in panel.reply.value
    assert panel.anfrage_input.value == anfrage.id
    assert set(panel.form.dropdowns) == set(patients)
    panel.form.set_outcome(patients[0], "angenommen")
    panel.decide_button.click()
    assert "MISSING_RESPONSES" in panel.status.value
    assert InboundMessage.get_by_id(item.id).status == "pruefung"
    for pid in patients[1:]:
        panel.form.set_outcome(pid, "abgelehnt_sonstiges")
    panel.decide_button.click()
    assert "✓" in panel.status.value and "teilweise Annahme" in panel.status.value
    assert InboundMessage.get_by_id(item.id).status == "verarbeitet"
    assert Therapeutenanfrage.get_by_id(anfrage.id).antworttyp == "teilweise_Annahme"
    assert panel.items == [] and panel.selected_inbound_id is None


def test_review_queue_dismiss_needs_a_reason(bundle):
    _, anfrage, _ = bundle
    item = review_item(anfrage.id)
    panel = ReviewQueuePanel()
    panel.dismiss_button.click()
    assert "REASON_REQUIRED" in panel.status.value
    assert InboundMessage.get_by_id(item.id).status == "pruefung"
    panel.dismiss_reason.value = "Abwesenheitsnotiz"
    panel.dismiss_button.click()
    assert "verworfen" in panel.status.value
    row = InboundMessage.get_by_id(item.id)
    assert (row.status, row.review_reason) == ("ignoriert", "Abwesenheitsnotiz")
    assert AuditLog.select().where(AuditLog.action == "dismiss_reply").count() == 1


def test_review_queue_unrecognised_anfrage_needs_an_id(bundle):
    _, anfrage, patients = bundle
    item = review_item(None)
    panel = ReviewQueuePanel()
    assert panel.anfrage_input.value == 0 and panel.form.dropdowns == {}
    panel.decide_button.click()
    assert "ANFRAGE_REQUIRED" in panel.status.value
    panel.anfrage_input.value = anfrage.id
    assert set(panel.form.dropdowns) == set(patients)
    for pid in patients:
        panel.form.set_outcome(pid, "abgelehnt_Kapazitaet")
    panel.decide_button.click()
    assert "vollständige Ablehnung" in panel.status.value
    row = InboundMessage.get_by_id(item.id)
    assert (row.status, row.therapeutenanfrage_id) == ("verarbeitet", anfrage.id)


def test_review_queue_pages_and_dismisses_exactly_the_selected_item(bundle):
    _, anfrage, _ = bundle
    made = [review_item(anfrage.id, key=f"m{n}") for n in range(30)]
    panel = ReviewQueuePanel()
    order = [panel._key(i) for i in panel.items]
    assert sorted(order) == sorted(("email", m.id) for m in made)
    assert panel.queue_table is panel.pager.output
    assert panel.queue_table.value.count("<tr>") == 26  # header + 25
    assert [v for _, v in panel.item_select.options] == order[:25]
    assert panel.selected == order[0] and panel.pager.children[0] is panel.pager.actions
    panel.pager.next_button.click()  # the queue moves to the first item of the page shown
    assert [v for _, v in panel.item_select.options] == order[25:]
    assert panel.selected == order[25] and panel.selected_inbound_id == order[25][1]
    panel.item_select.value = order[27]
    panel.dismiss_reason.value = "Abwesenheitsnotiz"
    panel.dismiss_button.click()
    panel.dismiss_button.click()  # the double-click's second click: the reason is gone
    assert "REASON_REQUIRED" in panel.status.value
    dismissed = InboundMessage.select().where(InboundMessage.status == "ignoriert")
    assert [m.id for m in dismissed] == [order[27][1]]
    assert panel.pager.page == 1 and panel.selected == order[25]
    assert [v for _, v in panel.item_select.options] == order[25:27] + order[28:]


def test_today_opens_a_review_item_on_its_page(bundle):
    _, anfrage, _ = bundle
    made = [review_item(anfrage.id, key=f"m{n}") for n in range(30)]
    today = TodayPanel(today=TODAY, refresh_seconds=0)
    queue = today.act("reviews", ("email", made[-1].id))
    assert isinstance(queue, ReviewQueuePanel) and queue.selected_inbound_id == made[-1].id
    assert queue.pager.page == 1 and queue.reply.value


def clicked_in_review(anfrage_id, patient_id, answer):
    """A confirmed link click that processing sent to the review queue."""
    click, _ = store_click(anfrage_id, patient_id, answer, "203.0.113.7", now=f.NOW)
    assert process_click(click.id, now=f.NOW) == "pruefung"
    return LinkKlick.get_by_id(click.id)


def test_review_queue_shows_and_decides_a_link_click(bundle):
    _, anfrage, patients = bundle
    stranger = f.search().patient_id  # not in the bundle: the click needs a person
    email = review_item(anfrage.id)
    click = clicked_in_review(anfrage.id, stranger, "angenommen")
    panel = ReviewQueuePanel()
    by_kind = {i["kind"]: i for i in panel.items}
    assert len(panel.items) == 2
    assert (by_kind["email"]["inbound_id"], by_kind["klick"]["klick_id"]) == (email.id, click.id)
    assert f"Klick {click.id}" in panel.queue_table.value
    assert "Patient nicht in dieser Anfrage" in panel.queue_table.value
    panel.item_select.value = ("klick", click.id)
    assert (panel.selected_klick_id, panel.selected_inbound_id) == (click.id, None)
    assert "Patient nicht in dieser Anfrage" in panel.reason.value
    assert "Link-Klick" in panel.reply.value and "angenommen" in panel.reply.value
    assert str(stranger) in panel.reply.value
    assert panel.anfrage_input.value == anfrage.id and panel.anfrage_input.disabled
    assert set(panel.form.dropdowns) == set(patients)
    panel.form.set_outcome(patients[0], "angenommen")
    panel.decide_button.click()
    assert "MISSING_RESPONSES" in panel.status.value
    assert LinkKlick.get_by_id(click.id).status == "pruefung"
    for pid in patients[1:]:
        panel.form.set_outcome(pid, "abgelehnt_sonstiges")
    panel.decide_button.click()
    assert f"Klick {click.id}" in panel.status.value and "teilweise Annahme" in panel.status.value
    row = LinkKlick.get_by_id(click.id)
    assert (row.status, row.result["decided_by"]) == ("verarbeitet", panel.actor)
    assert Therapeutenanfrage.get_by_id(anfrage.id).antworttyp == "teilweise_Annahme"
    assert AuditLog.select().where(AuditLog.action == "decide_link_klick").count() == 1
    # the e-mail stays in the queue and is selected again
    assert [i["kind"] for i in panel.items] == ["email"]
    assert panel.selected_inbound_id == email.id and panel.selected_klick_id is None
    assert not panel.anfrage_input.disabled


def test_review_queue_prefills_and_dismisses_a_link_click(bundle):
    _, anfrage, patients = bundle
    record_response(anfrage.id, dict.fromkeys(patients, "abgelehnt_Kapazitaet"), now=f.NOW)
    click = clicked_in_review(anfrage.id, patients[0], "angenommen")  # answered otherwise
    panel = ReviewQueuePanel()
    assert panel.selected_klick_id == click.id
    assert "ALREADY_ANSWERED" in panel.reason.value
    # the recorded answer is shown, not overwritten by the click
    assert panel.form.dropdowns[patients[0]].value == "abgelehnt_Kapazitaet"
    panel.dismiss_reason.value = "telefonisch geklärt"
    panel.dismiss_button.click()
    assert f"Klick {click.id} verworfen" in panel.status.value
    row = LinkKlick.get_by_id(click.id)
    assert (row.status, row.review_reason) == ("ignoriert", "telefonisch geklärt")
    assert AuditLog.select().where(AuditLog.action == "dismiss_link_klick").count() == 1
    assert panel.items == [] and panel.selected_klick_id is None


def test_review_queue_prefills_the_clicked_answers(clean_db):
    therapist = f.therapist()
    f.searches(3)
    anfrage_id = create_anfrage(therapist.id, now=f.NOW).anfrage_id  # not sent: refused
    patients = [
        r.patient_id
        for r in TherapeutAnfragePatient.select().where(
            TherapeutAnfragePatient.therapeutenanfrage == anfrage_id
        )
    ]
    chosen = ["angenommen", "abgelehnt_Kapazitaet", "abgelehnt_sonstiges"]
    answers = dict(zip(patients, chosen, strict=True))
    for pid, answer in answers.items():
        click, _ = store_click(anfrage_id, pid, answer, None, now=f.NOW)
        process_click(click.id, now=f.NOW)
    panel = ReviewQueuePanel()
    assert [i["kind"] for i in panel.items] == ["klick"] * 3
    assert panel.form.responses() == answers
    panel.decide_button.click()
    assert "ANFRAGE_NOT_SENT" in panel.status.value
    f.mark_sent(anfrage_id, f.NOW)
    panel.decide_button.click()
    assert "✓" in panel.status.value and "teilweise Annahme" in panel.status.value
    statuses = sorted(c.status for c in LinkKlick.select())
    assert statuses == ["ignoriert", "ignoriert", "verarbeitet"] and panel.items == []


def test_today_panel_lists_link_clicks_in_review(bundle):
    _, anfrage, patients = bundle
    record_response(anfrage.id, dict.fromkeys(patients, "abgelehnt_Kapazitaet"), now=f.NOW)
    click = clicked_in_review(anfrage.id, patients[0], "angenommen")
    panel = TodayPanel(today=TODAY)
    assert panel.counts()["reviews"] == 1
    assert f"Klick {click.id}" in panel.text()
    assert "Link-Klick" in panel.text()


# --- Conflicts panel ---------------------------------------------------------------------------


def test_conflicts_panel_shows_both_therapists_and_the_offered_alternatives(clean_db):
    first_t, second_t, shared = make_conflict()
    f.search(days_waiting=3)  # a patient the conflict notice can offer instead
    from operations.sending import queue_conflict_notice

    second_anfrage = Therapeutenanfrage.get(Therapeutenanfrage.therapist == second_t.id)
    queue_conflict_notice(second_anfrage.id, [shared], now=f.NOW)
    offer = Therapeutenanfrage.get(Therapeutenanfrage.konflikt_anfrage_id == second_anfrage.id)
    [offered] = offer.zeilen
    panel = ConflictsPanel()
    assert len(panel.conflicts) == 1 and "1 Konflikt(e) offen" in panel.count.value
    html = "".join(c.value for c in panel.row_for(shared).children if isinstance(c, HTML))
    assert first_t.nachname in html and second_t.nachname in html
    assert f"vermittelt an {first_t.vorname} {first_t.nachname}" in html
    assert "Vorgeschlagene Alternativen" in html and f"A{offer.id}" in html
    assert f"<td style='padding:0 8px'>{offered.patient_id}</td>" in html
    assert " Jahre<" in html and " km<" in html and "3 Tage" in html
    assert "wartet auf Antwort" in html  # the line's state in German, no raw code
    assert "anstehend" not in html and "_" not in html.split("Vorgeschlagene")[1]


def test_conflicts_panel_reassigns_once_after_confirmation(clean_db):
    first_t, second_t, shared = make_conflict()
    panel = ConflictsPanel()
    row = panel.row_for(shared)
    assert row.therapist_select.value == second_t.id
    assert f"statt an {first_t.vorname} {first_t.nachname}" in row.confirm.description
    before = snapshot()
    row.reassign_button.click()  # not confirmed: refused, nothing changed
    assert "CONFIRMATION_REQUIRED" in panel.status.value and snapshot() == before
    row.confirm.value = True
    row.reassign_button.click()
    assert "✓" in panel.status.value and f"neu zugewiesen an Therapeut {second_t.id}" in (
        panel.status.value
    )
    search = Platzsuche.get(Platzsuche.patient == shared)
    assert search.vermittelter_therapeut_id == second_t.id
    assert panel.rows == [] and "0 Konflikt(e) offen" in panel.count.value
    after = snapshot()
    row.reassign_button.click()  # the same row again (a double click): nothing happens
    assert snapshot() == after
    assert AuditLog.select().where(AuditLog.action == "reassign_conflict").count() == 1
    panel.filter.value = "erledigt"
    [settled] = panel.rows
    assert "erledigt: Neu zugewiesen von" in settled.children[0].value
    assert len(settled.children) == 3  # no actions on a settled conflict


def test_conflicts_panel_confirms_the_first_acceptance(clean_db):
    first_t, second_t, shared = make_conflict()
    panel = ConflictsPanel()
    row = panel.row_for(shared)
    row.note.value = "mit beiden telefoniert"
    row.settle_button.click()
    assert "✓ Konflikt zu Suche" in panel.status.value and "Erste Zusage bestätigt" in (
        panel.status.value
    )
    assert Platzsuche.get(Platzsuche.patient == shared).vermittelter_therapeut_id == first_t.id
    assert panel.rows == []
    panel.filter.value = "alle"
    assert "mit beiden telefoniert" in panel.rows[0].children[0].value


def test_conflicts_panel_settles_otherwise_only_with_a_note(clean_db):
    _, _, shared = make_conflict()
    panel = ConflictsPanel()
    row = panel.row_for(shared)
    before = snapshot()
    row.other_button.click()
    assert "NOTE_REQUIRED" in panel.status.value and snapshot() == before
    assert panel.rows == [row]
    row.note.value = "Patient hat sich für Therapeut 1 entschieden"
    row.other_button.click()
    assert "✓ Konflikt zu Suche" in panel.status.value and "Anders geklärt" in panel.status.value
    assert panel.rows == []


def test_conflicts_panel_refuses_override_of_a_successful_search(clean_db):
    first_t, second_t, shared = make_conflict()
    search = Platzsuche.get(Platzsuche.patient == shared)
    Platzsuche.update(status="erfolgreich").where(Platzsuche.id == search.id).execute()
    panel = ConflictsPanel()
    row = panel.row_for(shared)
    row.confirm.value = True
    row.reassign_button.click()
    assert "THERAPIST_LOCKED" in panel.status.value
    assert Platzsuche.get_by_id(search.id).vermittelter_therapeut_id == first_t.id
    assert not row.reassign_button.disabled


def test_conflicts_panel_pages_long_lists(clean_db, monkeypatch):
    import console.conflicts as panel_module

    monkeypatch.setattr(panel_module, "PAGE_SIZE", 1)
    _, _, shared = make_conflict()
    other_first, other_second = f.therapist(), f.therapist(plz="10117")
    other = f.search(days_waiting=90)
    bundles = [sent_bundle(therapist)[0] for therapist in (other_first, other_second)]
    for anfrage in bundles:
        record_response(anfrage.id, {other.patient_id: "angenommen"})
    panel = ConflictsPanel()
    assert "2 Konflikt(e) offen – Seite 1 von 2" in panel.count.value
    assert [r.conflict["patient_id"] for r in panel.rows] == [shared]
    assert panel.previous_button.disabled and not panel.next_button.disabled
    panel.next_button.click()
    assert [r.conflict["patient_id"] for r in panel.rows] == [other.patient_id]
    assert "Seite 2 von 2" in panel.count.value and panel.next_button.disabled


def test_conflicts_panel_empty(clean_db):
    panel = ConflictsPanel()
    assert panel.rows == [] and "0 Konflikt(e) offen" in panel.count.value


def test_review_queue_decides_some_patients_and_keeps_the_item_for_the_others(bundle):
    """ "1 ja, bei den anderen unsicher": the one is recorded, the reply stays in review."""
    _, anfrage, patients = bundle
    inbound = review_item(anfrage.id)
    panel = ReviewQueuePanel(actor="anna")
    panel.item_select.value = ("email", inbound.id)
    panel.form.set_outcome(patients[0], "angenommen")
    panel.decide_button.click()  # without "partial" every open patient needs an answer
    assert "MISSING_RESPONSES" in panel.status.value
    panel.partial.value = True
    panel.decide_button.click()
    assert "2 bleiben offen" in panel.status.value and "✓" in panel.status.value
    assert InboundMessage.get_by_id(inbound.id).status == "pruefung"
    assert panel.form.dropdowns[patients[0]].disabled  # decided: shown, not editable
    assert not panel.partial.value
    for pid in patients[1:]:
        panel.form.set_outcome(pid, "abgelehnt_Kapazitaet")
    panel.decide_button.click()
    assert "teilweise Annahme" in panel.status.value
    assert InboundMessage.get_by_id(inbound.id).status == "verarbeitet"
    assert [i for i in panel.items if i.get("inbound_id") == inbound.id] == []


@pytest.mark.parametrize(
    "reason,german",
    [
        ("hedged: 'vielleicht ab Januar'", "Zögernde Antwort: „vielleicht ab Januar“"),
        (
            "patient 12: form says angenommen, text says abgelehnt_Kapazitaet",
            "Patient 12: Formular sagt angenommen, Text sagt abgelehnt_Kapazitaet",
        ),  # fmt: skip
        (
            "no answer recognised; the therapist asks: 'Wann?'",
            "Keine Antwort erkannt; Die Praxis fragt: „Wann?“",
        ),  # fmt: skip
        ("Anfrage nicht erkannt", "Anfrage nicht erkannt"),
    ],
)
def test_review_reasons_read_german(reason, german):
    from console.messages import review_reason_de

    assert review_reason_de(reason) == german


def test_the_review_queue_words_the_reason_in_german(bundle):
    _, anfrage, _ = bundle
    item = review_item(anfrage.id)
    InboundMessage.update(review_reason="hedged: 'melde mich'").where(
        InboundMessage.id == item.id
    ).execute()
    panel = ReviewQueuePanel()
    panel.item_select.value = ("email", item.id)
    assert "Zögernde Antwort: „melde mich“" in panel.reason.value
    assert "hedged" not in panel.queue_table.value and "Zögernde Antwort" in panel.queue_table.value
