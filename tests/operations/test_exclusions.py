"""Exclusions of a search: listed with reason, date and who; removed only with a reason."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import AuditLog, Platzsuche
from operations import audit
from operations.bundles import create_anfrage
from operations.errors import OperationError
from operations.responses import record_response
from operations.searches import exclude_therapist, list_exclusions, remove_exclusion
from tests import factories as f

NOW = f.NOW
LATER = NOW + dt.timedelta(hours=1)


def test_each_way_of_excluding_is_listed_with_reason_date_and_who(clean_db):
    therapist, other, legacy = f.therapist(), f.therapist(plz="10117"), f.therapist(plz="10119")
    search = f.search()
    # an old entry without "by", with its audit row
    Platzsuche.update(
        ausgeschlossene_therapeuten=[
            4711,
            {"id": legacy.id, "excluded_at": "2026-11-01T09:00:00", "reason": "Umzug"},
        ]
    ).where(Platzsuche.id == search.id).execute()
    audit.write(
        "anna",
        "exclude_therapist",
        "platzsuche",
        search.id,
        {"therapist_id": legacy.id, "added": True},
        "Umzug",
    )
    exclude_therapist(search.id, therapist.id, "Patientin möchte nicht", actor="erika", now=NOW)
    # "not suitable" in an answer excludes automatically
    created = create_anfrage(other.id, now=NOW)
    f.mark_sent(created.anfrage_id, NOW)
    record_response(
        created.anfrage_id,
        {p.patient_id: "abgelehnt_nicht_geeignet" for p in created.selection.patients},
        actor="bernd",
        now=LATER,
    )
    assert list_exclusions(search.id) == [
        {"therapist_id": 4711, "reason": None, "excluded_at": None, "by": None},
        {
            "therapist_id": legacy.id,
            "reason": "Umzug",
            "excluded_at": "2026-11-01T09:00:00",
            "by": "anna",
        },
        {
            "therapist_id": therapist.id,
            "reason": "Patientin möchte nicht",
            "excluded_at": NOW.isoformat(timespec="seconds"),
            "by": "erika",
        },
        {
            "therapist_id": other.id,
            "reason": f"abgelehnt_nicht_geeignet (A{created.anfrage_id})",
            "excluded_at": LATER.isoformat(timespec="seconds"),
            "by": "bernd",
        },
    ]
    with pytest.raises(OperationError) as error:
        list_exclusions(9999)
    assert error.value.code == "PLATZSUCHE_NOT_FOUND"


def test_removal_needs_a_reason_and_an_exclusion_and_writes_nothing_otherwise(clean_db):
    therapist = f.therapist()
    search = f.search()
    exclude_therapist(search.id, therapist.id, "Konflikt", actor="erika", now=NOW)
    before = (
        Platzsuche.get_by_id(search.id).ausgeschlossene_therapeuten,
        AuditLog.select().count(),
    )
    for therapist_id, reason, code in (
        (therapist.id, "  ", "REASON_REQUIRED"),
        (therapist.id + 1, "Irrtum", "NOT_EXCLUDED"),
    ):
        with pytest.raises(OperationError) as error:
            remove_exclusion(search.id, therapist_id, reason, actor="erika")
        assert error.value.code == code
    with pytest.raises(OperationError) as error:
        remove_exclusion(9999, therapist.id, "Irrtum", actor="erika")
    assert error.value.code == "PLATZSUCHE_NOT_FOUND"
    after = (
        Platzsuche.get_by_id(search.id).ausgeschlossene_therapeuten,
        AuditLog.select().count(),
    )
    assert after == before
    assert remove_exclusion(search.id, therapist.id, "Irrtum", actor="erika", now=LATER) is True
    assert list_exclusions(search.id) == []
    row = AuditLog.select().where(AuditLog.action == "remove_exclusion").get()
    assert (row.actor, row.reason, row.details["removed"]) == ("erika", "Irrtum", 1)
    with pytest.raises(OperationError) as error:  # a repeated click
        remove_exclusion(search.id, therapist.id, "Irrtum", actor="erika")
    assert error.value.code == "NOT_EXCLUDED"
