"""Intake of therapists and patients: files, upsert semantics, rejections, the CLI contract."""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import random
import sys
from pathlib import Path

import pytest

from db import plz as plz_data
from db.models import Patient, Therapist
from operations import intake
from operations.intake import ImportFileError
from tests.conftest import run_cli

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT / "examples"
MODELS = {"patients": Patient, "therapists": Therapist}

# Real German postal codes (all present in the shipped GeoNames data, db/data/).
PLZ = ["10115", "10405", "12043", "13353", "14057", "20095", "20354", "22765", "80331", "81675"]
PLZ += ["50667", "50823", "01067", "04109", "60311", "70173", "30159", "28195", "90402", "45127"]
SYMPTOMS = ["Schlafstörungen", "Innere Leere", "Mobbing", "Zwänge", "Trauer / Verlust"]
SYMPTOMS += ["Ängste / Panikattacken", "Depression / Niedergeschlagenheit", "Einsamkeit"]
DAYS = ["montag", "dienstag", "mittwoch", "donnerstag", "freitag"]
ABBR = {"montag": "Mo", "dienstag": "Di", "mittwoch": "Mi", "donnerstag": "Do", "freitag": "Fr"}
SCHEDULES = ("zeitliche_verfuegbarkeit", "telefonische_erreichbarkeit", "arbeitszeiten")

# Every import names the staff member for its audit row (tests/cli/test_cli_audit.py).
import_file = functools.partial(intake.import_file, actor="Erika")


# --- generated rows -----------------------------------------------------------------------


def _person(rng: random.Random, prefix: str, i: int) -> dict:
    female = rng.random() < 0.6
    return {
        "external_id": f"{prefix}-{i:05d}",
        "anrede": "Frau" if female else "Herr",
        "geschlecht": "weiblich" if female else "männlich",
        "vorname": rng.choice(["Anna", "Lena", "Mia"] if female else ["Jonas", "Paul", "Emil"]),
        "nachname": rng.choice(["Müller", "Schmidt", "Weber", "Özdemir", "Krüger"]),
        "strasse": f"Hauptstraße {i % 200 + 1}",
        "plz": rng.choice(PLZ),
        "email": f"person{i}@example.org",
    }


def _schedule(rng: random.Random) -> dict:
    days = rng.sample(DAYS, rng.randint(1, 3))
    return {day: [f"{rng.randint(7, 12):02d}:00-{rng.randint(13, 19)}:30"] for day in days}


def patient_row(i: int) -> dict:
    rng = random.Random(i)
    row = _person(rng, "P", i)
    row.update(
        krankenkasse=rng.choice(["AOK", "Techniker Krankenkasse", "Barmer"]),
        geburtsdatum=f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        symptome=rng.sample(SYMPTOMS, rng.randint(1, 3)),
        erfahrung_mit_psychotherapie=rng.random() < 0.3,
        zeitliche_verfuegbarkeit=_schedule(rng),
        raeumliche_verfuegbarkeit={"max_km": rng.choice([10, 15, 25, 40])},
        verkehrsmittel=rng.choice(["Auto", "ÖPNV"]),
        offen_fuer_gruppentherapie=rng.random() < 0.5,
    )
    return row


def therapist_row(i: int) -> dict:
    rng = random.Random(10_000 + i)
    row = _person(rng, "T", i)
    row.update(
        titel=rng.choice(["Dr.", "Dipl.-Psych.", "Prof. Dr."]),
        telefonische_erreichbarkeit={rng.choice(DAYS): ["08:00-09:00"]},
        psychotherapieverfahren=rng.choice(["Verhaltenstherapie", "egal"]),
        fremdsprachen=rng.sample(["Englisch", "Türkisch", "Polnisch"], rng.randint(0, 2)),
        bevorzugte_symptome=rng.sample(SYMPTOMS, rng.randint(0, 2)),
        alter_min=rng.choice([0, 18]),
        alter_max=rng.choice([0, 65]),
        potenziell_verfuegbar=rng.random() < 0.2,
    )
    return row


ROW = {"patients": patient_row, "therapists": therapist_row}

