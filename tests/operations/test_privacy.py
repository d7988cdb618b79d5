"""GDPR erasure: personal data gone, metrics-relevant rows unchanged, refusals change nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from db.models import (
    AuditLog,
    Email,
    EmailInhalt,
    InboundMessage,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
)
from operations import OperationError
from operations.bundles import create_anfrage
from operations.privacy import erase_patient
from operations.responses import record_response
from operations.searches import update_platzsuche
from operations.sending import queue_placement_email, send_anfrage
from psymatch import settings
from tests import factories as f

NOW = f.NOW


def placed_patient():
    """A patient placed through an accepted bundle, with her own placement email."""
    therapist = f.therapist(telefon="030 123")
    patient = f.patient(
        vorname="Zyprienne",
        nachname="Quellwasserstein",
        telefon="0176 99887766",
        strasse="Verborgener Pfad 41",
        krankenversicherungsnummer="Q987654321",
        geburtsdatum=f.dt.date(1991, 4, 5),
    )
    search = f.search(patient_obj=patient)
    f.searches(2)
    anfrage_id = create_anfrage(therapist.id, now=NOW).anfrage_id
    send_anfrage(anfrage_id, now=NOW)
    lines = {r.patient_id for r in Therapeutenanfrage.get_by_id(anfrage_id).zeilen}
    record_response(anfrage_id, dict.fromkeys(lines, "angenommen"), now=NOW)
    update_platzsuche(search.id, vermittelter_therapeut_id=therapist.id)
    update_platzsuche(search.id, status="erfolgreich")
    queue_placement_email(search.id, "email_contact")
    return Patient.get_by_id(patient.id), search


def metrics() -> dict:
    """What docs/domain.md §14 counts: searches by status, placements, acceptances, waiting days."""
    return {
        "searches": sorted(
            (s.id, s.status, s.created_at, s.erfolgreiche_vermittlung_datum,
             s.vermittelter_therapeut_id)
            for s in Platzsuche.select()
        ),
        "anfragen": sorted(
            (a.id, a.anfragegroesse, a.angenommen_anzahl, a.abgelehnt_anzahl, a.antworttyp,
             a.gesendet_datum, a.antwort_datum)
            for a in Therapeutenanfrage.select()
        ),
        "lines": sorted(
            (r.id, r.patient_id, r.status, r.antwortergebnis)
            for r in TherapeutAnfragePatient.select()
        ),
        "patients": sorted((p.id, p.status, p.plz) for p in Patient.select()),
        "emails": sorted((e.id, e.art, e.status) for e in Email.select()),
    }  # fmt: skip


def test_erasure_removes_personal_data_and_keeps_the_metrics(clean_db):
    patient, search = placed_patient()
    anfrage = Therapeutenanfrage.get()
    inquiry = Email.get(Email.therapeutenanfrage == anfrage.id)
    EmailInhalt.update(inhalt_text="Frau Zyprienne Quellwasserstein, Tel. 0176 99887766").where(
        EmailInhalt.email == inquiry.id
    ).execute()
    InboundMessage.create(
        provider="raw",
        message_key="<r1@example.org>",
        raw_payload="Ich nehme Frau Quellwasserstein gerne.",
        therapeutenanfrage=anfrage.id,
    )
    before = metrics()
    result = erase_patient(patient.id, "Erika Muster", "Antrag der Patientin vom 29.11.")
    assert result["own_emails"] == 1 and not result["already_erased"]
    assert metrics() == before

    erased = Patient.get_by_id(patient.id)
    assert (erased.vorname, erased.nachname) == ("gelöscht", "gelöscht")
    assert (erased.email, erased.telefon, erased.strasse) == (None, None, None)
    assert erased.krankenversicherungsnummer is None
    assert erased.geburtsdatum == f.dt.date(1991, 1, 1)
    assert erased.external_id == f"gelöscht-{patient.id}"
    own = Email.get(Email.patient == patient.id)
    assert (own.inhalt.inhalt_text, own.inhalt.inhalt_html) == ("", "")
    assert own.empfaenger_email == "gelöscht"
    for email in Email.select():
        body = email.inhalt
        for text in (email.betreff, body.inhalt_text, body.inhalt_html, email.empfaenger_name):
            assert "Quellwasserstein" not in (text or "")
    assert Email.get_by_id(inquiry.id).inhalt.inhalt_text == "Frau gelöscht, Tel. gelöscht"
    assert InboundMessage.get().raw_payload == "Ich nehme Frau gelöscht gerne."
    entry = AuditLog.get(AuditLog.action == "patient_erased")
    assert (entry.actor, entry.entity_id) == ("Erika Muster", str(patient.id))
    assert entry.reason == "Antrag der Patientin vom 29.11."

    again = erase_patient(patient.id, "Erika Muster", "nochmal")
    assert again == {"patient_id": patient.id, "already_erased": True}
    assert AuditLog.select().where(AuditLog.action == "patient_erased").count() == 1
    assert metrics() == before


@pytest.mark.parametrize(
    "patient_id,actor,reason,code",
    [
        (999_999, "Erika", "Antrag", "PATIENT_NOT_FOUND"),
        (None, "", "Antrag", "ACTOR_REQUIRED"),
        (None, "Erika", "  ", "REASON_REQUIRED"),
    ],
)
def test_refusals_change_nothing(clean_db, patient_id, actor, reason, code):
    patient, _ = placed_patient()
    before = (metrics(), Patient.get_by_id(patient.id).nachname)
    with pytest.raises(OperationError) as error:
        erase_patient(patient_id or patient.id, actor, reason)
    assert error.value.code == code
    assert (metrics(), Patient.get_by_id(patient.id).nachname) == before


def test_a_running_search_must_be_cancelled_first(clean_db):
    search = f.search()
    with pytest.raises(OperationError) as error:
        erase_patient(search.patient_id, "Erika", "Antrag")
    assert error.value.code == "ACTIVE_SEARCH_EXISTS"
    assert Patient.get_by_id(search.patient_id).nachname.startswith("Pat")
    update_platzsuche(search.id, status="abgebrochen")
    assert not erase_patient(search.patient_id, "Erika", "Antrag")["already_erased"]


def test_cli_erase(clean_db, cli_env):
    patient, _ = placed_patient()

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "erase", *args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=settings.PROJECT_ROOT,
        )

    missing = cli(str(patient.id), "--actor", "Erika")
    assert missing.returncode == 2  # argparse: --reason is required
    unknown = cli("999999", "--actor", "Erika", "--reason", "Antrag")
    assert unknown.returncode == 1
    assert unknown.stderr == "psymatch: error: PATIENT_NOT_FOUND: no patient 999999\n"
    done = cli(str(patient.id), "--actor", "Erika", "--reason", "Antrag")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"patient {patient.id} erased")
    assert Patient.get_by_id(patient.id).nachname == "gelöscht"


def test_console_button_needs_the_confirmation(clean_db):
    from console.searches import STATUS_FILTERS, SearchesPanel

    patient, search = placed_patient()
    panel = SearchesPanel(today=NOW.date())
    panel.status_filter.value = dict(STATUS_FILTERS)["alle"]
    panel.search_select.value = search.id
    panel.erase_actor.value = "Erika Muster"
    panel.erase_reason.value = "Antrag der Patientin"
    panel.erase_button.click()
    assert Patient.get_by_id(patient.id).nachname == "Quellwasserstein"
    panel.erase_confirm.value = True
    panel.erase_button.click()
    assert Patient.get_by_id(patient.id).nachname == "gelöscht"
    assert AuditLog.get(AuditLog.action == "patient_erased").actor == "Erika Muster"
