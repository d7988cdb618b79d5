"""The metrics of docs/domain.md §14 as pure functions: small inputs computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from psymatch.domain import metrics as m

ZONE = "Europe/Berlin"
T0 = dt.datetime(2026, 11, 2, 8, 0)  # Monday 09:00 local


def anfrage(i, *, size=4, sent=None, answered=None, typ=None, acc=0, rej=0, created=T0, **kw):
    return m.AnfrageRow(
        id=i,
        therapist_id=kw.pop("therapist_id", i),
        erstellt_datum=created,
        anfragegroesse=size,
        gesendet_datum=sent,
        antwort_datum=answered,
        antworttyp=typ,
        angenommen_anzahl=acc,
        abgelehnt_anzahl=rej,
        practice=kw.pop("practice", f"therapist:{i}"),
    )


DAY = dt.timedelta(days=1)
# 1: answered, 1 of 4 accepted, 3 rejected, after 2 days
# 2: answered, all 2 accepted, after 9 days
# 3: closed without response after 10 days
# 4: sent, pending
# 5: unsent
ROWS = [
    anfrage(1, sent=T0, answered=T0 + 2 * DAY, typ="teilweise_Annahme", acc=1, rej=3),
    anfrage(2, size=2, sent=T0, answered=T0 + 9 * DAY, typ="vollstaendige_Annahme", acc=2),
    anfrage(3, size=6, sent=T0, answered=T0 + 10 * DAY, typ="keine_Antwort"),
    anfrage(4, size=3, sent=T0 + 5 * DAY),
    anfrage(5, size=5),
]
NOW = T0 + 14 * DAY


def test_reference_metrics_by_hand():
    assert m.average_acceptance_rate(ROWS) == m.Ratio(3, 20)
    assert m.average_acceptance_rate(ROWS).value == pytest.approx(0.15)
    assert m.average_anfrage_size(ROWS).value == pytest.approx(20 / 5)
    assert m.response_rate(ROWS) == m.Ratio(2, 5)  # the closure is not an answer
    assert m.list_summary(ROWS, NOW) == {
        "total_anfragen": 5,
        "unsent_anfragen": 1,
        "pending_responses": 1,
        "needing_follow_up": 1,  # A4: 9 full days since sending
    }
    assert m.list_summary(ROWS, T0 + 11 * DAY)["needing_follow_up"] == 0  # A4: 6 days


def test_business_rates_over_answered_anfragen():
    assert m.annahmerate(ROWS) == m.Ratio(3, 6)
    assert m.ablehnungsquote(ROWS) == m.Ratio(3, 6)
    assert m.anfrageeffizienz(ROWS) == m.Ratio(3, 2)
    assert m.anfrageeffizienz(ROWS).value == 1.5


def test_every_rate_is_zero_without_a_denominator():
    for fn in (
        m.average_acceptance_rate,
        m.average_anfrage_size,
        m.response_rate,
        m.annahmerate,
        m.ablehnungsquote,
        m.anfrageeffizienz,
    ):
        assert fn([]).value == 0.0
    assert m.konfliktrate([]).value == 0.0
    assert m.show_rate([]).value == 0.0
    assert m.antwortrate_7_tage([], NOW).value == 0.0
    assert m.parallele_suche([], [], []).value == 0.0
    assert m.abkuehlungseinhaltung([], [], {}, ZONE).value == 0.0


def test_antwortrate_7_tage_counts_only_anfragen_sent_a_week_ago():
    # A1 answered within 2 days (yes), A2 after 9 days (no), A3 closed (no); A4 sent 9 days
    # before NOW, pending (no); A5 unsent (not counted)
    assert m.antwortrate_7_tage(ROWS, NOW) == m.Ratio(1, 4)
    # exactly 7 x 24 h still counts
    edge = anfrage(9, sent=T0, answered=T0 + 7 * DAY, typ="vollstaendige_Ablehnung")
    assert m.antwortrate_7_tage([edge], NOW) == m.Ratio(1, 1)
    # sent 6 days ago: not yet part of the denominator
    assert m.antwortrate_7_tage([anfrage(8, sent=NOW - 6 * DAY)], NOW) == m.Ratio(0, 0)


def test_konfliktrate_and_show_rate_from_lines():
    lines = [
        m.LineRow(1, 100, "angenommen", "angenommen"),
        m.LineRow(2, 100, "anderweitig_vermittelt", "angenommen"),  # second acceptance
        m.LineRow(1, 101, "angenommen", "in_Sitzungen"),
        m.LineRow(2, 102, "angenommen", "nicht_erschienen"),
        m.LineRow(2, 103, "abgelehnt", "abgelehnt_Kapazitaet"),
        m.LineRow(3, 104, "anstehend", None),
    ]
    assert m.konfliktrate(lines) == m.Ratio(1, 3)  # search 100 of 100, 101, 102
    assert m.show_rate(lines) == m.Ratio(1, 2)


def test_placement_days_use_local_dates_mean_and_median():
    at = dt.datetime
    searches = [
        # created 23:30 local on 1 Nov (22:30 UTC), placed 00:30 local on 11 Nov: 10 days
        m.SearchRow(1, "erfolgreich", at(2026, 11, 1, 22, 30), at(2026, 11, 10, 23, 30)),
        m.SearchRow(2, "erfolgreich", dt.datetime(2026, 10, 1, 10), dt.datetime(2026, 10, 21, 10)),
        m.SearchRow(3, "erfolgreich", dt.datetime(2026, 9, 1, 10), dt.datetime(2026, 10, 1, 10)),
        m.SearchRow(4, "aktiv", dt.datetime(2026, 9, 1, 10), None),
    ]  # fmt: skip
    days = m.placement_days(searches, ZONE)
    assert days == [10, 20, 30]
    assert m.mean_median(days) == (20.0, 20.0)
    assert m.mean_median([1, 2, 10, 11]) == (6.0, 6.0)
    assert m.mean_median([]) == (None, None)


def test_cooling_compliance_per_practice_group_with_overrides():
    practice = "email:praxis@example.org"
    answered = anfrage(
        1, sent=T0, answered=T0 + 2 * DAY, typ="vollstaendige_Ablehnung", practice=practice
    )
    too_early = anfrage(2, sent=T0 + 20 * DAY, practice=practice, therapist_id=7)
    on_time = anfrage(3, sent=T0 + 30 * DAY, practice=practice, therapist_id=8)
    other = anfrage(4, sent=T0 + 3 * DAY)  # another practice: no earlier response
    everything = [answered, too_early, on_time, other]
    sent = [answered, too_early, on_time, other]
    assert m.abkuehlungseinhaltung(sent, everything, {}, ZONE) == m.Ratio(3, 4)
    # a cooling override between the response and the early sending makes it compliant
    overrides = {practice: [T0 + 10 * DAY]}
    assert m.abkuehlungseinhaltung(sent, everything, overrides, ZONE) == m.Ratio(4, 4)
    # an override before the response does not
    early = {practice: [T0 + DAY]}
    assert m.abkuehlungseinhaltung(sent, everything, early, ZONE) == m.Ratio(3, 4)
    # exactly 28 local days after the response is compliant, 27 is not
    response_day = T0 + 2 * DAY
    assert m.cooling_compliant(
        anfrage(5, sent=response_day + 28 * DAY - dt.timedelta(hours=2)), [answered], [], ZONE
    )
    assert not m.cooling_compliant(anfrage(6, sent=response_day + 27 * DAY), [answered], [], ZONE)
    # a closure without response starts no cooling
    closed = anfrage(7, sent=T0, answered=T0 + DAY, typ="keine_Antwort")
    assert m.cooling_compliant(anfrage(8, sent=T0 + 2 * DAY), [closed], [], ZONE)


def test_parallele_suche_counts_sent_pending_anfragen_per_aktiv_search():
    anfragen = [
        anfrage(1, sent=T0),
        anfrage(2, sent=T0),
        anfrage(3),  # unsent: not counted
        anfrage(4, sent=T0, answered=T0 + DAY, typ="teilweise_Annahme", acc=1),  # answered
    ]
    lines = [
        m.LineRow(1, 10, "anstehend"),
        m.LineRow(2, 10, "anstehend"),
        m.LineRow(3, 10, "anstehend"),
        m.LineRow(4, 10, "angenommen", "angenommen"),
        m.LineRow(1, 11, "anstehend"),
    ]
    searches = [
        m.SearchRow(10, "aktiv", T0),
        m.SearchRow(11, "aktiv", T0),
        m.SearchRow(12, "aktiv", T0),
        m.SearchRow(13, "pausiert", T0),
    ]
    assert m.parallele_suche(searches, lines, anfragen) == m.Ratio(3, 3)


def test_weekly_rates_and_histogram():
    rows = ROWS + [anfrage(6, sent=T0 + 15 * DAY)]  # two weeks later, pending
    weeks = m.weekly_rates(rows, ZONE)
    assert [w["woche"] for w in weeks] == [
        dt.date(2026, 11, 2),
        dt.date(2026, 11, 9),
        dt.date(2026, 11, 16),
    ]
    # A4 went out on Saturday 7 Nov: still the week of 2 Nov; the empty week is listed
    assert [w["gesendet"] for w in weeks] == [4, 0, 1]
    assert weeks[0]["antwortrate"] == m.Ratio(2, 4)
    assert weeks[0]["annahmerate"] == m.Ratio(3, 6)
    assert weeks[1]["antwortrate"] == m.Ratio(0, 0)
    assert weeks[2]["antwortrate"] == m.Ratio(0, 1)
    assert m.weekly_rates([anfrage(1)], ZONE) == []
    assert m.histogram([3, 9, 10, 22], width=7) == [(0, 6, 1), (7, 13, 2), (14, 20, 0), (21, 27, 1)]
    assert m.histogram([]) == []
    with pytest.raises(ValueError):
        m.histogram([1], width=0)


def test_compute_filters_by_local_dates_and_refuses_bad_ranges():
    data = m.MetricData(
        anfragen=tuple(ROWS),
        lines=(m.LineRow(1, 100, "angenommen", "angenommen"),),
        searches=(m.SearchRow(100, "erfolgreich", T0 - 10 * DAY, T0 + 4 * DAY),),
    )
    report = m.compute(data, dt.date(2026, 11, 1), dt.date(2026, 11, 30), NOW, ZONE)
    assert report.figure("Anfragen gesamt") == 5
    assert report.figure("Antwortrate") == pytest.approx(0.4)
    assert report.figure("Vermittlungen") == 1
    assert report.figure("Vermittlungstage Median") == 14
    assert report.placement == [(100, 14)]
    # the day before: nothing created, nothing placed
    empty = m.compute(data, dt.date(2026, 10, 1), dt.date(2026, 11, 1), NOW, ZONE)
    assert empty.figure("Anfragen gesamt") == 0
    assert empty.figure("Vermittlungen") == 0
    assert empty.figure("Vermittlungstage Median") is None
    assert empty.weekly == [] and empty.placement == []
    with pytest.raises(ValueError, match="after end"):
        m.compute(data, dt.date(2026, 11, 30), dt.date(2026, 11, 1), NOW, ZONE)
    with pytest.raises(ValueError):
        m.compute(data, None, dt.date(2026, 11, 1), NOW, ZONE)


def test_csv_rows_hold_figures_weeks_and_placements():
    data = m.MetricData(
        anfragen=tuple(ROWS),
        searches=(m.SearchRow(100, "erfolgreich", T0 - 10 * DAY, T0 + 4 * DAY),),
    )
    report = m.compute(data, dt.date(2026, 11, 1), dt.date(2026, 11, 30), NOW, ZONE)
    rows = m.csv_rows(report)
    assert all(len(r) == len(m.CSV_HEADER) for r in rows)
    assert ("Kennzahl", "2026-11-01..2026-11-30", "Antwortrate", "Anteil", 0.4, 2, 5) in rows
    assert ("Woche", "2026-11-02", "Gesendet", "Anzahl", 4, None, None) in rows
    assert ("Vermittlung", "Platzsuche 100", "Vermittlungstage", "Tage", 14, None, None) in rows


def test_staff_actions_per_week_and_per_placement():
    """Issue 15 point 9: only staff clicks and commands count, per local week."""
    assert m.is_staff_action("anna", "record_response")
    assert not m.is_staff_action("email", "record_response")  # parsed from a reply
    assert not m.is_staff_action("clock", "bundle_round")
    assert not m.is_staff_action("anna", "send_anfrage")  # the worker's row for her send
    assert not m.is_staff_action("", "record_response")
    monday = dt.datetime(2026, 11, 2, 9, 0)
    actions = (monday, monday + DAY, monday + 7 * DAY, monday + 40 * DAY)
    data = m.MetricData(
        searches=(m.SearchRow(100, "erfolgreich", monday - 10 * DAY, monday + 2 * DAY),),
        staff_actions=actions,
    )
    report = m.compute(data, dt.date(2026, 11, 1), dt.date(2026, 11, 30), NOW, ZONE)
    assert report.figure("Mitarbeiteraktionen") == 3  # the fourth lies after the range
    assert report.figure("Mitarbeiteraktionen je Vermittlung") == 3
    assert [(w["woche"], w["aktionen"], w["vermittlungen"]) for w in report.staff_weekly] == [
        (dt.date(2026, 11, 2), 2, 1),
        (dt.date(2026, 11, 9), 1, 0),
    ]
    none_placed = m.compute(
        m.MetricData(staff_actions=actions), dt.date(2026, 11, 1), dt.date(2026, 11, 30), NOW, ZONE
    )
    assert none_placed.figure("Mitarbeiteraktionen je Vermittlung") is None
    rows = m.csv_rows(report)
    assert ("Woche", "2026-11-02", "Mitarbeiteraktionen", "Anzahl", 2, None, None) in rows
