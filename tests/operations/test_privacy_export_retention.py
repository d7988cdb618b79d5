"""GDPR Art. 15 export of one patient and the retention run (issue 14)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from db.models import (
    AuditLog,
    Email,
    EmailInhalt,
    Patient,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
)
from operations import OperationError
from operations.privacy import erased_external_id, export_patient, run_retention
from psymatch import settings
from tests import factories as f
from tests.operations.test_privacy import placed_patient
from workers import privacy_actors

NOW = f.NOW


def _cli(cli_env, *args):
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.PROJECT_ROOT,
    )


# --- export -----------------------------------------------------------------------------------


def test_export_holds_the_patients_data_decrypted_and_is_audited(clean_db):
    patient, search = placed_patient()
    call = Telefonanruf.create(
        patient=patient.id,
        geplantes_datum=NOW.date(),
        geplante_zeit="10:00",
        dauer_minuten=10,
        notizen="Rückruf wegen Termin",
    )
    other = f.search()  # another patient: nothing of hers in the export
    before = {m: m.select().count() for m in (Patient, Platzsuche, Email, TherapeutAnfragePatient)}

    data = export_patient(patient.id, "Erika", now=NOW)

    assert data["patient"]["id"] == patient.id
    assert data["patient"]["vorname"] == "Zyprienne"
    assert data["patient"]["nachname"] == "Quellwasserstein"
    assert data["patient"]["telefon"] == "0176 99887766"
    assert data["patient"]["krankenversicherungsnummer"] == "Q987654321"
    assert data["patient"]["geburtsdatum"] == dt.date(1991, 4, 5)
    assert [s["id"] for s in data["searches"]] == [search.id]
    assert data["searches"][0]["status"] == "erfolgreich"
    (line,) = data["bundle_lines"]
    assert line["antwortergebnis"] == "angenommen" and line["platzsuche_id"] == search.id
    assert line["anfrage"]["antworttyp"] is not None
    own = Email.select().where(Email.patient == patient.id)
    assert [e["id"] for e in data["emails"]] == [e.id for e in own]
    email = data["emails"][0]
    body = EmailInhalt.get_by_id(email["id"])
    assert email["empfaenger_email"] == patient.email and email["betreff"]
    assert email["body"]["inhalt_text"] == body.inhalt_text and "Zyprienne" in body.inhalt_text
    assert [c["id"] for c in data["calls"]] == [call.id]
    assert data["calls"][0]["notizen"] == "Rückruf wegen Termin"
    actions = [(a["actor"], a["action"]) for a in data["audit"]]
    assert ("Erika", "patient_exported") in actions
    assert any(a["entity"] == "platzsuche" for a in data["audit"])
    text = json.dumps(data, default=str, ensure_ascii=False)
    assert str(other.patient.nachname) not in text

    after = {m: m.select().count() for m in (Patient, Platzsuche, Email, TherapeutAnfragePatient)}
    assert after == before
    row = AuditLog.get(AuditLog.action == "patient_exported")
    assert (row.actor, row.entity, row.entity_id) == ("Erika", "patient", str(patient.id))


@pytest.mark.parametrize(
    ("patient_id", "actor", "code"),
    [(None, "", "ACTOR_REQUIRED"), (999_999, "Erika", "PATIENT_NOT_FOUND")],
)
def test_export_refusals_write_nothing(clean_db, patient_id, actor, code):
    patient, _ = placed_patient()
    audit_rows = AuditLog.select().count()
    with pytest.raises(OperationError) as error:
        export_patient(patient_id or patient.id, actor)
    assert error.value.code == code
    assert AuditLog.select().count() == audit_rows


def test_cli_export(clean_db, cli_env, tmp_path):
    patient, _ = placed_patient()
    shown = _cli(cli_env, "export", str(patient.id), "--actor", "Erika")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["patient"]["nachname"] == "Quellwasserstein"
    out = tmp_path / "export.json"
    written = _cli(cli_env, "export", str(patient.id), "--actor", "Erika", "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert json.loads(out.read_text())["patient"]["id"] == patient.id
    assert out.stat().st_mode & 0o077 == 0
    unknown = _cli(cli_env, "export", "999999", "--actor", "Erika")
    assert unknown.returncode == 2 and "no patient 999999" in unknown.stderr
    assert _cli(cli_env, "export", str(patient.id)).returncode == 2  # --actor required
    exported = AuditLog.select().where(AuditLog.action == "patient_exported").count()
    assert exported == 2


# --- retention --------------------------------------------------------------------------------


def _closed(status: str, days_ago: int, patient=None) -> Platzsuche:
    search = f.search(patient_obj=patient, status=status)
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=days_ago)
    Platzsuche.update(updated_at=stamp).where(Platzsuche.id == search.id).execute()
    return search


def test_retention_erases_only_patients_closed_long_ago(clean_db):
    days = settings.get().RETENTION_DAYS
    assert days == 1095
    done = _closed("erfolgreich", days + 10)
    cancelled = _closed("abgebrochen", days + 1)
    two_old = _closed("abgebrochen", days + 400)
    _closed("erfolgreich", days + 5, patient=two_old.patient)
    recent = _closed("erfolgreich", days - 1)
    mixed = _closed("abgebrochen", days + 100)
    _closed("abgebrochen", 10, patient=mixed.patient)  # a recent search keeps the patient
    paused = _closed("abgebrochen", days + 100)
    _closed("pausiert", days + 100, patient=paused.patient)
    active = _closed("abgebrochen", days + 100)
    f.search(patient_obj=active.patient)  # aktiv
    no_search = f.patient()
    due = sorted(s.patient_id for s in (done, cancelled, two_old))

    dry = run_retention(dry_run=True)
    assert (dry["eligible"], dry["erased"], dry["patient_ids"]) == (3, 0, due)
    assert not Patient.select().where(Patient.nachname == "gelöscht").exists()

    result = run_retention()
    assert (result["eligible"], result["erased"], result["skipped"]) == (3, 3, 0)
    assert result["patient_ids"] == due
    for patient in Patient.select():
        erased = patient.id in due
        assert (patient.external_id == erased_external_id(patient.id)) is erased, patient.id
        assert (patient.nachname == "gelöscht") is erased
    kept = {recent.patient_id, mixed.patient_id, paused.patient_id, active.patient_id, no_search.id}
    assert not kept & set(due)
    rows = AuditLog.select().where(AuditLog.action == "patient_erased")
    assert sorted(int(r.entity_id) for r in rows) == due
    assert {r.actor for r in rows} == {"retention"}

    audit_rows = AuditLog.select().count()
    again = run_retention()
    assert (again["eligible"], again["erased"], again["patient_ids"]) == (0, 0, [])
    assert AuditLog.select().count() == audit_rows


def test_retention_days_is_a_setting(clean_db):
    search = _closed("erfolgreich", 40)
    settings.override(RETENTION_DAYS=30)
    try:
        assert run_retention(dry_run=True)["patient_ids"] == [search.patient_id]
    finally:
        settings.override(RETENTION_DAYS=settings.Settings.RETENTION_DAYS)
    assert run_retention(dry_run=True)["eligible"] == 0


def test_retention_actor_and_cli(clean_db, cli_env):
    first = _closed("erfolgreich", 2000)
    assert privacy_actors.retention.fn()["erased"] == 1
    assert Patient.get_by_id(first.patient_id).nachname == "gelöscht"
    second = _closed("abgebrochen", 2000)
    dry = _cli(cli_env, "retention", "--dry-run", "--actor", "Erika")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["patient_ids"] == [second.patient_id]
    assert Patient.get_by_id(second.patient_id).nachname != "gelöscht"
    done = _cli(cli_env, "retention", "--actor", "Erika")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["erased"] == 1
    assert Patient.get_by_id(second.patient_id).nachname == "gelöscht"