# The ten invalid rows of the acceptance scenario: (position in the file, change, field, reason).
INVALID = {
    "patients": [
        (0, {"plz": "1011A"}, "plz", "exactly five digits"),
        (3, {"plz": "99999"}, "plz", "unknown postal code '99999'"),
        (101, {"vorname": None}, "vorname", "required field missing"),
        (250, {"anrede": "Divers"}, "anrede", "unknown value 'Divers'"),
        (499, {"external_id": "P-00007"}, "external_id", "duplicate external_id"),
        (500, {"zeitliche_verfuegbarkeit": "Mo 9-12"}, "zeitliche_verfuegbarkeit", "'9-12'"),
        (501, {"geburtsdatum": "2023-02-30"}, "geburtsdatum", "impossible date"),
        (777, {"email": "anna.example.org"}, "email", "not a valid email"),
        (1000, {"symptome": ["Heimweh"]}, "symptome", "unknown symptom 'Heimweh'"),
        (
            1009,
            {"raeumliche_verfuegbarkeit": {"max_km": 0}},
            "raeumliche_verfuegbarkeit.max_km",
            "greater than 0",
        ),
    ],
    "therapists": [
        (0, {"plz": "123"}, "plz", "exactly five digits"),
        (3, {"plz": "00000"}, "plz", "unknown postal code '00000'"),
        (101, {"nachname": None}, "nachname", "required field missing"),
        (250, {"psychotherapieverfahren": "Gestalt"}, "psychotherapieverfahren", "unknown value"),
        (499, {"external_id": "T-00007"}, "external_id", "duplicate external_id"),
        (500, {"telefonische_erreichbarkeit": "Di 08:00"}, "telefonische_erreichbarkeit", "08:00"),
        (501, {"letzter_kontakt_email": "31.04.2024"}, "letzter_kontakt_email", "impossible date"),
        (777, {"email": "praxis@"}, "email", "not a valid email"),
        (1000, {"bevorzugte_symptome": ["Heimweh"]}, "bevorzugte_symptome", "unknown symptom"),
        (1009, {"alter_min": 70, "alter_max": 30}, "alter_min", "greater than alter_max"),
    ],
}


def acceptance_rows(kind: str, valid: int = 1000) -> tuple[list[dict], list[tuple]]:
    """``valid`` valid rows with the ten invalid ones interleaved at their positions.

    Valid rows are numbered 1..valid in file order and the invalid ones above
    that, except the duplicate, which repeats the id of the seventh valid row.
    """
    invalid = {pos: (change, field, reason) for pos, change, field, reason in INVALID[kind]}
    rows, number, extra = [], 0, valid
    for position in range(valid + len(invalid)):
        if position in invalid:
            extra += 1
            row = ROW[kind](extra)
            row.update(invalid[position][0])
            rows.append({k: v for k, v in row.items() if v is not None})
        else:
            number += 1
            rows.append(ROW[kind](number))
    return rows, INVALID[kind]


