"""Row validation for the intake: every reject reason and every normalisation (pure, no DB)."""

from __future__ import annotations

import datetime as dt

import pytest

from db import models
from psymatch.domain import vocab
from psymatch.domain.validation import (
    PATIENT_FIELDS,
    THERAPIST_FIELDS,
    RowError,
    check_consistency,
    validate_patient,
    validate_therapist,
)

KNOWN = {"10115", "20095", "01067"}
TODAY = dt.date(2025, 11, 30)


def base(**changes) -> dict:
    row = {
        "external_id": "X-1",
        "anrede": "Frau",
        "geschlecht": "weiblich",
        "vorname": "Anna",
        "nachname": "Muster",
        "plz": "10115",
    }
    row.update(changes)
    return row


def patient(**changes) -> dict:
    return validate_patient(base(**changes), KNOWN, today=TODAY)


def therapist(**changes) -> dict:
    return validate_therapist(base(**changes), KNOWN, today=TODAY)


def rejects(validate, field: str, fragment: str, **changes) -> RowError:
    with pytest.raises(RowError) as info:
        validate(base(**changes), KNOWN, today=TODAY)
    assert info.value.field == field
    assert fragment in info.value.reason
    assert str(info.value) == f"{field}: {info.value.reason}"
    return info.value


# --- required fields and identity ---------------------------------------------------------


def test_minimal_row_returns_only_given_fields():
    assert patient() == base()
    assert therapist() == base()


@pytest.mark.parametrize(
    "field", ["external_id", "anrede", "geschlecht", "vorname", "nachname", "plz"]
)
@pytest.mark.parametrize("empty", [None, "", "   "])
@pytest.mark.parametrize("validate", [validate_patient, validate_therapist])
def test_required_field_missing_or_blank(validate, field, empty):
    rejects(validate, field, "required field missing", **{field: empty})


@pytest.mark.parametrize("validate", [validate_patient, validate_therapist])
def test_required_field_absent(validate):
    row = base()
    del row["nachname"]
    with pytest.raises(RowError, match="nachname: required field missing"):
        validate(row, KNOWN, today=TODAY)


def test_external_id_is_trimmed_and_limited_to_100_characters():
    assert patient(external_id="  P-7 ")["external_id"] == "P-7"
    assert patient(external_id="x" * 100)["external_id"] == "x" * 100
    rejects(validate_patient, "external_id", "too long (101 characters", external_id="x" * 101)


def test_external_id_must_be_text():
    rejects(validate_patient, "external_id", "expected text, got a number", external_id=7)


def test_row_must_be_an_object():
    with pytest.raises(RowError) as info:
        validate_patient(["not", "an", "object"], KNOWN, today=TODAY)
    assert info.value.field == "row"


# --- unknown and maintained fields --------------------------------------------------------


def test_unknown_field_is_rejected_with_a_suggestion():
    error = rejects(validate_patient, "vornme", "unknown field", vornme="Anna")
    assert "did you mean 'vorname'" in error.reason


def test_unknown_field_with_empty_value_is_ignored():
    assert "spalte" not in patient(spalte="", leer=None)


def test_field_of_the_other_kind_is_unknown():
    rejects(validate_therapist, "symptome", "unknown field", symptome=["Zwänge"])
    rejects(validate_patient, "titel", "unknown field", titel="Dr.")


@pytest.mark.parametrize("field", ["status", "startdatum", "latitude", "id", "geo_plz"])
def test_patient_fields_maintained_by_psymatch_cannot_be_imported(field):
    rejects(validate_patient, field, "cannot be imported", **{field: "x"})


@pytest.mark.parametrize("field", ["naechster_kontakt_moeglich", "notizen", "updated_at"])
def test_therapist_fields_maintained_by_psymatch_cannot_be_imported(field):
    rejects(validate_therapist, field, "cannot be imported", **{field: "x"})


def test_therapist_status_is_importable():
    assert therapist(status="gesperrt")["status"] == "gesperrt"


# --- PLZ ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1011", "101155", "1O115", "10 115", "１０１１５", "D-10115"])
def test_plz_must_be_five_ascii_digits(value):
    rejects(validate_patient, "plz", "exactly five digits", plz=value)


def test_plz_number_is_refused_because_it_loses_leading_zeros():
    rejects(validate_patient, "plz", "must be text", plz=1067)


def test_plz_is_trimmed_and_keeps_leading_zero():
    assert patient(plz=" 01067 ")["plz"] == "01067"


