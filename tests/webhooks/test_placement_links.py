"""``/v/<token>``: a placed patient's one-click answers (docs/domain.md §11.3) through the
Flask test client: GET only confirms, POST records once, bad tokens write nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import AuditLog, OutboxItem, Patient, Platzsuche, TherapeutAnfragePatient
from operations.bundles import create_anfrage
from operations.responses import record_response
from operations.searches import update_platzsuche
from psymatch.domain import tokens
from tests import factories as f
from webhooks.app import create_app

NOW = f.NOW


@pytest.fixture
def client(clean_db):
    return create_app({"TESTING": True}).test_client()


def placed():
    therapist = f.therapist(telefon="030 555")
    search = f.search(patient_obj=f.patient(status="auf_der_Suche"))
    created = create_anfrage(therapist.id, now=NOW)
    f.mark_sent(created.anfrage_id, NOW)
    record_response(created.anfrage_id, {search.patient_id: "angenommen"}, now=NOW)
    return search.id, therapist.id


def link(search_id, therapist_id, outcome, **kwargs) -> str:
    return "/v/" + tokens.make_placement_token(search_id, therapist_id, outcome, **kwargs)


def state():
    return (
        [tuple(r.__data__.items()) for r in Platzsuche.select().order_by(Platzsuche.id)],
        [
            tuple(r.__data__.items())
            for r in TherapeutAnfragePatient.select().order_by(TherapeutAnfragePatient.id)
        ],
        [tuple(r.__data__.items()) for r in Patient.select().order_by(Patient.id)],
        AuditLog.select().count(),
        OutboxItem.select().count(),
    )


def test_stattgefunden_link_confirms_then_records_once(client):
    search_id, therapist_id = placed()
    url = link(search_id, therapist_id, "stattgefunden")
    before = state()
    page = client.get(url)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Erstgespräch hat stattgefunden, ich beginne" in body and "Bestätigen" in body
    assert state() == before  # GET records nothing (mail scanners follow links)
    done = client.post(url)
    assert done.status_code == 200
    assert "Vielen Dank" in done.get_data(as_text=True)
    search = Platzsuche.get_by_id(search_id)
    assert search.status == "erfolgreich" and search.vermittelter_therapeut_id == therapist_id
    assert Patient.get_by_id(search.patient_id).status == "in_Therapie"
    audit = AuditLog.get(AuditLog.action == "record_placement_outcome")
    assert (audit.actor, audit.details["source"]) == ("patient", "link")
    after = state()
    again = client.post(url)
    assert again.status_code == 200 and "Vielen Dank" not in again.get_data(as_text=True)
    other = client.post(link(search_id, therapist_id, "passt_nicht"))
    assert other.status_code == 200
    assert "bereits eine Rückmeldung vor" in other.get_data(as_text=True)
    shown = client.get(link(search_id, therapist_id, "kein_termin"))
    assert "Bestätigen" not in shown.get_data(as_text=True)
    assert state() == after  # a second click changes nothing


@pytest.mark.parametrize("outcome", ["passt_nicht", "kein_termin"])
def test_negative_links_exclude_the_therapist_and_reopen_the_search(client, outcome):
    search_id, therapist_id = placed()
    assert client.post(link(search_id, therapist_id, outcome)).status_code == 200
    search = Platzsuche.get_by_id(search_id)
    assert search.status == "aktiv" and search.vermittelter_therapeut_id is None
    assert search.ausgeschlossene_therapeuten[0]["reason"].startswith(outcome)
    after = state()
    assert client.post(link(search_id, therapist_id, outcome)).status_code == 200
    assert client.post(link(search_id, therapist_id, "stattgefunden")).status_code == 200
    assert state() == after


def test_forged_expired_and_foreign_tokens_are_refused_and_write_nothing(client):
    search_id, therapist_id = placed()
    good = link(search_id, therapist_id, "stattgefunden")
    forged = good[:-1] + ("A" if good[-1] != "A" else "B")
    swapped = link(search_id, therapist_id, "stattgefunden").replace(".s.", ".p.")
    expired = link(
        search_id,
        therapist_id,
        "stattgefunden",
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=40),
    )
    therapist_link = "/v/" + tokens.make_link_token(1, 2, "angenommen")
    before = state()
    for url, status in (
        (forged, 401),
        (swapped, 401),
        ("/v/nonsense", 401),
        (therapist_link, 401),
        (expired, 406),
    ):
        assert client.get(url).status_code == status, url
        assert client.post(url).status_code == status, url
    assert state() == before


def test_a_link_of_an_ended_placement_records_nothing(client):
    search_id, therapist_id = placed()
    other = f.therapist()
    update_platzsuche(search_id, vermittelter_therapeut_id=other.id)  # staff reassigned
    before = state()
    url = link(search_id, therapist_id, "stattgefunden")
    assert client.get(url).status_code == 409
    assert client.post(url).status_code == 409
    assert state() == before
    assert client.post(link(999999, therapist_id, "stattgefunden")).status_code == 404


def test_placement_tokens_are_masked_in_request_logs():
    from psymatch.logs import mask_link_tokens

    token = tokens.make_placement_token(7, 12, "passt_nicht")
    line = f'"POST /v/{token} HTTP/1.1" 200'
    masked = mask_link_tokens(line)
    assert token not in masked and f"/v/{token[:6]}…" in masked