def _csv_cell(name: str, value, position: int) -> str:
    """Alternate the accepted CSV forms (compact and JSON schedules, ``;`` and JSON lists)."""
    if isinstance(value, bool):
        return ("true", "false")[not value] if position % 2 else ("ja", "nein")[not value]
    if isinstance(value, list):
        return "; ".join(value) if position % 2 else json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and name in SCHEDULES and position % 2:
        return "; ".join(f"{ABBR[d]} {', '.join(r)}" for d, r in value.items())
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def write_rows(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        return path
    columns = list(dict.fromkeys(name for row in rows for name in row))
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for position, row in enumerate(rows):
            writer.writerow([_csv_cell(c, row[c], position) if c in row else "" for c in columns])
    return path


def position(fmt: str, index: int) -> str:
    """How the report names a row: physical CSV line (header = 1) or 0-based JSON index."""
    return f"line {index + 2}" if fmt == "csv" else f"index {index}"


def snapshot(kind: str) -> dict[str, tuple]:
    """external_id -> (updated_at, latitude) of every stored row."""
    model = MODELS[kind]
    query = model.select(model.external_id, model.updated_at, model.latitude)
    return {eid: (updated, lat) for eid, updated, lat in query.tuples()}


# --- the acceptance scenario, through the real CLI -----------------------------------------


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [("patients", "csv"), ("patients", "json"), ("therapists", "csv"), ("therapists", "json")],
)
def test_acceptance_import_rejects_ten_and_reimport_writes_nothing(
    clean_db, cli_env, tmp_path, kind, fmt
):
    rows, invalid = acceptance_rows(kind)
    path = write_rows(tmp_path / f"{kind}.{fmt}", rows)

    first = run_cli(cli_env, "import", "--actor", "Erika", kind, str(path))
    assert first.returncode == 1, first.stderr
    assert first.stdout.strip() == f"{kind}: 1000 created, 0 updated, 0 unchanged, 10 rejected"
    rejected_lines = [line for line in first.stderr.splitlines() if line.startswith("rejected ")]
    assert len(rejected_lines) == 10, first.stderr
    for line, (index, _change, field, reason) in zip(rejected_lines, invalid, strict=True):
        assert line.startswith(f"rejected {position(fmt, index)} ("), line
        assert f": {field}: " in line and reason in line, line
    duplicate = next(line for line in rejected_lines if "duplicate" in line)
    dup_id = duplicate.split("external_id=", 1)[1].split(")", 1)[0]
    first_index = next(i for i, row in enumerate(rows) if row["external_id"] == dup_id)
    assert first_index not in {index for index, *_ in invalid}
    assert duplicate.endswith(f"first seen at {position(fmt, first_index)}")

    model = MODELS[kind]
    stored = snapshot(kind)
    prefix = "P" if kind == "patients" else "T"
    assert set(stored) == {f"{prefix}-{n:05d}" for n in range(1, 1001)}
    assert all(lat is not None for _, lat in stored.values())
    latest = model.select(model.updated_at).order_by(model.updated_at.desc()).scalar()

    second = run_cli(cli_env, "import", "--actor", "Erika", kind, str(path))
    assert second.returncode == 1
    assert second.stdout.strip() == f"{kind}: 0 created, 0 updated, 1000 unchanged, 10 rejected"
    assert snapshot(kind) == stored
    assert model.select().count() == 1000
    assert model.select(model.updated_at).order_by(model.updated_at.desc()).scalar() == latest