def test_unknown_plz_is_rejected_only_with_a_known_set():
    rejects(validate_patient, "plz", "unknown postal code '99999'", plz="99999")
    assert validate_patient(base(plz="99999"), None, today=TODAY)["plz"] == "99999"


# --- enums --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("anrede", "Divers"),
        ("geschlecht", "female"),
        ("verkehrsmittel", "Bahn"),
        ("bevorzugtes_therapeutengeschlecht", "egal"),
        ("bevorzugtes_therapieverfahren", "Psychoanalyse"),
    ],
)
def test_unknown_patient_enum_value(field, value):
    error = rejects(validate_patient, field, f"unknown value {value!r}", **{field: value})
    assert "allowed:" in error.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("psychotherapieverfahren", "Gesprächstherapie"),
        ("geschlechtspraeferenz", "divers"),
        ("status", "Aktiv"),
    ],
)
def test_unknown_therapist_enum_value(field, value):
    rejects(validate_therapist, field, f"unknown value {value!r}", **{field: value})


def test_enum_value_is_trimmed():
    assert therapist(status=" aktiv ")["status"] == "aktiv"


def test_enum_is_case_sensitive_but_suggests_the_right_spelling():
    error = rejects(validate_patient, "anrede", "unknown value 'frau'", anrede="frau")
    assert "did you mean 'Frau'" in error.reason
    error = rejects(validate_patient, "verkehrsmittel", "unknown value", verkehrsmittel="öpnv")
    assert "did you mean 'ÖPNV'" in error.reason


@pytest.mark.parametrize("value", vocab.GESCHLECHT)
def test_every_geschlecht_value_is_accepted(value):
    assert patient(geschlecht=value)["geschlecht"] == value


# --- text fields --------------------------------------------------------------------------


def test_text_is_trimmed():
    assert patient(vorname="  Anna  ", ort=" Berlin ")["ort"] == "Berlin"


@pytest.mark.parametrize(
    ("validate", "fields"),
    [(validate_patient, PATIENT_FIELDS), (validate_therapist, THERAPIST_FIELDS)],
)
def test_string_limits_match_the_model_columns(validate, fields):
    model = models.Patient if fields is PATIENT_FIELDS else models.Therapist
    checked = 0
    for name, field in model._meta.fields.items():
        limit = getattr(field, "max_length", None)
        if name not in fields or not limit or name in ("plz", "email") or field.choices:
            continue
        if fields[name].__qualname__.startswith("enum"):
            continue
        value = "x" * limit
        assert validate(base(**{name: value}), KNOWN, today=TODAY)[name] == value
        rejects(validate, name, f"at most {limit}", **{name: value + "x"})
        checked += 1
    assert checked >= 8


def test_single_line_fields_refuse_line_breaks_but_notes_allow_them():
    rejects(validate_patient, "nachname", "single line", nachname="Mus\nter")
    text = "Zeile 1\nZeile 2"
    assert therapist(zusatzqualifikationen=text)["zusatzqualifikationen"] == text


def test_zahlungsreferenz_at_most_8_characters():
    assert patient(zahlungsreferenz="V_123456")["zahlungsreferenz"] == "V_123456"
    rejects(validate_patient, "zahlungsreferenz", "at most 8", zahlungsreferenz="V_1234567")


# --- email --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["anna@example.org", "a.b+tag@sub.example.co.uk", "kontakt@müller-praxis.de", "x_y@a-b.de"],
)
def test_valid_email(value):
    assert patient(email=value)["email"] == value


def test_email_is_trimmed_not_lowercased():
    assert patient(email="  Anna@Example.ORG ")["email"] == "Anna@Example.ORG"


@pytest.mark.parametrize(
    "value",
    [
        "anna.example.org",
        "anna@example",
        "anna@@example.org",
        "an na@example.org",
        ".anna@example.org",
        "anna.@example.org",
        "an..na@example.org",
        "anna@-example.org",
        "anna@example..org",
        "anna@example.o",
        "anna@example.123",
        "a" * 65 + "@example.org",
        "anna@" + "b" * 250 + ".de",
    ],
)
def test_invalid_email(value):
    rejects(validate_patient, "email", "", email=value)


# --- booleans, numbers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        ("ja", True),
        ("Nein", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
    ],
)
def test_boolean_forms(value, expected):
    assert patient(offen_fuer_gruppentherapie=value)["offen_fuer_gruppentherapie"] is expected


@pytest.mark.parametrize("value", ["yes", "wahr", 2, "t", [True]])
def test_boolean_rejects_other_values(value):
    rejects(validate_patient, "offen_fuer_diga", "expected true/false", offen_fuer_diga=value)


