"""The inquiry's answer form: reading filled-in lines back."""

from __future__ import annotations

import pytest

from psymatch.domain import answer_form as form

PRINTED = form.form_line(1, 123)


def test_printed_line_is_short_and_blank():
    assert PRINTED == "1) Patient 123: [ ] ja  [ ] keine Kapazität  [ ] nicht geeignet"
    assert len(form.form_line(6, 9_999_999)) < 70
    line = form.parse_line(PRINTED)
    assert (line.position, line.patient_id, line.status, line.outcome) == (1, 123, form.BLANK, None)


@pytest.mark.parametrize(
    "filled,outcome",
    [
        (PRINTED.replace("[ ] ja", "[x] ja"), form.ANGENOMMEN),
        (PRINTED.replace("[ ] keine", "[X] keine"), form.KAPAZITAET),
        (PRINTED.replace("[ ] nicht", "[✓] nicht"), form.NICHT_GEEIGNET),
        (PRINTED.replace("[ ] nicht", "[ * ] nicht"), form.NICHT_GEEIGNET),
        ("> > " + PRINTED.replace("[ ] ja", "[x] ja"), form.ANGENOMMEN),  # quoted twice
        ("1) Patient 123: [ ] ja", form.ANGENOMMEN),  # the other options deleted
        ("1) Patient 123: keine Kapazität", form.KAPAZITAET),
        ("1) patient 123 : Nicht geeignet", form.NICHT_GEEIGNET),
        ("1) Patient 123: ungeeignet", form.NICHT_GEEIGNET),
        ("1) Patient 123: Kapazitaet fehlt leider", form.KAPAZITAET),
        ("1) Patient 123: JA gerne", form.ANGENOMMEN),
    ],
)
def test_filled_lines_give_one_outcome(filled, outcome):
    line = form.parse_line(filled)
    assert (line.patient_id, line.status, line.outcome) == (123, form.ANSWERED, outcome)


@pytest.mark.parametrize(
    "filled",
    [
        PRINTED.replace("[ ] ja", "[x] ja").replace("[ ] keine", "[x] keine"),
        "1) Patient 123: ja, aber keine Kapazität",
        "1) Patient 123: nein",
        "1) Patient 123: [x]",
    ],
)
def test_contradicting_or_unclear_lines_are_ambiguous(filled):
    line = form.parse_line(filled)
    assert (line.status, line.outcome) == (form.AMBIGUOUS, None)


@pytest.mark.parametrize(
    "text", ["Patient 123: ja", "1) Patient: ja", "Mit freundlichen Grüßen", "1) Patient 12a: ja"]
)
def test_other_lines_are_not_form_lines(text):
    assert form.parse_line(text) is None


def test_answers_by_patient_merges_quoted_original_and_filled_copy():
    reply = "\n".join(
        [
            "1) Patient 123: [x] ja  [ ] keine Kapazität  [ ] nicht geeignet",
            "2) Patient 456: [ ] ja  [ ] keine Kapazität  [ ] nicht geeignet",
            "> 1) Patient 123: [ ] ja  [ ] keine Kapazität  [ ] nicht geeignet",
            "> 3) Patient 789: [ ] ja  [x] keine Kapazität  [ ] nicht geeignet",
            "3) Patient 789: ja",  # contradicts the line above
        ]
    )
    merged = form.answers_by_patient(form.parse_answer_form(reply))
    assert merged[123].outcome == form.ANGENOMMEN
    assert merged[456].status == form.BLANK
    assert merged[789].status == form.AMBIGUOUS