def test_cli_json_report(clean_db, cli_env, tmp_path):
    rows = [patient_row(1), {**patient_row(2), "plz": "99999"}]
    path = write_rows(tmp_path / "p.json", rows)
    result = run_cli(cli_env, "import", "--actor", "Erika", "patients", str(path), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["created"] == 1 and report["rejected_count"] == 1
    assert report["rejected"] == [
        {
            "index": 1,
            "external_id": "P-00002",
            "field": "plz",
            "reason": "unknown postal code '99999'",
            "message": "index 1 (external_id=P-00002): plz: unknown postal code '99999'",
        }
    ]


def test_cli_clean_import_exits_zero(clean_db, cli_env):
    result = run_cli(
        cli_env, "import", "--actor", "Erika", "therapists", str(EXAMPLES / "therapists.csv")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "therapists: 8 created, 0 updated, 0 unchanged, 0 rejected"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.json", '[{"external_id": "P-1",', "is not valid JSON"),
        ("object.json", '{"external_id": "P-1"}', "expected a JSON array"),
        ("broken.csv", b"external_id,plz\n\xff\xfe\x00garbage\n", "is not UTF-8 text"),
        (
            "quote.csv",
            'external_id,anrede,geschlecht,vorname,nachname,plz\n"P-1"x,',
            "not valid CSV",
        ),
        ("header.csv", "id;name\n1;Anna\n", "lacks the required column(s) external_id"),
        ("empty.csv", "", "is empty"),
        ("patients.txt", "[]", "cannot tell the format"),
    ],
)
def test_cli_unreadable_file_gives_one_line_error(
    clean_db, cli_env, tmp_path, name, content, message
):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    result = run_cli(cli_env, "import", "--actor", "Erika", "patients", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("psymatch: error: "), result.stderr
    assert message in lines[0]
    assert Patient.select().count() == 0


def test_cli_missing_file(clean_db, cli_env, tmp_path):
    result = run_cli(cli_env, "import", "--actor", "Erika", "patients", str(tmp_path / "nope.csv"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"psymatch: error: cannot read {tmp_path / 'nope.csv'}: " + (
        "No such file or directory"
    )


# --- examples ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["therapists", "patients"])
def test_examples_import_cleanly_and_both_formats_agree(clean_db, kind):
    report = import_file(kind, EXAMPLES / f"{kind}.json")
    assert report.rejected == []
    assert 6 <= report.created <= 10
    again = import_file(kind, EXAMPLES / f"{kind}.csv")
    assert (
        again.summary() == f"{kind}: 0 created, 0 updated, {report.created} unchanged, 0 rejected"
    )


def test_examples_contain_a_practice_sharing_one_email(clean_db):
    import_file("therapists", EXAMPLES / "therapists.csv")
    emails = [t.email.strip().lower() for t in Therapist.select() if t.email]
    assert len(emails) > len(set(emails))


def test_examples_show_both_list_and_schedule_forms():
    text = (EXAMPLES / "patients.csv").read_text(encoding="utf-8")
    text += (EXAMPLES / "therapists.csv").read_text(encoding="utf-8")
    assert '[""' in text  # a JSON array in a cell
    assert "Schlafstörungen; " in text or "; Schlafstörungen" in text  # ';'-separated
    assert '{""' in text and "Mo 08:00-12:00" in text  # JSON and compact schedules


# --- upsert semantics ----------------------------------------------------------------------


def test_import_sets_location_from_the_plz_centroid(clean_db, tmp_path):
    import_file("patients", write_rows(tmp_path / "p.json", [patient_row(1)]))
    patient = Patient.get(Patient.external_id == "P-00001")
    lat, lon = plz_data.centroid_map()[patient.plz]
    assert (patient.latitude, patient.longitude) == (round(lat, 2), round(lon, 2))  # ~1 km
    assert (patient.geo_quelle, patient.geo_plz) == ("plz", patient.plz)
    assert patient.status == "offen" and patient.created_at == patient.updated_at


def test_changed_field_is_an_update_and_touches_only_that_row(clean_db, tmp_path):
    rows = [patient_row(1), patient_row(2)]
    import_file("patients", write_rows(tmp_path / "p.json", rows))
    before = snapshot("patients")
    rows[1]["krankenkasse"] = "HEK"
    report = import_file("patients", write_rows(tmp_path / "p2.json", rows))
    assert report.summary() == "patients: 0 created, 1 updated, 1 unchanged, 0 rejected"
    after = snapshot("patients")
    assert after["P-00001"] == before["P-00001"]
    assert after["P-00002"][0] > before["P-00002"][0]
    assert Patient.get(Patient.external_id == "P-00002").krankenkasse == "HEK"


def test_changed_plz_gets_new_coordinates(clean_db, tmp_path):
    row = {**patient_row(1), "plz": "10115"}
    import_file("patients", write_rows(tmp_path / "p.json", [row]))
    row["plz"] = "80331"
    report = import_file("patients", write_rows(tmp_path / "p2.json", [row]))
    assert report.updated == 1
    patient = Patient.get(Patient.external_id == "P-00001")
    lat, lon = plz_data.centroid_map()["80331"]
    assert (patient.latitude, patient.longitude) == (round(lat, 2), round(lon, 2))
    assert patient.geo_plz == "80331"
    assert 47.5 < patient.latitude < 48.5  # München, not Berlin


def test_changed_street_goes_back_to_the_centroid_for_street_geocoding(clean_db, tmp_path):
    row = {**patient_row(1), "plz": "10115", "strasse": "Invalidenstraße 1"}
    import_file("patients", write_rows(tmp_path / "p.json", [row]))
    Patient.update(latitude=52.53, longitude=13.38, geo_quelle="adresse").execute()
    import_file("patients", write_rows(tmp_path / "p1.json", [row]))  # unchanged: kept
    assert Patient.get(Patient.external_id == "P-00001").geo_quelle == "adresse"
    row["strasse"] = "Chausseestraße 5"
    report = import_file("patients", write_rows(tmp_path / "p2.json", [row]))
    assert report.updated == 1
    patient = Patient.get(Patient.external_id == "P-00001")
    assert (patient.geo_quelle, patient.geo_plz) == ("plz", "10115")
    lat, lon = plz_data.centroid_map()["10115"]
    assert (patient.latitude, patient.longitude) == (round(lat, 2), round(lon, 2))


def test_update_writes_only_given_fields(clean_db, tmp_path):
    row = patient_row(1)
    import_file("patients", write_rows(tmp_path / "p.json", [row]))
    minimal = {k: row[k] for k in ("external_id", "anrede", "geschlecht", "vorname", "nachname")}
    minimal.update(plz=row["plz"], telefon="030 123")
    report = import_file("patients", write_rows(tmp_path / "p2.csv", [minimal]))
    assert report.updated == 1
    patient = Patient.get(Patient.external_id == "P-00001")
    assert patient.telefon == "030 123"
    assert patient.symptome == row["symptome"] and patient.krankenkasse == row["krankenkasse"]


def test_unchanged_row_in_other_spelling_is_unchanged(clean_db, tmp_path):
    row = {**patient_row(1), "geburtsdatum": "1990-02-01", "symptome": ["Mobbing", "Zwänge"]}
    import_file("patients", write_rows(tmp_path / "p.json", [row]))
    same = {**row, "geburtsdatum": "01.02.1990", "symptome": "Mobbing;Zwänge"}
    same["email"] = f"  {row['email']} "
    same["erfahrung_mit_psychotherapie"] = "ja" if row["erfahrung_mit_psychotherapie"] else "nein"
    report = import_file("patients", write_rows(tmp_path / "p2.json", [same]))
    assert report.summary() == "patients: 0 created, 0 updated, 1 unchanged, 0 rejected"


def test_rejected_row_of_a_stored_record_writes_nothing(clean_db, tmp_path):
    row = patient_row(1)
    import_file("patients", write_rows(tmp_path / "p.json", [row]))
    before = snapshot("patients")
    bad = {**row, "krankenkasse": "HEK", "email": "kaputt"}
    report = import_file("patients", write_rows(tmp_path / "p2.json", [bad]))
    assert (report.updated, len(report.rejected)) == (0, 1)
    assert snapshot("patients") == before
    assert Patient.get().krankenkasse == row["krankenkasse"]


def test_age_range_is_checked_against_stored_values(clean_db, tmp_path):
    row = {**therapist_row(1), "alter_min": 18, "alter_max": 40}
    import_file("therapists", write_rows(tmp_path / "t.json", [row]))
    row.pop("alter_max")
    rows = [{**row, "alter_min": 50}, {**therapist_row(2), "plz": "99999"}]
    report = import_file("therapists", write_rows(tmp_path / "t2.json", rows))
    assert [str(r) for r in report.rejected] == [
        "index 0 (external_id=T-00001): alter_min: alter_min 50 is greater than alter_max 40",
        "index 1 (external_id=T-00002): plz: unknown postal code '99999'",
    ]
    assert Therapist.get().alter_min == 18


def test_duplicate_of_a_rejected_row_is_still_a_duplicate(clean_db, tmp_path):
    rows = [{**patient_row(1), "plz": "99999"}, patient_row(1)]
    report = import_file("patients", write_rows(tmp_path / "p.csv", rows))
    assert [r.field for r in report.rejected] == ["plz", "external_id"]
    assert str(report.rejected[1]) == (
        "line 3 (external_id=P-00001): external_id: duplicate external_id, first seen at line 2"
    )
    assert Patient.select().count() == 0


# --- file details ------------------------------------------------------------------------


def test_csv_line_numbers_count_physical_lines(clean_db, tmp_path):
    header = "external_id,anrede,geschlecht,vorname,nachname,plz,empfehler_der_unterstuetzung"
    text = "\n".join(
        [
            header,
            'P-1,Frau,weiblich,Anna,A,10115,"zwei\nZeilen"',
            "",
            "P-2,Frau,weiblich,Berta,B,99999,",
            "P-3,Frau,weiblich,Clara,C,10115,x,zu viel",
            "P-4,Herr,männlich,Dirk,D,20095",
        ]
    )
    path = tmp_path / "p.csv"
    path.write_text(text + "\n", encoding="utf-8")
    report = import_file("patients", path)
    assert [str(r) for r in report.rejected] == [
        "line 5 (external_id=P-2): plz: unknown postal code '99999'",
        "line 6 (external_id=P-3): row: 8 values but the header has 7 columns",
    ]
    assert report.created == 2
    assert Patient.get(Patient.external_id == "P-1").empfehler_der_unterstuetzung == "zwei\nZeilen"


def test_csv_with_semicolon_delimiter_bom_and_trailing_empty_column(clean_db, tmp_path):
    text = "\ufeffexternal_id;anrede;geschlecht;vorname;nachname;plz;symptome;\n"
    text += 'P-1;Frau;weiblich;Anna;A;01067;"Mobbing;Zwänge";\n'
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    report = import_file("patients", path)
    assert report.created == 1, report.rejected
    assert Patient.get().symptome == ["Mobbing", "Zwänge"]


def test_csv_unknown_column_with_values_rejects_the_row(clean_db, tmp_path):
    rows = [{**patient_row(1), "krankenkase": "AOK"}, patient_row(2)]
    rows[1]["krankenkase"] = ""
    report = import_file("patients", write_rows(tmp_path / "p.csv", rows))
    assert [str(r) for r in report.rejected] == [
        "line 2 (external_id=P-00001): krankenkase: unknown field; did you mean 'krankenkasse'?"
    ]
    assert report.created == 1


def test_json_element_that_is_not_an_object(clean_db, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([patient_row(1), ["P-2"], None]), encoding="utf-8")
    report = import_file("patients", path)
    assert [(r.position, r.field) for r in report.rejected] == [
        ("index 1", "row"),
        ("index 2", "row"),
    ]
    assert report.created == 1


def test_format_option_overrides_the_file_name(clean_db, tmp_path):
    path = tmp_path / "export.txt"
    path.write_text(json.dumps([patient_row(1)]), encoding="utf-8")
    with pytest.raises(ImportFileError, match="cannot tell the format"):
        import_file("patients", path)
    assert import_file("patients", path, fmt="json").created == 1


def test_unknown_kind_is_a_programming_error(clean_db, tmp_path):
    with pytest.raises(ValueError, match="kind"):
        import_file("platzsuche", EXAMPLES / "patients.json")


def test_report_as_dict_and_summary(clean_db, tmp_path):
    rows = [patient_row(1), {**patient_row(2), "vorname": ""}]
    report = import_file("patients", write_rows(tmp_path / "p.csv", rows), progress=True)
    assert report.summary() == "patients: 1 created, 0 updated, 0 unchanged, 1 rejected"
    data = report.as_dict()
    assert {k: data[k] for k in ("kind", "format", "created", "updated", "unchanged")} == {
        "kind": "patients",
        "format": "csv",
        "created": 1,
        "updated": 0,
        "unchanged": 0,
    }
    assert data["rejected"][0]["line"] == 3
    assert data["rejected"][0]["message"] == (
        "line 3 (external_id=P-00002): vorname: required field missing"
    )


def test_no_progress_bar_when_stderr_is_not_a_terminal(clean_db, tmp_path, capsys):
    import_file("patients", write_rows(tmp_path / "p.json", [patient_row(1)]), progress=True)
    assert capsys.readouterr().err == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("progress", [True, False])
def test_progress_bar_on_a_terminal_unless_switched_off(clean_db, tmp_path, monkeypatch, progress):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    import_file("patients", write_rows(tmp_path / "p.json", [patient_row(1)]), progress=progress)
    assert ("import patients" in terminal.getvalue()) is progress


# --- speed: batched statements ------------------------------------------------------------


class _StatementCounter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record):
        sql = record.msg[0] if isinstance(record.msg, tuple) else str(record.msg)
        self.statements.append(sql.split(None, 1)[0].upper())


@pytest.fixture
def statements():
    logger = logging.getLogger("peewee")
    counter = _StatementCounter()
    old_level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    yield counter.statements
    logger.removeHandler(counter)
    logger.setLevel(old_level)


def test_import_uses_batched_statements(clean_db, tmp_path, statements):
    path = write_rows(tmp_path / "p.json", [patient_row(i) for i in range(1, 2001)])
    assert import_file("patients", path).created == 2000
    inserts = statements.count("INSERT")
    assert 1 <= inserts <= 8, statements
    assert len(statements) < 40
    statements.clear()
    assert import_file("patients", path).unchanged == 2000
    assert statements.count("INSERT") == 1  # the audit row, no patient
    assert "UPDATE" not in statements
    assert len(statements) < 40


def test_chunking_keeps_duplicates_across_chunks(clean_db, tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "CHUNK_ROWS", 3)
    rows = [patient_row(i) for i in range(1, 8)] + [patient_row(2)]
    report = import_file("patients", write_rows(tmp_path / "p.json", rows))
    assert report.created == 7
    assert [str(r) for r in report.rejected] == [
        "index 7 (external_id=P-00002): external_id: duplicate external_id, first seen at index 1"
    ]
