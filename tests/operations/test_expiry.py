"""Unanswered inquiries end (docs/domain.md §8.3): the expiry run, at fixed times."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import AuditLog, Telefonanruf, TherapeutAnfragePatient, Therapeutenanfrage
from operations.bundles import create_anfrage
from operations.expiry import due, expire_one, run_expiry
from operations.responses import record_response
from psymatch import settings
from tests import factories as f
from workers import expiry_actors

SENT = f.NOW  # Monday 2026-11-30 08:00 UTC
DAY_21 = SENT + dt.timedelta(days=21)


@pytest.fixture
def sent(clean_db):
    """One sent, pending Anfrage of three patients."""
    therapist = f.therapist()
    f.searches(3)
    created = create_anfrage(therapist.id, now=SENT - dt.timedelta(hours=1))
    f.mark_sent(created.anfrage_id, SENT)
    return Therapeutenanfrage.get_by_id(created.anfrage_id)


def call(anfrage, status: str, day: dt.date) -> Telefonanruf:
    return Telefonanruf.create(
        therapist=anfrage.therapist_id,
        therapeutenanfrage=anfrage.id,
        geplantes_datum=day,
        geplante_zeit="12:00",
        dauer_minuten=5,
        status=status,
    )


def closed(anfrage_id: int) -> bool:
    return Therapeutenanfrage.get_by_id(anfrage_id).antworttyp == "keine_Antwort"


def test_the_default_is_21_days():
    assert settings.Settings().ANFRAGE_EXPIRY_DAYS == 21
    with pytest.raises(settings.SettingsError):
        settings.Settings(ANFRAGE_EXPIRY_DAYS=0)


def test_not_before_21_full_days_then_closed_once_and_audited_as_automatic(sent):
    assert run_expiry(DAY_21 - dt.timedelta(seconds=1))["closed"] == []
    assert not closed(sent.id)
    assert run_expiry(DAY_21) == {"closed": [sent.id], "expiry_days": 21}
    anfrage = Therapeutenanfrage.get_by_id(sent.id)
    assert anfrage.antworttyp == "keine_Antwort" and anfrage.antwort_datum == DAY_21
    assert anfrage.keine_antwort_anzahl == 3
    assert "automatisch nach 21 Tagen" in anfrage.notizen
    assert {r.status for r in TherapeutAnfragePatient.select()} == {"keine_antwort"}
    [row] = AuditLog.select().where(AuditLog.action == "close_without_response")
    assert row.actor == "ablauf" and row.details["automatic"] is True
    # idempotent: a second run (a repeated message) changes nothing
    assert run_expiry(DAY_21 + dt.timedelta(hours=1))["closed"] == []
    assert expire_one(sent.id, now=DAY_21 + dt.timedelta(hours=2)) is None
    assert AuditLog.select().where(AuditLog.action == "close_without_response").count() == 1
    assert Therapeutenanfrage.get_by_id(sent.id).antwort_datum == DAY_21


def test_the_setting_changes_the_age(sent):
    before = settings.get().ANFRAGE_EXPIRY_DAYS
    settings.override(ANFRAGE_EXPIRY_DAYS=10)
    try:
        assert run_expiry(SENT + dt.timedelta(days=10))["closed"] == [sent.id]
    finally:  # not settings.reset(): that would also drop the test database's settings
        settings.override(ANFRAGE_EXPIRY_DAYS=before)


def test_unsent_and_answered_anfragen_never_expire(clean_db):
    therapist = f.therapist()
    f.searches(2)
    unsent = create_anfrage(therapist.id, now=SENT)
    assert run_expiry(DAY_21 + dt.timedelta(days=30))["closed"] == []
    assert Therapeutenanfrage.get_by_id(unsent.anfrage_id).antwort_datum is None
    f.mark_sent(unsent.anfrage_id, SENT)
    patients = [p.patient_id for p in unsent.selection.patients]
    record_response(unsent.anfrage_id, dict.fromkeys(patients, "abgelehnt_Kapazitaet"), now=SENT)
    assert run_expiry(DAY_21)["closed"] == []
    assert Therapeutenanfrage.get_by_id(unsent.anfrage_id).antworttyp == "vollstaendige_Ablehnung"


def test_a_reached_call_keeps_it_open_for_staff(sent):
    call(sent, "abgeschlossen", dt.date(2026, 12, 9))
    assert due(DAY_21) == [] and run_expiry(DAY_21)["closed"] == []
    assert expire_one(sent.id, now=DAY_21) is None
    assert not closed(sent.id)
    assert not AuditLog.select().where(AuditLog.action == "close_without_response").exists()


def test_a_call_still_to_come_keeps_it_open_until_it_is_overdue(sent):
    planned = call(sent, "geplant", DAY_21.date())  # today: not attempted yet
    assert run_expiry(DAY_21)["closed"] == []
    later = DAY_21 + dt.timedelta(days=1)  # the call was never made: overdue, not reached
    assert run_expiry(later)["closed"] == [sent.id]
    assert Telefonanruf.get_by_id(planned.id).status == "abgebrochen"


@pytest.mark.parametrize("status", ["fehlgeschlagen", "abgebrochen"])
def test_a_call_that_did_not_reach_the_therapist_lets_it_expire(sent, status):
    failed = call(sent, status, dt.date(2026, 12, 9))
    assert run_expiry(DAY_21)["closed"] == [sent.id]
    assert Telefonanruf.get_by_id(failed.id).status == status


def test_oldest_first_and_each_on_its_own(clean_db):
    first, second = f.therapist(), f.therapist(plz="10117")
    f.searches(4)
    a = create_anfrage(first.id, now=SENT).anfrage_id
    b = create_anfrage(second.id, now=SENT).anfrage_id
    f.mark_sent(a, SENT + dt.timedelta(days=1))
    f.mark_sent(b, SENT)
    assert due(DAY_21 + dt.timedelta(days=1)) == [b, a]
    assert run_expiry(DAY_21)["closed"] == [b]
    assert run_expiry(DAY_21 + dt.timedelta(days=1))["closed"] == [a]


def test_the_clock_runs_it_daily_after_the_follow_up(clean_db):
    spec = expiry_actors.expire_anfragen.options["periodic"]
    assert str(spec) == "30 9 * * *"  # ANFRAGE_EXPIRY_TIME, local time
    therapist = f.therapist()
    f.searches(2)
    anfrage_id = create_anfrage(therapist.id, now=SENT).anfrage_id
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=22)
    f.mark_sent(anfrage_id, old)
    assert expiry_actors.expire_anfragen.fn() == {"closed": 1}
    assert expiry_actors.expire_anfragen.fn() == {"closed": 0}  # a repeated message
    [row] = AuditLog.select().where(AuditLog.action == "close_without_response")
    assert row.actor == "ablauf" and closed(anfrage_id)
