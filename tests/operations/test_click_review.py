"""Link clicks that end in ``pruefung`` are in the review queue and staff decide or dismiss them."""

from __future__ import annotations

import datetime as dt

import pytest

from console import queries
from db.models import (
    AuditLog,
    LinkKlick,
    Patient,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
)
from operations import replies as ops
from operations.bundles import create_anfrage
from operations.errors import OperationError
from operations.responses import record_response
from tests import factories as f

LATER = f.NOW + dt.timedelta(hours=2)


@pytest.fixture
def bundle(clean_db):
    therapist = f.therapist()
    f.searches(3)
    created = create_anfrage(therapist.id, now=f.NOW)
    f.mark_sent(created.anfrage_id, f.NOW)
    return created.anfrage_id, [p.patient_id for p in created.selection.patients]


def click(anfrage_id: int, patient_id: int, answer: str) -> LinkKlick:
    stored, created = ops.store_click(anfrage_id, patient_id, answer, "203.0.113.7", now=f.NOW)
    assert created
    ops.process_click(stored.id, now=f.NOW)
    return LinkKlick.get_by_id(stored.id)


def answered_elsewhere(anfrage_id: int, patients: list[int]) -> LinkKlick:
    """The Anfrage is answered by phone; a click with another answer comes afterwards."""
    record_response(anfrage_id, dict.fromkeys(patients, "abgelehnt_Kapazitaet"), now=f.NOW)
    return click(anfrage_id, patients[0], "angenommen")


def outcomes(anfrage_id: int) -> dict[int, str | None]:
    rows = TherapeutAnfragePatient.select().where(
        TherapeutAnfragePatient.therapeutenanfrage == anfrage_id
    )
    return {r.patient_id: r.antwortergebnis for r in rows}


def state():
    """Everything a refused decision must leave as it was."""
    return (
        [tuple(c.__data__.items()) for c in LinkKlick.select().order_by(LinkKlick.id)],
        [tuple(a.__data__.items()) for a in Therapeutenanfrage.select()],
        sorted(outcomes_all()),
        AuditLog.select().count(),
    )


def outcomes_all():
    return [
        (r.id, r.status, r.antwortergebnis)
        for r in TherapeutAnfragePatient.select().order_by(TherapeutAnfragePatient.id)
    ]


def test_click_in_review_is_listed_with_what_staff_need(bundle):
    anfrage_id, patients = bundle
    late = answered_elsewhere(anfrage_id, patients)
    assert late.status == "pruefung" and "ALREADY_ANSWERED" in late.review_reason
    (item,) = queries.reviews()
    patient = Patient.get_by_id(patients[0])
    assert item["kind"] == "klick" and item["klick_id"] == late.id
    assert "inbound_id" not in item
    assert item["received_at"] == late.clicked_at
    assert (item["anfrage_id"], item["patient_id"], item["answer"]) == (
        anfrage_id,
        patients[0],
        "angenommen",
    )
    assert item["patient"] == queries.person(patient) and patient.nachname in item["patient"]
    assert item["reason"] == late.review_reason
    assert queries.review_label(item) == f"Klick {late.id}"
    assert "angenommen" in queries.review_origin(item)
    assert queries.today_summary(f.NOW.date())["reviews"] == [item]


def test_deciding_a_click_records_the_answer(bundle):
    anfrage_id, patients = bundle
    stranger = f.search().patient_id  # a click for a patient outside the bundle
    odd = click(anfrage_id, stranger, "angenommen")
    waiting = click(anfrage_id, patients[0], "angenommen")
    assert (odd.status, odd.review_reason) == ("pruefung", "Patient nicht in dieser Anfrage")
    assert waiting.status == "neu"
    assert [i["klick_id"] for i in queries.reviews()] == [odd.id]

    decided = {patients[0]: "angenommen", patients[1]: "abgelehnt_sonstiges"}
    decided[patients[2]] = "abgelehnt_Kapazitaet"
    result = ops.decide_click_review(odd.id, decided, "staff:anna", now=LATER)
    assert result.antworttyp == "teilweise_Annahme"
    assert outcomes(anfrage_id) == decided
    row = LinkKlick.get_by_id(odd.id)
    assert (row.status, row.processed_at) == ("verarbeitet", LATER)
    assert row.result["response"]["antworttyp"] == "teilweise_Annahme"
    assert row.result["decided_by"] == "staff:anna"
    assert LinkKlick.get_by_id(waiting.id).status == "ignoriert"  # moot now
    audit = AuditLog.get(AuditLog.action == "decide_link_klick")
    assert (audit.actor, audit.entity, audit.entity_id) == ("staff:anna", "link_klick", str(odd.id))
    assert audit.details["anfrage_id"] == anfrage_id
    assert audit.details["retired_klicks"] == [waiting.id]
    assert (
        AuditLog.select()
        .where((AuditLog.action == "record_response") & (AuditLog.actor == "staff:anna"))
        .count()
        == 1
    )
    assert queries.reviews() == []

    before = state()
    with pytest.raises(OperationError) as error:
        ops.decide_click_review(odd.id, decided, "staff:anna", now=LATER)
    assert error.value.code == "ALREADY_PROCESSED" and "verarbeitet" in error.value.message
    with pytest.raises(OperationError) as error:
        ops.dismiss_click_review(odd.id, "staff:anna", "doppelt", now=LATER)
    assert error.value.code == "ALREADY_PROCESSED"
    assert state() == before