def test_age_limits_are_whole_numbers_and_zero_means_none():
    values = therapist(alter_min="0", alter_max=65)
    assert values["alter_min"] is None
    assert values["alter_max"] == 65
    assert therapist(alter_min=" 18 ")["alter_min"] == 18


@pytest.mark.parametrize("value", ["-1", -3])
def test_age_limit_negative(value):
    rejects(validate_therapist, "alter_min", "0 or more", alter_min=value)


@pytest.mark.parametrize("value", ["18.5", 18.0, True, "achtzehn"])
def test_age_limit_not_a_whole_number(value):
    rejects(validate_therapist, "alter_max", "whole number", alter_max=value)


def test_age_min_greater_than_max():
    rejects(validate_therapist, "alter_min", "greater than alter_max", alter_min=70, alter_max=30)


def test_check_consistency_on_merged_values():
    check_consistency({"alter_min": 20, "alter_max": None})
    check_consistency({"alter_min": 20, "alter_max": 20})
    with pytest.raises(RowError, match="alter_min"):
        check_consistency({"alter_min": 21, "alter_max": 20})


# --- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1990-02-01", dt.date(1990, 2, 1)),
        ("01.02.1990", dt.date(1990, 2, 1)),
        ("1.2.1990", dt.date(1990, 2, 1)),
        (" 2000-02-29 ", dt.date(2000, 2, 29)),
        (dt.date(1980, 5, 6), dt.date(1980, 5, 6)),
    ],
)
def test_date_forms(value, expected):
    assert patient(geburtsdatum=value)["geburtsdatum"] == expected


@pytest.mark.parametrize(
    "value", ["2023-02-30", "31.04.2020", "2023-13-01", "1900-02-29", "0000-01-01"]
)
def test_impossible_dates(value):
    rejects(validate_patient, "geburtsdatum", "impossible date", geburtsdatum=value)


@pytest.mark.parametrize("value", ["1990/02/01", "02-01-1990", "1990-2-1", "gestern", 19900201])
def test_malformed_dates(value):
    rejects(validate_patient, "geburtsdatum", "expected", geburtsdatum=value)


def test_birth_date_in_the_future():
    assert patient(geburtsdatum=TODAY.isoformat())["geburtsdatum"] == TODAY
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    rejects(validate_patient, "geburtsdatum", "lies in the future", geburtsdatum=tomorrow)


def test_past_event_dates_not_in_the_future():
    rejects(
        validate_patient,
        "letzte_sitzung_vorherige_psychotherapie",
        "future",
        letzte_sitzung_vorherige_psychotherapie="2030-01-01",
    )
    rejects(
        validate_therapist, "letzter_kontakt_email", "future", letzter_kontakt_email="2030-01-01"
    )


def test_sperrdatum_may_be_any_valid_date():
    assert therapist(sperrdatum="01.01.2030")["sperrdatum"] == dt.date(2030, 1, 1)


# --- weekly schedules ---------------------------------------------------------------------


def test_schedule_object_is_normalised():
    values = patient(
        zeitliche_verfuegbarkeit={"Di": ["14:00-16:00", "9:00-12:00"], "monday": "8:00-9:00"}
    )
    assert values["zeitliche_verfuegbarkeit"] == {
        "montag": ["08:00-09:00"],
        "dienstag": ["09:00-12:00", "14:00-16:00"],
    }


def test_schedule_as_json_text():
    values = therapist(telefonische_erreichbarkeit='{"Di": ["8:00-9:00"]}')
    assert values["telefonische_erreichbarkeit"] == {"dienstag": ["08:00-09:00"]}


def test_schedule_in_compact_form():
    text = "Mo 09:00-12:00, 14:00-16:00; Di 10:00-12:00; freitag: 8:00-9:00;"
    assert therapist(arbeitszeiten=text)["arbeitszeiten"] == {
        "montag": ["09:00-12:00", "14:00-16:00"],
        "dienstag": ["10:00-12:00"],
        "freitag": ["08:00-09:00"],
    }


def test_compact_schedule_repeating_a_day_merges():
    values = patient(zeitliche_verfuegbarkeit="Mo 14:00-15:00; Montag 09:00-10:00")
    assert values["zeitliche_verfuegbarkeit"] == {"montag": ["09:00-10:00", "14:00-15:00"]}


