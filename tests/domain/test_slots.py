"""Phone slot planning (docs/domain.md §8.2) and booking calls without double booking."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from db import database
from db.models import Patient, Telefonanruf, Therapeutenanfrage, Therapist
from operations import call_schedule as schedule
from psymatch.domain import slots

MON = dt.date(2025, 6, 16)  # Thursday 19 June 2025 is Fronleichnam (BY, not BE)
TUE, THU, FRI = MON + dt.timedelta(1), MON + dt.timedelta(3), MON + dt.timedelta(4)
THERAPIST = slots.SlotParams(call_minutes=5, step_minutes=5, default_time="12:00")
PATIENT = slots.SlotParams(call_minutes=10, step_minutes=5, default_time="10:00")


def at(hhmm: str) -> int:
    return slots.parse_time(hhmm)


@pytest.mark.parametrize(
    "windows",
    [
        {"dienstag": ["8:00-9:00"]},
        {"Di": ["08:00-09:00"]},
        {"DI": "8:00-9:00"},
        {"tuesday": ["8:00-9:00"]},
    ],
)
def test_first_slot_of_the_first_window_day_in_any_key_form(windows):
    assert slots.plan_call(windows, MON, [], None, THERAPIST) == (TUE, "08:00")


def test_never_the_same_day():
    assert slots.plan_call({"Di": ["8:00-9:00"]}, TUE, [], None, THERAPIST) == (
        TUE + dt.timedelta(7),
        "08:00",
    )


def test_booked_calls_push_the_slot_in_five_minute_steps():
    windows = {"Di": ["8:00-9:00"]}
    assert slots.plan_call(windows, MON, [(TUE, at("08:00"), 5)], None, THERAPIST)[1] == "08:05"
    assert slots.plan_call(windows, MON, [(TUE, at("08:00"), 10)], None, THERAPIST)[1] == "08:10"
    # a call at 08:03 overlaps both 08:00 and 08:05
    assert slots.plan_call(windows, MON, [(TUE, at("08:03"), 5)], None, THERAPIST)[1] == "08:10"
    # calls on other days do not matter
    assert slots.plan_call(windows, MON, [(THU, at("08:00"), 5)], None, THERAPIST)[1] == "08:00"


def test_windows_are_scanned_in_time_order_and_must_fit_the_call():
    windows = {"Di": ["14:00-15:00", "8:00-8:04"], "Mi": ["9:00-9:10"]}
    # 08:00-08:04 is too short for 5 minutes; 14:00 is the first fit on Tuesday
    assert slots.plan_call(windows, MON, [], None, THERAPIST) == (TUE, "14:00")
    assert slots.plan_call({"Mi": ["9:00-9:10"]}, MON, [], None, PATIENT) == (
        MON + dt.timedelta(2),
        "09:00",
    )


def test_fully_booked_day_is_skipped():
    windows = {"Di": ["8:00-8:15"], "Do": ["10:00-11:00"]}
    full = [(TUE, at("08:00"), 5), (TUE, at("08:05"), 5), (TUE, at("08:10"), 5)]
    assert slots.plan_call(windows, MON, full, "BE", THERAPIST) == (THU, "10:00")


def test_no_usable_window_falls_back_to_the_default_time():
    assert slots.plan_call({}, MON, [], None, THERAPIST) == (TUE, "12:00")
    assert slots.plan_call(None, MON, [], None, PATIENT) == (TUE, "10:00")
    assert slots.plan_call(
        {"Sa": ["9:00-12:00"], "So": ["9:00-10:00"]}, FRI, [], None, THERAPIST
    ) == (
        FRI + dt.timedelta(3),
        "12:00",
    )
    assert slots.plan_call({"Mo": ["bad"], "Xy": ["9:00-10:00"]}, MON, [], None, THERAPIST) == (
        TUE,
        "12:00",
    )
    # the only window day is fully booked and the next one is beyond the 7 days
    full = [(TUE, at("08:00"), 5)]
    assert slots.plan_call({"Di": ["8:00-8:05"]}, MON, full, None, THERAPIST) == (TUE, "12:00")


def test_default_time_is_not_double_booked_either():
    booked = [(TUE, at("12:00"), 5)]
    assert slots.plan_call({}, MON, booked, None, THERAPIST) == (TUE, "12:05")


def test_weekends_are_skipped():
    assert slots.plan_call({"Mo": ["9:00-10:00"]}, FRI, [], None, THERAPIST) == (
        FRI + dt.timedelta(3),
        "09:00",
    )
    assert [slots.is_callable_day(MON + dt.timedelta(d)) for d in range(7)] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    "code,expected",
    [
        ("BY", FRI),  # Thursday is Fronleichnam in Bavaria
        ("by", FRI),
        ("BE", THU),
        (None, THU),  # nationwide only
        ("XX", THU),
        ("Augsburg", THU),  # not a Bundesland code
    ],
)
def test_regional_holidays_follow_the_bundesland(code, expected):
    windows = {"Do": ["9:00-10:00"], "Fr": ["9:00-10:00"]}
    assert slots.plan_call(windows, MON, [], code, THERAPIST) == (expected, "09:00")


def test_a_holiday_on_the_only_window_day_means_the_default_time():
    # the 7 days hold each weekday once: the next Thursday is out of range
    assert slots.plan_call({"Do": ["9:00-10:00"]}, MON, [], "BY", THERAPIST) == (TUE, "12:00")


def test_national_holiday_third_of_october():
    unity_day = dt.date(2025, 10, 3)  # a Friday
    assert not slots.is_callable_day(unity_day, None)
    assert not slots.is_callable_day(unity_day, "BE")
    tuesday = dt.date(2025, 9, 30)
    windows = {"Fr": ["9:00-10:00"], "Mo": ["11:00-12:00"]}
    assert slots.plan_call(windows, tuesday, [], None, THERAPIST) == (dt.date(2025, 10, 6), "11:00")
    assert slots.plan_call({}, dt.date(2025, 10, 2), [], "BE", THERAPIST) == (
        dt.date(2025, 10, 6),
        "12:00",
    )
    assert slots.plan_call(windows, dt.date(2025, 10, 7), [], None, THERAPIST) == (
        dt.date(2025, 10, 10),
        "09:00",
    )


def test_params_come_from_settings():
    therapist, patient = slots.SlotParams.for_therapist(), slots.SlotParams.for_patient()
    assert (therapist.call_minutes, therapist.default_time) == (5, "12:00")
    assert (patient.call_minutes, patient.default_time) == (10, "10:00")


# --- booking in the database ---------------------------------------------------------


def make_therapist(plz="10115", windows=None, external_id="T1"):
    return Therapist.create(
        external_id=external_id,
        anrede="Frau",
        geschlecht="weiblich",
        vorname="Ina",
        nachname="Ruf",
        plz=plz,
        telefonische_erreichbarkeit=windows if windows is not None else {"Di": ["8:00-9:00"]},
    )


def test_schedule_call_books_the_slot_with_the_anfrage(clean_db):
    therapist = make_therapist()
    anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1)
    call = schedule.schedule_call(therapist.id, MON, anfrage.id)
    stored = Telefonanruf.get_by_id(call.id)
    assert (stored.geplantes_datum, stored.geplante_zeit) == (TUE, "08:00")
    assert (stored.dauer_minuten, stored.status) == (5, "geplant")
    assert stored.therapeutenanfrage_id == anfrage.id and stored.patient_id is None
    assert f"A{anfrage.id}" in stored.notizen
    second = schedule.schedule_call(therapist.id, MON)
    assert second.geplante_zeit == "08:05"


def test_bundesland_comes_from_the_plz(clean_db):
    windows = {"Do": ["9:00-10:00"], "Fr": ["9:00-10:00"]}
    munich = make_therapist(plz="80331", windows=windows, external_id="BY")
    berlin = make_therapist(plz="10115", windows=windows, external_id="BE")
    assert schedule.schedule_call(munich.id, MON).geplantes_datum == FRI
    assert schedule.schedule_call(berlin.id, MON).geplantes_datum == THU


def test_only_cancelled_calls_free_their_slot_and_failed_calls_can_be_rescheduled(clean_db):
    therapist = make_therapist()
    first = schedule.schedule_call(therapist.id, MON)
    Telefonanruf.update(status="fehlgeschlagen").where(Telefonanruf.id == first.id).execute()
    # the failed call still occupies 08:00 on Tuesday
    second = schedule.schedule_call(therapist.id, MON)
    assert (second.geplantes_datum, second.geplante_zeit) == (TUE, "08:05")
    Telefonanruf.update(status="abgebrochen").where(Telefonanruf.id == second.id).execute()
    assert schedule.schedule_call(therapist.id, MON).geplante_zeit == "08:05"
    # staff reschedule from the failure date: the next Tuesday, never the same day
    again = schedule.schedule_call(therapist.id, TUE)
    assert (again.geplantes_datum, again.geplante_zeit) == (TUE + dt.timedelta(7), "08:00")


def test_patient_calls_take_ten_minutes_at_ten(clean_db):
    patient = Patient.create(
        external_id="P1",
        anrede="Herr",
        geschlecht="männlich",
        vorname="P",
        nachname="Q",
        plz="80331",
    )
    first = schedule.schedule_call(None, dt.date(2025, 6, 18), patient_id=patient.id)
    assert (first.geplantes_datum, first.geplante_zeit, first.dauer_minuten) == (
        FRI,  # Thursday is Fronleichnam in Bavaria
        "10:00",
        10,
    )
    assert first.therapist_id is None and first.patient_id == patient.id
    second = schedule.schedule_call(None, dt.date(2025, 6, 18), patient_id=patient.id)
    assert second.geplante_zeit == "10:10"


def test_unknown_callee_and_bad_arguments(clean_db):
    with pytest.raises(schedule.CallTargetNotFound) as caught:
        schedule.schedule_call(999, MON)
    assert caught.value.code == "THERAPIST_NOT_FOUND"
    with pytest.raises(schedule.CallTargetNotFound, match="PATIENT_NOT_FOUND"):
        schedule.schedule_call(None, MON, patient_id=999)
    with pytest.raises(ValueError):
        schedule.schedule_call(None, MON)
    assert Telefonanruf.select().count() == 0


def test_concurrent_bookings_never_share_a_slot(clean_db, migrated):
    therapist = make_therapist()
    results, errors = [], []

    def book():
        try:
            database.db.connect(reuse_if_open=True)
            call = schedule.schedule_call(therapist.id, MON)
            results.append((call.geplantes_datum, call.geplante_zeit))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            database.db.close()

    threads = [threading.Thread(target=book) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [(TUE, f"08:{m:02d}") for m in range(0, 30, 5)]
