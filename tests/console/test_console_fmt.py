"""German formatting (console.fmt) and the paged table (console.paging)."""

from __future__ import annotations

import datetime as dt

import pytest

from console import fmt
from console.paging import PagedTable
from psymatch import settings
from psymatch.domain import vocab


def test_local_time_is_berlin_summer_and_winter():
    assert fmt.datetime_de(dt.datetime(2026, 7, 1, 10, 5)) == "01.07.2026 12:05"
    assert fmt.datetime_de(dt.datetime(2026, 12, 6, 10, 5)) == "06.12.2026 11:05"
    aware = dt.datetime(2026, 12, 6, 10, 5, tzinfo=dt.UTC)
    assert fmt.time_de(aware) == "11:05"
    assert fmt.datetime_de(None) == "" and fmt.date_de(None) == "" and fmt.time_de(None) == ""


def test_a_late_utc_evening_is_the_next_local_day():
    assert fmt.date_de(dt.datetime(2026, 12, 31, 23, 30)) == "01.01.2027"
    assert fmt.date_de(dt.date(2026, 12, 31)) == "31.12.2026"


def test_time_zone_follows_the_setting():
    before = settings.get().TIMEZONE
    settings.override(TIMEZONE="Europe/London")
    try:
        assert fmt.datetime_de(dt.datetime(2026, 12, 6, 10, 5)) == "06.12.2026 10:05"
    finally:
        settings.override(TIMEZONE=before)


def test_german_numbers():
    assert fmt.number_de(1234.5) == "1.234,5"
    assert fmt.number_de(1234567) == "1.234.567"
    assert fmt.number_de(2, 1) == "2,0"
    assert fmt.number_de(0.126, 2) == "0,13"
    assert fmt.number_de(None) == ""
    assert fmt.percent_de(0.125) == "12,5 %"
    assert fmt.percent_de(1) == "100 %"


@pytest.mark.parametrize(
    "name",
    [
        "PATIENTENSTATUS",
        "THERAPEUTENSTATUS",
        "SUCHSTATUS",
        "ANTWORTTYP",
        "ANFRAGE_PATIENT_STATUS",
        "THERAPEUTENANTWORTEN",
        "PATIENTENERGEBNIS",
        "VERMITTLUNGSERGEBNISSE",
        "EMAILSTATUS",
        "TELEFONANRUFSTATUS",
        "EMAIL_ART",
        "INBOUND_STATUS",
        "OUTBOX_STATUS",
        "THERAPIEVERFAHREN",
        "STAFF_ROLES",
    ],
)
def test_every_enum_value_has_a_german_label_without_underscores(name):
    codes = getattr(vocab, name)
    labelled = dict((code, word) for word, code in fmt.options(name))
    assert list(labelled) == list(codes)
    for code in codes:
        assert code in fmt.LABELS[name], f"{name}: {code} has no label"
        assert "_" not in labelled[code]


def test_labels_by_kind_and_fallback():
    assert fmt.label("auf_der_Suche") == "auf der Suche"
    assert fmt.label("In_Warteschlange", "EMAILSTATUS") == "in Warteschlange"
    assert fmt.label("abgelehnt_Kapazitaet", "PATIENTENERGEBNIS") == "abgelehnt (keine Kapazität)"
    assert fmt.label("cancel_search", "AUDIT_ACTION") == "cancel search"  # unknown: readable
    assert fmt.label(None) == ""
    with pytest.raises(KeyError):
        fmt.label("aktiv", "NO_SUCH_VOCABULARY")


def rows(n):
    return [[i, f"Patient {i}", "aktiv" if i % 2 else "pausiert"] for i in range(1, n + 1)]


def test_paged_table_pages_and_filters():
    pager = PagedTable(["ID", "Name", "Status"], page_size=10)
    pager.set_rows(rows(57), keys=list(range(1, 58)))
    assert pager.page_count == 6
    assert pager.visible_keys == list(range(1, 11))
    assert "Seite 1 von 6 · 57 Einträge" in pager.info.value
    assert pager.prev_button.disabled and not pager.next_button.disabled
    assert pager.output.value.count("<tr>") == 11  # header + 10

    for _ in range(10):  # more clicks than pages: stops at the last
        pager.next_page()
    assert pager.page == 5 and pager.visible_keys == list(range(51, 58))
    assert pager.next_button.disabled

    pager.filter.value = "pausiert"
    assert pager.page == 0
    assert pager.visible_keys == list(range(2, 21, 2))
    assert len(pager.matching_keys) == 28
    assert "28 Einträge (von 57)" in pager.info.value

    pager.filter.value = "patient 57 aktiv"  # every word must occur, as a substring
    assert pager.matching_keys == [57]
    assert "1 Eintrag " in pager.info.value + " "

    pager.filter.value = "niemand"
    assert pager.visible_keys == [] and "keine Einträge" in pager.output.value


def test_paged_table_keeps_page_on_reload_and_resets_on_size_change():
    pager = PagedTable(["ID", "Name", "Status"], page_size=10)
    pager.set_rows(rows(30))
    pager.next_page()
    pager.set_rows(rows(25))
    assert pager.page == 1 and pager.visible_keys == list(range(10, 20))
    pager.set_rows(rows(5))  # page 2 no longer exists
    assert pager.page == 0 and pager.visible_keys == list(range(5))
    pager.set_rows(rows(30))
    pager.next_page()
    pager.size_select.value = 25
    assert pager.page == 0 and len(pager.visible_keys) == 25


def test_paged_table_actions_on_top_and_cells_escaped():
    import ipywidgets as widgets

    button = widgets.Button(description="Aktion")
    pager = PagedTable(["Name"], actions=[button])
    assert pager.children[0].children == (button,)
    pager.set_rows([["<b>x</b>"]])
    assert "&lt;b&gt;x&lt;/b&gt;" in pager.output.value
    with pytest.raises(ValueError):
        pager.set_rows([["a"]], keys=[1, 2])


def test_paged_table_shows_and_selects_the_page_of_a_row():
    import ipywidgets as widgets

    pager = PagedTable(["ID", "Name", "Status"], page_size=10)
    choice = widgets.Dropdown(options=[])

    def offer(_=None):
        choice.options = [(f"Nr. {k}", k) for k in pager.visible_keys]
        choice.value = None

    pager.observe(offer, names="visible_keys")
    pager.set_rows(rows(57), keys=list(range(1, 58)))
    assert pager.select(choice, 34)
    assert pager.page == 3 and choice.value == 34 and 34 in pager.visible_keys
    pager.filter.value = "pausiert"  # hides 35: the filter is cleared to show it
    assert pager.show(35) and pager.filter.value == "" and pager.page == 3
    assert pager.select(choice, 36) and choice.value == 36  # same page: no turn
    assert not pager.show(99) and pager.page == 3  # no such row: nothing changes
    assert not pager.select(choice, 99) and choice.value is None
    pager.filter.value = "Patient 1"  # 1, 10–19: the row is on page 1 of the filtered list
    assert pager.show(19) and pager.page == 1 and pager.filter.value == "Patient 1"
