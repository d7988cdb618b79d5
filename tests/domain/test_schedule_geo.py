from __future__ import annotations

import pytest

from psymatch.domain import geo
from psymatch.domain.schedule import ScheduleError, parse_schedule, weekly_hours


def test_schedule_aliases_normalise_to_german_keys_in_week_order():
    parsed = parse_schedule({"Fr": ["14:00-16:00"], "montag": "8:00-9:30", "TUESDAY": []})
    assert parsed == {"montag": ["08:00-09:30"], "freitag": ["14:00-16:00"]}
    assert weekly_hours(parsed) == 3.5


@pytest.mark.parametrize(
    "schedule,message",
    [
        ({"Funday": ["09:00-10:00"]}, "unknown weekday"),
        ({"Mo": ["10:00-09:00"]}, "must start before it ends"),
        ({"Mo": ["9-10"]}, "malformed time range"),
        ({"Mo": ["25:00-26:00"]}, "impossible time"),
        ({"Mo": {"from": "9"}}, "must be a list"),
        (["Mo 9-10"], "must be an object"),
    ],
)
def test_bad_schedules_are_named(schedule, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(schedule)


def test_a_required_schedule_needs_one_range():
    with pytest.raises(ScheduleError, match="at least one"):
        parse_schedule({"Mo": []}, require_slot=True)


def test_haversine_berlin_hamburg_and_vectorised_agree():
    berlin, hamburg = (52.5200, 13.4050), (53.5511, 9.9937)
    distance = geo.haversine_km(*berlin, *hamburg)
    assert 254 < distance < 256
    many = geo.haversine_km_many(*berlin, [hamburg[0], berlin[0]], [hamburg[1], berlin[1]])
    assert list(many) == [distance, 0.0]


def test_bundesland_names_in_both_languages_map_to_iso_codes():
    assert geo.bundesland("Bavaria") == ("Bayern", "BY")
    assert geo.bundesland("Land Berlin") == ("Berlin", "BE")
    assert geo.bundesland(None) == (None, None)