def test_empty_schedule_object_is_given_and_empty():
    assert patient(zeitliche_verfuegbarkeit={})["zeitliche_verfuegbarkeit"] == {}
    assert patient(zeitliche_verfuegbarkeit="{}")["zeitliche_verfuegbarkeit"] == {}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("Mo 9-12", "malformed time range '9-12'"),
        ("Mo 12:00-09:00", "must start before it ends"),
        ("Mo 25:00-26:00", "impossible time"),
        ("Xy 09:00-10:00", "unknown weekday 'Xy'"),
        ("Mo", "malformed schedule part 'Mo'"),
        ("09:00-10:00", "malformed schedule part"),
        ({"montag": 9}, "must be a list"),
        ({"montag": [900]}, "must be a string"),
        ('{"montag": ["09:00-10:00"]', "invalid JSON object"),
        ('{"montag": ["09:00-10:00"], }', "invalid JSON object"),
        (["Mo 09:00-10:00"], "must be an object"),
    ],
)
def test_malformed_schedule(value, fragment):
    rejects(validate_patient, "zeitliche_verfuegbarkeit", fragment, zeitliche_verfuegbarkeit=value)


@pytest.mark.parametrize("field", ["arbeitszeiten", "telefonische_erreichbarkeit"])
def test_therapist_schedules_are_validated(field):
    rejects(validate_therapist, field, "malformed time range", **{field: "Di 8-9"})


# --- lists --------------------------------------------------------------------------------


def test_symptoms_as_list_semicolon_text_and_json_text():
    labels = ["Schlafstörungen", "Suchtprobleme (Alkohol/Drogen)"]
    assert patient(symptome=labels)["symptome"] == labels
    assert (
        patient(symptome=" Schlafstörungen ;Suchtprobleme (Alkohol/Drogen); ")["symptome"] == labels
    )
    assert (
        patient(symptome='["Schlafstörungen", "Suchtprobleme (Alkohol/Drogen)"]')["symptome"]
        == labels
    )


def test_symptoms_one_to_six():
    assert len(patient(symptome=list(vocab.SYMPTOME[:6]))["symptome"]) == 6
    rejects(
        validate_patient,
        "symptome",
        "needs 1 to 6 symptoms, got 7",
        symptome=list(vocab.SYMPTOME[:7]),
    )
    rejects(validate_patient, "symptome", "needs 1 to 6 symptoms, got 0", symptome=[])
    rejects(validate_patient, "symptome", "got 0", symptome="[]")


def test_unknown_symptom_with_suggestion():
    error = rejects(
        validate_patient,
        "symptome",
        "unknown symptom 'Schlafstoerungen'",
        symptome="Schlafstoerungen",
    )
    assert "did you mean 'Schlafstörungen'" in error.reason
    rejects(validate_patient, "symptome", "unknown symptom 'Heimweh'", symptome=["Heimweh"])


def test_duplicate_symptom():
    rejects(validate_patient, "symptome", "listed twice", symptome="Mobbing; Mobbing")


def test_symptom_entries_must_be_text():
    rejects(validate_patient, "symptome", "must be symptom labels", symptome=[3])
    rejects(validate_patient, "symptome", "expected a list", symptome={"a": 1})
    rejects(validate_patient, "symptome", "invalid JSON array", symptome='["Mobbing"')


def test_preferred_symptoms_zero_to_six():
    assert therapist(bevorzugte_symptome=[])["bevorzugte_symptome"] == []
    assert therapist(bevorzugte_symptome="Zwänge")["bevorzugte_symptome"] == ["Zwänge"]
    rejects(
        validate_therapist,
        "bevorzugte_symptome",
        "got 7",
        bevorzugte_symptome=list(vocab.SYMPTOME[:7]),
    )
    rejects(
        validate_therapist, "bevorzugte_symptome", "unknown symptom", bevorzugte_symptome="Angst"
    )


def test_excluded_therapists_are_ids():
    assert patient(ausgeschlossene_therapeuten="3; 5;3")["ausgeschlossene_therapeuten"] == [3, 5]
    assert patient(ausgeschlossene_therapeuten=[7, "8"])["ausgeschlossene_therapeuten"] == [7, 8]
    assert patient(ausgeschlossene_therapeuten="[]")["ausgeschlossene_therapeuten"] == []
    rejects(
        validate_patient,
        "ausgeschlossene_therapeuten",
        "whole number",
        ausgeschlossene_therapeuten="3; x",
    )
    rejects(
        validate_patient,
        "ausgeschlossene_therapeuten",
        "1 or more",
        ausgeschlossene_therapeuten=[0],
    )
    rejects(
        validate_patient,
        "ausgeschlossene_therapeuten",
        "whole number",
        ausgeschlossene_therapeuten=[True],
    )


