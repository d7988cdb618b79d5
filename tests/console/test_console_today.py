"""The Today panel: a next-action button per row, focused on exactly that record, and a
self-refresh that keeps what staff typed."""

from __future__ import annotations

import asyncio
import datetime as dt

from console.bundles import BundlesPanel
from console.calls import CallsPanel
from console.placements import PlacementsPanel
from console.responses import PatientOutcomeForm, ReviewQueuePanel
from console.today import TodayPanel
from db.models import AuditLog, Telefonanruf, Therapeutenanfrage
from operations.bundles import create_anfrage
from operations.responses import record_response
from tests import factories as f
from tests.console.test_console_widgets import review_item, sent_bundle

NOW = f.NOW
TODAY = NOW.date()
LATER = NOW + dt.timedelta(hours=2)


def test_each_row_has_its_next_action_focused_on_that_record(clean_db):
    therapist = f.therapist(telefon="030 123")
    f.searches(3)
    anfrage, patients = sent_bundle(therapist)
    call = Telefonanruf.create(
        therapist=therapist,
        therapeutenanfrage=anfrage,
        geplantes_datum=TODAY,
        geplante_zeit="09:00",
        dauer_minuten=5,
    )
    other = Telefonanruf.create(
        therapist=therapist, geplantes_datum=TODAY, geplante_zeit="10:00", dauer_minuten=5
    )
    inbound = review_item(anfrage.id)
    panel = TodayPanel(today=TODAY, now=LATER, refresh_seconds=0)

    opened = panel.act("calls", other.id)
    assert isinstance(opened, CallsPanel) and opened.selected_call_id == other.id
    panel.buttons[("calls", call.id)].click()
    shown = panel.action_area.children[0]
    assert isinstance(shown, CallsPanel) and shown.selected_call_id == call.id
    assert len(shown.form.dropdowns) == 3

    panel.buttons[("reviews", ("email", inbound.id))].click()
    shown = panel.action_area.children[0]
    assert isinstance(shown, ReviewQueuePanel) and shown.selected_inbound_id == inbound.id

    later = [  # a second page of due calls: the one clicked is shown and selected
        Telefonanruf.create(
            therapist=therapist, geplantes_datum=TODAY, geplante_zeit="11:00", dauer_minuten=5
        )
        for _ in range(30)
    ]
    panel.refresh()
    panel.buttons[("calls", later[-1].id)].click()
    shown = panel.action_area.children[0]
    assert shown.selected_call_id == later[-1].id and shown.pager.page == 1

    waiting = f.search(days_waiting=90)
    panel.refresh()
    panel.buttons[("waiting", waiting.id)].click()
    shown = panel.action_area.children[0]
    assert isinstance(shown, BundlesPanel) and shown.plz_prefix.value == "10"
    assert therapist.id not in [v for _, v in shown.therapist_select.options]  # has a bundle
    panel.close_button.click()
    assert panel.action_area.children == () and panel.focus is None


def test_new_answers_and_unconfirmed_placements_are_listed_with_their_action(clean_db):
    therapist = f.therapist()
    f.searches(3)
    anfrage, patients = sent_bundle(therapist)
    record_response(
        anfrage.id,
        {p: "angenommen" if i == 0 else "abgelehnt_Kapazitaet" for i, p in enumerate(patients)},
        now=NOW,
    )
    panel = TodayPanel(today=TODAY, now=LATER, refresh_seconds=0)
    assert [a["anfrage_id"] for a in panel.summary["answers"]] == [anfrage.id]
    assert panel.counts()["placements"] == 1
    placement = panel.summary["placements"][0]
    assert placement["patient_id"] == patients[0]
    assert "Vermittelt, Erstgespräch nicht bestätigt: 1" in panel.text()
    panel.buttons[("answers", anfrage.id)].click()
    form = panel.action_area.children[0]
    assert isinstance(form, PatientOutcomeForm) and form.anfrage_id == anfrage.id
    assert all(d.disabled for d in form.dropdowns.values())
    panel.buttons[("placements", placement["platzsuche_id"])].click()
    shown = panel.action_area.children[0]
    assert isinstance(shown, PlacementsPanel)
    assert shown.selected_search_id == placement["platzsuche_id"]
    # two days later the answer is no longer new
    later = TodayPanel(today=TODAY, now=NOW + dt.timedelta(hours=49), refresh_seconds=0)
    assert later.summary["answers"] == []


def test_a_placement_on_the_second_page_is_opened_on_its_page(clean_db):
    from tests.console.test_console_placements import placed

    searches = [placed()[0] for _ in range(27)]
    panel = TodayPanel(today=TODAY, now=LATER, refresh_seconds=0)
    shown = panel.act("placements", searches[-1])
    assert isinstance(shown, PlacementsPanel) and shown.pager.page == 1
    assert shown.selected_search_id == searches[-1]
    assert panel.act("placements", 999_999).selected_search_id is None


def test_sending_from_today_asks_first_and_sends_once(clean_db):
    therapist = f.therapist()
    f.searches(3)
    anfrage_id = create_anfrage(therapist.id, now=NOW).anfrage_id
    panel = TodayPanel(today=TODAY, now=NOW, actor="erika", refresh_seconds=0)
    panel.buttons[("unsent", anfrage_id)].click()
    assert not AuditLog.select().where(AuditLog.action == "request_send").exists()
    assert f"Anfrage {anfrage_id} an" in panel.confirmation.question.value
    panel.confirmation.yes_button.click()
    panel.confirmation.yes_button.click()  # a double-click queues it once
    assert AuditLog.select().where(AuditLog.action == "request_send").count() == 1
    assert "zum Versand eingeplant" in panel.status.value


def test_the_self_refresh_reloads_the_lists_and_keeps_what_was_typed(clean_db):
    therapist = f.therapist()
    f.searches(3)
    anfrage, _ = sent_bundle(therapist)
    call = Telefonanruf.create(
        therapist=therapist,
        therapeutenanfrage=anfrage,
        geplantes_datum=TODAY,
        geplante_zeit="09:00",
        dauer_minuten=5,
    )
    panel = TodayPanel(today=TODAY, now=LATER, refresh_seconds=0)
    calls = panel.act("calls", call.id)
    calls.ergebnis.value = "Sekretariat sagt: Rückruf ab 14 Uhr"
    assert panel.counts()["unsent"] == 0
    create_anfrage(f.therapist(plz="10117").id, now=NOW)  # arrives meanwhile
    panel.tick()
    assert panel.counts()["unsent"] == 1
    assert panel.action_area.children[0] is calls  # the action area is untouched
    assert calls.ergebnis.value == "Sekretariat sagt: Rückruf ab 14 Uhr"
    assert Therapeutenanfrage.select().count() == 2


def test_the_self_refresh_runs_on_the_event_loop_every_interval(clean_db):
    """In a kernel the panel reloads itself; here a running asyncio loop stands in."""

    async def scenario():
        panel = TodayPanel(today=TODAY, now=NOW, refresh_seconds=1)
        assert panel._timer is not None and panel.counts()["waiting"] == 0
        f.search(days_waiting=5)
        await asyncio.sleep(1.5)
        waiting = panel.counts()["waiting"]
        panel.stop()
        return waiting

    assert asyncio.run(scenario()) == 1
    assert TodayPanel(today=TODAY, now=NOW)._timer is None  # no loop running: no timer