def test_a_refused_group_of_clicks_is_decided_once(clean_db):
    therapist = f.therapist()
    f.searches(3)
    created = create_anfrage(therapist.id, now=f.NOW)
    anfrage_id = created.anfrage_id
    patients = [p.patient_id for p in created.selection.patients]
    clicks = [click(anfrage_id, p, "abgelehnt_Kapazitaet") for p in patients]
    clicks = [LinkKlick.get_by_id(c.id) for c in clicks]
    assert {c.status for c in clicks} == {"pruefung"}  # record_response: ANFRAGE_NOT_SENT
    assert all("ANFRAGE_NOT_SENT" in c.review_reason for c in clicks)
    assert sorted(i["klick_id"] for i in queries.reviews()) == sorted(c.id for c in clicks)

    before = state()
    with pytest.raises(OperationError) as error:  # still not sent: refused, nothing changed
        ops.decide_click_review(
            clicks[0].id, dict.fromkeys(patients, "abgelehnt_Kapazitaet"), "staff:anna"
        )
    assert error.value.code == "ANFRAGE_NOT_SENT"
    assert state() == before

    f.mark_sent(anfrage_id, f.NOW)
    ops.decide_click_review(
        clicks[0].id, dict.fromkeys(patients, "abgelehnt_Kapazitaet"), "staff:anna", now=LATER
    )
    rows = [LinkKlick.get_by_id(c.id) for c in clicks]
    assert [r.status for r in rows] == ["verarbeitet", "ignoriert", "ignoriert"]
    assert f"Klick {clicks[0].id}" in rows[1].review_reason
    assert queries.reviews() == []


def test_dismissing_a_click(bundle):
    anfrage_id, patients = bundle
    late = answered_elsewhere(anfrage_id, patients)
    before = state()
    with pytest.raises(OperationError) as error:  # answered already: staff can only dismiss
        ops.decide_click_review(late.id, {patients[0]: "angenommen"}, "staff:anna")
    assert error.value.code == "ALREADY_ANSWERED"
    with pytest.raises(OperationError) as error:
        ops.dismiss_click_review(late.id, "staff:anna", "  ")
    assert error.value.code == "REASON_REQUIRED"
    assert state() == before

    ops.dismiss_click_review(late.id, "staff:anna", "telefonisch geklärt", now=LATER)
    row = LinkKlick.get_by_id(late.id)
    assert (row.status, row.review_reason, row.processed_at) == (
        "ignoriert",
        "telefonisch geklärt",
        LATER,
    )
    audit = AuditLog.get(AuditLog.action == "dismiss_link_klick")
    assert (audit.entity, audit.entity_id, audit.reason) == (
        "link_klick",
        str(late.id),
        "telefonisch geklärt",
    )
    assert queries.reviews() == []
    before = state()
    for again in (
        lambda: ops.dismiss_click_review(late.id, "staff:anna", "nochmal"),
        lambda: ops.decide_click_review(late.id, dict.fromkeys(patients, "angenommen"), "x"),
    ):
        with pytest.raises(OperationError) as error:
            again()
        assert error.value.code == "ALREADY_PROCESSED" and "ignoriert" in error.value.message
    assert state() == before


def test_waiting_or_unknown_clicks_are_not_decided(bundle):
    anfrage_id, patients = bundle
    waiting = click(anfrage_id, patients[0], "angenommen")
    with pytest.raises(OperationError) as error:
        ops.decide_click_review(waiting.id, dict.fromkeys(patients, "angenommen"), "staff:anna")
    assert error.value.code == "NOT_IN_REVIEW"
    assert LinkKlick.get_by_id(waiting.id).status == "neu"
    with pytest.raises(OperationError) as error:
        ops.dismiss_click_review(999999, "staff:anna", "weg")
    assert error.value.code == "NOT_FOUND"
