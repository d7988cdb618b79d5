"""The Bundles, Calls and Cooling panels: driven by button clicks, checked through the models."""

from __future__ import annotations

import datetime as dt

import pytest

from console import queries
from console.bundles import BundlesPanel
from console.calls import CallsPanel
from console.cooling import CoolingPanel, timeline_png
from db.models import (
    AuditLog,
    OutboxItem,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations.bundles import create_anfrage
from operations.sending import send_anfrage
from tests import factories as f

TODAY = f.NOW.date()
PNG = b"\x89PNG\r\n\x1a\n"


def counts():
    return (
        Therapeutenanfrage.select().count(),
        TherapeutAnfragePatient.select().count(),
        OutboxItem.select().count(),
    )


def ok(panel) -> bool:
    return "✓" in panel.status.value


# --- Bundles -----------------------------------------------------------------------------------


def test_simulated_round_stores_nothing_and_explains_each_patient(clean_db):
    therapist = f.therapist()
    waiting = f.searches(4)
    panel = BundlesPanel(now=f.NOW)
    panel.simulate_button.click()
    assert counts() == (0, 0, 0)
    assert ok(panel) and "Simulation: 1 Bündel, 4 Patienten" in panel.status.value
    shown = panel.round_output.value
    assert f"Therapeut {therapist.id}" in shown and therapist.nachname in shown
    for search in waiting:
        assert f"(Suche {search.id})" in shown and search.patient.nachname in shown
    # each patient's age, symptoms, distance and the reason in plain German, no codes
    assert "wartet 13 Tage" in shown and " km entfernt" in shown
    age = dt.date.today().year - 1990  # born 1.1.1990 (factory)
    assert f"<td style='padding:0 8px'>{age}</td>" in shown
    assert "Schlafstörungen" in shown
    assert "Symptome passen zum Schwerpunkt" in shown
    assert "alle Wünsche der Praxis berücksichtigt" in shown
    assert "S1" not in shown and "S4" not in shown
    assert "Erstellte Anfragen" not in shown
    assert not panel.simulate_button.disabled and not panel.run_button.disabled


def test_running_the_round_creates_the_anfragen_and_lists_them_unsent(clean_db):
    f.therapist()
    f.therapist(plz="10117")
    f.searches(8)
    panel = BundlesPanel(now=f.NOW)
    panel.run_button.click()  # a dry run first, and a question naming what will happen
    assert counts() == (0, 0, 0) and panel.round_confirmation.pending
    assert "etwa 2 Anfrage(n)" in panel.round_confirmation.question.value
    panel.round_confirmation.yes_button.click()
    panel.round_confirmation.yes_button.click()  # a double-click runs one round
    created = [a.id for a in Therapeutenanfrage.select().order_by(Therapeutenanfrage.id)]
    assert len(created) == 2
    assert ok(panel) and "2 Anfrage(n) erstellt" in panel.status.value
    assert "Erstellte Anfragen:</b> " + ", ".join(map(str, created)) in panel.round_output.value
    assert [u["anfrage_id"] for u in panel.unsent] == created
    assert {v for _, v in panel.anfrage_select.options} == set(created)
    # a second round at the same moment creates nothing more
    panel.run_round()
    assert Therapeutenanfrage.select().count() == 2
    assert "keine" in panel.round_output.value and "pending_anfrage" in panel.round_output.value


def test_round_respects_the_feature_flag(clean_db):
    from operations import flags

    f.therapist()
    f.searches(4)
    flags.set_auto_rounds(False, 100, actor="test")
    panel = BundlesPanel(now=f.NOW)
    panel.run_button.click()
    assert counts() == (0, 0, 0) and "abgeschaltet" in panel.status.value


def test_composition_lists_previews_and_creates(clean_db):
    first = f.therapist()
    second = f.therapist(plz="10117")
    f.therapist(plz="20095")  # another region
    f.searches(3)
    panel = BundlesPanel(now=f.NOW)
    panel.plz_prefix.value = "10"
    panel.list_button.click()
    assert ok(panel) and "2 auswählbare" in panel.status.value
    offered = [v for _, v in panel.therapist_select.options]
    assert sorted(offered) == sorted([first.id, second.id])
    assert panel.selected_therapist_id == offered[0]

    panel.therapist_select.value = second.id
    panel.preview_button.click()
    assert counts() == (0, 0, 0)
    assert ok(panel) and "Vorschau: 3 Patienten" in panel.status.value
    assert "Vorschau – " in panel.preview_output.value
    assert "Wartezeit" in panel.preview_output.value

    panel.create_button.click()
    anfrage = Therapeutenanfrage.get()
    assert (anfrage.therapist_id, anfrage.ausloeser, anfrage.anfragegroesse) == (
        second.id,
        "personal",
        3,
    )
    assert anfrage.gesendet_datum is None
    assert f"Anfrage {anfrage.id} erstellt" in panel.status.value
    assert [u["anfrage_id"] for u in panel.unsent] == [anfrage.id]


def test_invalid_prefix_and_missing_therapist_show_the_code(clean_db):
    panel = BundlesPanel(now=f.NOW)
    panel.plz_prefix.value = "1"
    panel.list_button.click()
    assert "INVALID_PLZ_PREFIX" in panel.status.value and panel.therapist_select.options == ()
    panel.preview_button.click()
    assert "Kein Therapeut ausgewählt" in panel.status.value
    panel.send_button.click()
    assert "Keine Anfrage ausgewählt" in panel.status.value
    assert not panel.list_button.disabled


def test_preview_refused_for_a_cooling_therapist_writes_nothing(clean_db):
    therapist = f.therapist(naechster_kontakt_moeglich=TODAY + dt.timedelta(days=5))
    f.searches(3)
    panel = BundlesPanel(now=f.NOW)
    panel.therapist_select.options = [("x", therapist.id)]
    panel.therapist_select.value = therapist.id
    panel.preview_button.click()
    assert "THERAPIST_NOT_CONTACTABLE" in panel.status.value
    panel.create_button.click()
    assert "THERAPIST_NOT_CONTACTABLE" in panel.status.value and counts() == (0, 0, 0)


def _worker_sends(anfrage_id: int) -> None:
    """What the ``send_anfrage`` actor does with the outbox item the console queued."""
    from workers.communication_actors import send_anfrage as send_actor

    item = OutboxItem.get(OutboxItem.dedupe_key == f"send_anfrage:{anfrage_id}")
    assert item.status == "offen"
    send_actor.fn(**item.payload)


def test_create_with_send_now_queues_it_for_the_workers(clean_db):
    """The console holds no signing key: the workers render and send (SECURITY.md)."""
    therapist = f.therapist()
    f.searches(3)
    panel = BundlesPanel(now=f.NOW, actor="erika")
    panel.plz_prefix.value = "10"
    panel.list_button.click()
    panel.send_now.value = True
    panel.create_button.click()  # sending reaches the practice: asked first
    assert Therapeutenanfrage.select().count() == 0
    assert f"Therapeut {therapist.id}" in panel.create_confirmation.question.value
    panel.create_confirmation.yes_button.click()
    panel.create_confirmation.yes_button.click()  # a double-click creates one Anfrage
    assert Therapeutenanfrage.select().count() == 1
    anfrage = Therapeutenanfrage.get()
    assert anfrage.therapist_id == therapist.id and anfrage.gesendet_datum is None
    assert "erstellt (3 P.), zum Versand eingeplant" in panel.status.value
    _worker_sends(anfrage.id)
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    assert anfrage.gesendet_datum is not None and anfrage.email_id is not None
    sent = AuditLog.get(AuditLog.action == "send_anfrage")
    assert sent.actor == "erika"  # the worker's audit row names who asked for it


def test_open_bundle_is_queued_with_the_button_once(clean_db):
    therapist = f.therapist()
    f.searches(3)
    anfrage_id = create_anfrage(therapist.id, now=f.NOW).anfrage_id
    panel = BundlesPanel(now=f.NOW, actor="erika")
    assert panel.selected_anfrage_id == anfrage_id
    panel.send_button.click()
    assert AuditLog.select().where(AuditLog.action == "request_send").count() == 0
    assert f"Anfrage {anfrage_id} an" in panel.send_confirmation.question.value
    panel.send_confirmation.yes_button.click()
    panel.send_confirmation.yes_button.click()  # the double-click's second click: nothing
    assert ok(panel) and f"Anfrage {anfrage_id} zum Versand eingeplant (email)" in (
        panel.status.value
    )
    assert AuditLog.select().where(AuditLog.action == "request_send").count() == 1
    panel.send(anfrage_id)  # sending it again: refused, nothing queued twice
    assert "ALREADY_QUEUED" in panel.status.value
    assert AuditLog.select().where(AuditLog.action == "request_send").count() == 1
    _worker_sends(anfrage_id)
    panel.refresh()
    assert panel.unsent == [] and panel.anfrage_select.options == ()
    assert AuditLog.get(AuditLog.action == "send_anfrage").actor == "erika"


def test_unsent_bundles_are_paged_and_sending_acts_on_the_one_selected(clean_db):
    f.searches(40)
    created = [create_anfrage(f.therapist().id, now=f.NOW).anfrage_id for _ in range(30)]
    panel = BundlesPanel(now=f.NOW, actor="erika")
    assert [u["anfrage_id"] for u in panel.unsent] == created
    assert panel.unsent_table is panel.pager.output
    assert panel.unsent_table.value.count("<tr>") == 26  # header + 25
    assert [v for _, v in panel.anfrage_select.options] == created[:25]
    assert panel.selected_anfrage_id == created[0]
    assert panel.send_button in panel.pager.actions.children[0].children[0].children
    panel.pager.next_button.click()
    assert [v for _, v in panel.anfrage_select.options] == created[25:]
    assert panel.selected_anfrage_id is None  # the selection left with its page
    panel.anfrage_select.value = created[28]
    panel.send_button.click()
    assert f"Anfrage {created[28]} an" in panel.send_confirmation.question.value
    panel.send_confirmation.yes_button.click()
    panel.send_confirmation.yes_button.click()  # the double-click's second click: nothing
    [queued] = AuditLog.select().where(AuditLog.action == "request_send")
    assert queued.entity_id == str(created[28])
    assert panel.pager.page == 1 and panel.selected_anfrage_id == created[28]  # still unsent


# --- Calls -------------------------------------------------------------------------------------


def phone_bundle():
    """An Anfrage sent by phone (the therapist has no email): one planned call."""
    therapist = f.therapist(email=None, telefon="030 555")
    f.searches(3)
    anfrage_id = create_anfrage(therapist.id, now=f.NOW).anfrage_id
    send_anfrage(anfrage_id, now=f.NOW)
    call = Telefonanruf.get(Telefonanruf.therapeutenanfrage == anfrage_id)
    return therapist, Therapeutenanfrage.get_by_id(anfrage_id), call


def test_calls_panel_lists_due_calls_and_loads_the_patients(clean_db):
    _, anfrage, call = phone_bundle()
    assert CallsPanel(today=call.geplantes_datum - dt.timedelta(days=1)).calls == []
    panel = CallsPanel(today=call.geplantes_datum + dt.timedelta(days=1), now=f.NOW)
    assert [c["call_id"] for c in panel.calls] == [call.id]
    assert panel.calls[0]["ueberfaellig"] and "030 555" in panel.calls_table.value
    assert panel.selected_call_id == call.id and panel.form.anfrage_id == anfrage.id
    assert len(panel.form.dropdowns) == 3 and panel.reschedule_id.value == call.id


def test_call_reached_records_the_answer_and_starts_cooling(clean_db):
    therapist, anfrage, call = phone_bundle()
    panel = CallsPanel(today=call.geplantes_datum, now=f.NOW)
    patients = list(panel.form.dropdowns)
    panel.form.set_outcome(patients[0], "angenommen")
    for pid in patients[1:]:
        panel.form.set_outcome(pid, "abgelehnt_Kapazitaet")
    panel.ergebnis.value = "nimmt eine Person"
    panel.reached_button.click()
    assert ok(panel) and "erreicht, Antwort gespeichert" in panel.status.value
    assert "1 angenommen, 2 abgelehnt" in panel.status.value
    call = Telefonanruf.get_by_id(call.id)
    assert (call.status, call.ergebnis) == ("abgeschlossen", "nimmt eine Person")
    anfrage = Therapeutenanfrage.get_by_id(anfrage.id)
    assert anfrage.antwort_datum is not None and anfrage.angenommen_anzahl == 1
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich > TODAY
    assert panel.calls == [] and panel.ergebnis.value == ""


def test_call_reached_with_missing_answers_changes_nothing(clean_db):
    _, anfrage, call = phone_bundle()
    panel = CallsPanel(today=call.geplantes_datum, now=f.NOW)
    panel.form.set_outcome(next(iter(panel.form.dropdowns)), "angenommen")
    panel.reached_button.click()
    assert "MISSING_RESPONSES" in panel.status.value
    assert Telefonanruf.get_by_id(call.id).status == "geplant"
    assert Therapeutenanfrage.get_by_id(anfrage.id).antwort_datum is None
    assert not panel.reached_button.disabled


def test_call_not_reached_changes_nothing_else_and_can_be_rescheduled(clean_db):
    therapist, anfrage, call = phone_bundle()
    panel = CallsPanel(today=call.geplantes_datum, now=f.NOW)
    panel.failed_button.click()
    assert ok(panel) and f"Anruf {call.id}: nicht erreicht" in panel.status.value
    assert Telefonanruf.get_by_id(call.id).status == "fehlgeschlagen"
    anfrage_after = Therapeutenanfrage.get_by_id(anfrage.id)
    assert anfrage_after.antwort_datum is None and anfrage_after.antworttyp is None
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich is None
    assert panel.calls == [] and panel.reschedule_id.value == call.id

    panel.reschedule_button.click()
    new = Telefonanruf.get(Telefonanruf.id != call.id)
    assert (new.status, new.therapeutenanfrage_id, new.therapist_id) == (
        "geplant",
        anfrage.id,
        therapist.id,
    )
    assert ok(panel) and f"Neuer Anruf {new.id}" in panel.status.value
    assert AuditLog.select().where(AuditLog.action == "reschedule_call").count() == 1
    panel.reschedule_button.click()  # the double-click's second click plans nothing
    assert "ALREADY_PLANNED" in panel.status.value and Telefonanruf.select().count() == 2


def test_call_reached_without_any_answer_records_nothing(clean_db):
    _, anfrage, call = phone_bundle()
    panel = CallsPanel(today=call.geplantes_datum, now=f.NOW)
    audited = AuditLog.select().count()
    panel.reached_button.click()
    assert "✗" in panel.status.value and "nichts gespeichert" in panel.status.value
    assert Telefonanruf.get_by_id(call.id).status == "geplant"
    assert AuditLog.select().count() == audited


def test_a_double_click_on_not_reached_fails_exactly_one_call(clean_db):
    """The next due call (nobody made it yet) must stay planned."""
    _, _, first = phone_bundle()
    _, _, second = phone_bundle()
    panel = CallsPanel(today=max(first.geplantes_datum, second.geplantes_datum), now=f.NOW)
    panel.call_select.value = first.id
    panel.failed_button.click()
    panel.failed_button.click()
    assert "Kein Anruf ausgewählt" in panel.status.value
    assert Telefonanruf.get_by_id(first.id).status == "fehlgeschlagen"
    assert Telefonanruf.get_by_id(second.id).status == "geplant"


def due_calls(count: int) -> list[Telefonanruf]:
    """``count`` calls due today, a therapist each, in the list's order (by time)."""
    return [
        Telefonanruf.create(
            therapist=f.therapist(telefon=f"030 {i:04d}"),
            geplantes_datum=TODAY,
            geplante_zeit=f"{8 + i // 12:02d}:{i % 12 * 5:02d}",
            dauer_minuten=5,
        )
        for i in range(count)
    ]


def test_calls_panel_renders_and_offers_one_page(clean_db):
    calls = [c.id for c in due_calls(30)]
    panel = CallsPanel(today=TODAY, now=f.NOW)
    assert [c["call_id"] for c in panel.calls] == calls
    assert panel.calls_table is panel.pager.output
    assert panel.calls_table.value.count("<tr>") == 26  # header + 25
    assert [v for _, v in panel.call_select.options] == calls[:25]
    assert panel.selected_call_id == calls[0] and panel.pager.children[0] is panel.pager.actions
    panel.pager.next_button.click()
    assert [v for _, v in panel.call_select.options] == calls[25:]
    assert panel.selected_call_id is None and panel.call_info.value == ""  # no neighbour
    panel.call_select.value = calls[27]
    panel.refresh_button.click()  # a reload keeps the page and the selection
    assert panel.pager.page == 1 and panel.selected_call_id == calls[27]
    panel.pager.filter.value = "030 0003"  # the phone number of the fourth call
    assert [v for _, v in panel.call_select.options] == [calls[3]]
    assert panel.selected_call_id is None


def test_not_reached_on_page_two_fails_exactly_the_selected_call(clean_db):
    calls = [c.id for c in due_calls(30)]
    panel = CallsPanel(today=TODAY, now=f.NOW)
    panel.pager.next_page()
    panel.call_select.value = calls[26]
    panel.failed_button.click()
    panel.failed_button.click()  # the double-click's second click finds nothing selected
    assert "Kein Anruf ausgewählt" in panel.status.value
    failed = Telefonanruf.select().where(Telefonanruf.status == "fehlgeschlagen")
    assert [c.id for c in failed] == [calls[26]]
    assert [v for _, v in panel.call_select.options] == calls[25:26] + calls[27:]
    assert panel.reschedule_id.value == calls[26]


def test_call_cancelled_and_unknown_call_for_reschedule(clean_db):
    _, _, call = phone_bundle()
    panel = CallsPanel(today=call.geplantes_datum, now=f.NOW)
    panel.cancel_button.click()
    assert Telefonanruf.get_by_id(call.id).status == "abgebrochen"
    assert "abgebrochen" in panel.status.value
    panel.reached_button.click()
    assert "Kein Anruf ausgewählt" in panel.status.value
    panel.reschedule_id.value = 999_999
    panel.reschedule_button.click()
    assert "CALL_NOT_FOUND" in panel.status.value
    assert Telefonanruf.select().count() == 1


# --- Cooling -----------------------------------------------------------------------------------


def test_cooling_panel_plots_and_lists_cooling_therapists(clean_db):
    later = f.therapist(naechster_kontakt_moeglich=TODAY + dt.timedelta(days=20))
    sooner = f.therapist(naechster_kontakt_moeglich=TODAY + dt.timedelta(days=3))
    f.therapist(naechster_kontakt_moeglich=TODAY)  # contactable again today
    f.therapist()
    panel = CoolingPanel(today=TODAY)
    assert [r["therapist_id"] for r in panel.rows] == [sooner.id, later.id]
    assert [r["tage"] for r in panel.rows] == [3, 20]
    png = bytes(panel.plot.value)
    assert png.startswith(PNG) and len(png) > 1000
    assert later.nachname in panel.cooling_table.value


def test_cooling_panel_pages_the_list_with_the_override_above(clean_db):
    cooling = [
        f.therapist(naechster_kontakt_moeglich=TODAY + dt.timedelta(days=d)).id
        for d in range(1, 61)
    ]
    panel = CoolingPanel(today=TODAY)
    assert [r["therapist_id"] for r in panel.rows] == cooling  # every one is read …
    assert panel.cooling_table is panel.pager.output
    assert panel.cooling_table.value.count("<tr>") == 26  # … one page rendered
    assert panel.pager.visible_keys == cooling[:25]
    assert "Seite 1 von 3 · 60 Einträge" in panel.pager.info.value
    assert panel.override_button in panel.pager.actions.children[0].children[3].children
    panel.pager.next_page()
    panel.pager.next_page()
    assert panel.pager.visible_keys == cooling[50:]
    last = Therapist.get_by_id(cooling[-1])
    panel.pager.filter.value = last.nachname
    assert panel.pager.matching_keys == [last.id]
    # the override acts on the typed therapist, and the reload keeps the filter
    panel.therapist_id.value = last.id
    panel.immediately.value = True
    panel.reason.value = "hat angerufen"
    panel.override_button.click()
    assert ok(panel) and Therapist.get_by_id(last.id).naechster_kontakt_moeglich is None
    assert panel.pager.filter.value == last.nachname and panel.pager.matching_keys == []
    assert len(panel.rows) == 59 and Therapist.get_by_id(cooling[0]).naechster_kontakt_moeglich


def test_timeline_renders_when_nobody_cools():
    assert timeline_png([], TODAY).startswith(PNG)


def test_override_without_reason_is_refused_and_with_reason_clears(clean_db):
    until = TODAY + dt.timedelta(days=20)
    therapist = f.therapist(naechster_kontakt_moeglich=until)
    panel = CoolingPanel(today=TODAY, now=f.NOW)
    panel.therapist_id.value = therapist.id
    panel.immediately.value = True
    panel.reason.value = "   "
    panel.override_button.click()
    assert "REASON_REQUIRED" in panel.status.value
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich == until
    assert not AuditLog.select().where(AuditLog.action == "override_cooling").exists()

    panel.reason.value = "Meinungsänderung: hat angerufen"
    panel.override_button.click()
    assert ok(panel) and "kontaktierbar ab sofort" in panel.status.value
    stored = Therapist.get_by_id(therapist.id)
    assert stored.naechster_kontakt_moeglich is None
    assert "Meinungsänderung" in stored.notizen
    assert panel.rows == [] and panel.reason.value == ""
    assert not panel.override_button.disabled


def test_override_to_a_date_and_unknown_therapist(clean_db):
    therapist = f.therapist()
    panel = CoolingPanel(today=TODAY, now=f.NOW)
    panel.therapist_id.value = therapist.id
    panel.new_date.value = (TODAY + dt.timedelta(days=10)).strftime("%d.%m.%Y")
    panel.reason.value = "Urlaub"
    panel.override_button.click()
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich == TODAY + dt.timedelta(
        days=10
    )
    assert [r["therapist_id"] for r in panel.rows] == [therapist.id]
    assert queries.cooling_therapists(TODAY)[0]["tage"] == 10
    panel.therapist_id.value = 999_999
    panel.immediately.value = True
    panel.reason.value = "x"
    panel.override_button.click()
    assert "THERAPIST_NOT_FOUND" in panel.status.value


@pytest.mark.parametrize(
    "typed,immediately,says",
    [
        ("31.02.2027", False, "gibt es nicht im Kalender"),
        ("morgen", False, "ist kein Datum"),
        ("01.01.2020", False, "in der Vergangenheit"),
        ("", False, "Bitte ein Datum"),
        ("01.03.2027", True, "nicht beides"),
    ],
)
def test_cooling_override_refuses_an_impossible_or_missing_date(clean_db, typed, immediately, says):
    """An impossible date is never read as "kontaktierbar ab sofort"."""
    until = TODAY + dt.timedelta(days=20)
    therapist = f.therapist(naechster_kontakt_moeglich=until)
    panel = CoolingPanel(today=TODAY, now=f.NOW)
    panel.therapist_id.value = therapist.id
    panel.new_date.value, panel.immediately.value = typed, immediately
    panel.reason.value = "hat angerufen"
    panel.override_button.click()
    assert "INVALID_DATE" in panel.status.value and says in panel.status.value
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich == until
    assert not AuditLog.select().where(AuditLog.action == "override_cooling").exists()


def test_cooling_override_refuses_an_over_long_reason(clean_db):
    therapist = f.therapist()
    panel = CoolingPanel(today=TODAY, now=f.NOW)
    panel.therapist_id.value, panel.immediately.value = therapist.id, True
    panel.reason.value = "x" * 501
    panel.override_button.click()
    assert "TEXT_TOO_LONG" in panel.status.value and "501 Zeichen" in panel.status.value
    assert not AuditLog.select().where(AuditLog.action == "override_cooling").exists()
