"""The Vermittlungen panel: staff see open placements and record outcomes as ``team``;
a reader may look only; nothing in the console renders an email (no signing key there)."""

from __future__ import annotations

import datetime as dt

import pytest

from console.placements import PlacementsPanel
from db.models import AuditLog, Email, OutboxItem, Platzsuche
from operations import staff
from operations.bundles import create_anfrage
from operations.responses import record_response
from psymatch import settings
from tests import factories as f

NOW = f.NOW
PASSWORD = "ein-langes-passwort"


@pytest.fixture
def signed_in(clean_db, monkeypatch):
    def sign_in(username: str, role: str):
        staff.create(username, username.title(), role, PASSWORD, actor="test")
        monkeypatch.setenv("JUPYTERHUB_USER", username)
        return username

    return sign_in


@pytest.fixture
def no_signing_key():
    """As in a console kernel: signing (and so rendering a placement email) fails."""
    before = settings.get().SIGNING_KEY
    settings.override(SIGNING_KEY="")
    yield
    settings.override(SIGNING_KEY=before)


def placed():
    therapist = f.therapist(telefon="030 555")
    search = f.search(patient_obj=f.patient(status="auf_der_Suche"))
    created = create_anfrage(therapist.id, now=NOW)
    f.mark_sent(created.anfrage_id, NOW)
    record_response(created.anfrage_id, {search.patient_id: "angenommen"}, now=NOW)
    return search.id, therapist.id


def test_team_records_each_outcome_and_sees_the_list(signed_in, no_signing_key):
    signed_in("erika", "team")
    first, _ = placed()
    second, second_t = placed()
    panel = PlacementsPanel(now=NOW + dt.timedelta(days=2))
    assert [r["platzsuche_id"] for r in panel.rows] == [first, second]
    assert "Therapeut" in panel.listing.value
    panel.search_select.value = first
    panel.outcome_buttons["stattgefunden"].click()
    assert "✓" in panel.status.value, panel.status.value
    assert Platzsuche.get_by_id(first).status == "erfolgreich"
    assert [r["platzsuche_id"] for r in panel.rows] == [second]
    panel.search_select.value = second
    panel.outcome_buttons["kein_termin"].click()
    search = Platzsuche.get_by_id(second)
    assert search.vermittelter_therapeut_id is None
    assert search.ausgeschlossene_therapeuten[0]["id"] == second_t
    actors = {
        a.actor for a in AuditLog.select().where(AuditLog.action == "record_placement_outcome")
    }
    assert actors == {"erika"}
    assert panel.rows == []
    assert Email.select().count() == 0  # the console rendered nothing


def test_team_queues_a_meeting_confirmation_without_rendering(signed_in, no_signing_key):
    signed_in("erika", "team")
    search_id, therapist_id = placed()
    panel = PlacementsPanel(now=NOW)
    panel.template.value = "meeting_confirmation_email"
    panel.send_button.click()
    assert "MEETING_DETAILS_REQUIRED" in panel.status.value
    panel.meeting_date.value = dt.date(2026, 12, 10)
    panel.meeting_time.value = "10:30"
    panel.send_button.click()
    assert "✓" in panel.status.value, panel.status.value
    item = OutboxItem.get(
        OutboxItem.dedupe_key == f"vermittlung_staff:{search_id}.{therapist_id}.termin"
    )
    assert item.payload["meeting"] == {"date": "2026-12-10", "time": "10:30"}
    assert Email.select().count() == 0


def test_a_reader_may_look_but_not_record(signed_in):
    signed_in("lesa", "lesen")
    search_id, _ = placed()
    before = AuditLog.select().count()
    panel = PlacementsPanel(now=NOW)
    assert len(panel.rows) == 1
    panel.outcome_buttons["passt_nicht"].click()
    assert "FORBIDDEN" in panel.status.value
    assert Platzsuche.get_by_id(search_id).vermittelter_therapeut_id is not None
    assert AuditLog.select().count() == before