def test_languages_and_diagnoses():
    values = therapist(
        fremdsprachen="Englisch; Türkisch; Englisch", bevorzugte_diagnosen="F32; F41.1"
    )
    assert values["fremdsprachen"] == ["Englisch", "Türkisch"]
    assert values["bevorzugte_diagnosen"] == ["F32", "F41.1"]
    rejects(validate_therapist, "fremdsprachen", "non-empty text", fremdsprachen=["Englisch", ""])
    rejects(
        validate_therapist,
        "bevorzugte_diagnosen",
        "not an ICD-10 code",
        bevorzugte_diagnosen="Depression",
    )


# --- raeumliche_verfuegbarkeit ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"max_km": 15}, {"max_km": 15}),
        ({"max_km": 12.5}, {"max_km": 12.5}),
        ('{"max_km": 30}', {"max_km": 30}),
        ("20", {"max_km": 20}),
        ("7,5", {"max_km": 7.5}),
        ({"max_km": None}, {}),
        ({}, {}),
    ],
)
def test_max_km_forms(value, expected):
    assert patient(raeumliche_verfuegbarkeit=value)["raeumliche_verfuegbarkeit"] == expected


@pytest.mark.parametrize("value", [{"max_km": 0}, {"max_km": -5}, "0", '{"max_km": -0.5}'])
def test_max_km_must_be_positive(value):
    rejects(
        validate_patient,
        "raeumliche_verfuegbarkeit.max_km",
        "greater than 0",
        raeumliche_verfuegbarkeit=value,
    )


@pytest.mark.parametrize(
    "value", [{"max_km": "weit"}, {"max_km": True}, "NaN", {"max_km": float("inf")}]
)
def test_max_km_must_be_a_finite_number(value):
    rejects(
        validate_patient,
        "raeumliche_verfuegbarkeit.max_km",
        "expected a number",
        raeumliche_verfuegbarkeit=value,
    )


def test_raeumliche_verfuegbarkeit_unknown_key_and_wrong_type():
    rejects(
        validate_patient,
        "raeumliche_verfuegbarkeit",
        "unknown key 'maxkm'",
        raeumliche_verfuegbarkeit={"maxkm": 5},
    )
    rejects(
        validate_patient,
        "raeumliche_verfuegbarkeit",
        "expected an object",
        raeumliche_verfuegbarkeit=[5],
    )


# --- a complete row -----------------------------------------------------------------------


def test_full_patient_row_normalised():
    values = patient(
        email=" laura@example.com ",
        krankenkasse="AOK Nordost",
        geburtsdatum="17.03.1994",
        symptome="Ängste / Panikattacken; Schlafstörungen",
        erfahrung_mit_psychotherapie="ja",
        letzte_sitzung_vorherige_psychotherapie="2021-06-30",
        vertraege_unterschrieben="1",
        zahlung_eingegangen=False,
        zeitliche_verfuegbarkeit="Mo 08:00-12:00; Mi 08:00-12:00",
        raeumliche_verfuegbarkeit="15",
        verkehrsmittel="ÖPNV",
        offen_fuer_gruppentherapie="nein",
        bevorzugtes_therapeutengeschlecht="Weiblich",
        bevorzugtes_therapieverfahren="Verhaltenstherapie",
    )
    assert values == {
        **base(),
        "email": "laura@example.com",
        "krankenkasse": "AOK Nordost",
        "geburtsdatum": dt.date(1994, 3, 17),
        "symptome": ["Ängste / Panikattacken", "Schlafstörungen"],
        "erfahrung_mit_psychotherapie": True,
        "letzte_sitzung_vorherige_psychotherapie": dt.date(2021, 6, 30),
        "vertraege_unterschrieben": True,
        "zahlung_eingegangen": False,
        "zeitliche_verfuegbarkeit": {"montag": ["08:00-12:00"], "mittwoch": ["08:00-12:00"]},
        "raeumliche_verfuegbarkeit": {"max_km": 15},
        "verkehrsmittel": "ÖPNV",
        "offen_fuer_gruppentherapie": False,
        "bevorzugtes_therapeutengeschlecht": "Weiblich",
        "bevorzugtes_therapieverfahren": "Verhaltenstherapie",
    }


def test_first_failing_field_is_reported_in_field_order():
    with pytest.raises(RowError) as info:
        validate_patient(base(plz="abc", email="kaputt", symptome="Heimweh"), KNOWN, today=TODAY)
    assert info.value.field == "plz"


def test_every_documented_field_has_a_model_column():
    for fields, model in ((PATIENT_FIELDS, models.Patient), (THERAPIST_FIELDS, models.Therapist)):
        assert set(fields) <= set(model._meta.fields)
