"""``psymatch placement list|record``: the placement step staff record after a phone call."""

from __future__ import annotations

import json

from db.models import AuditLog, Platzsuche
from operations.bundles import create_anfrage
from operations.responses import record_response
from tests import factories as f
from tests.conftest import run_cli as psymatch


def placed_search() -> Platzsuche:
    therapist = f.therapist()
    f.searches(3)
    created = create_anfrage(therapist.id, now=f.NOW)
    f.mark_sent(created.anfrage_id, f.NOW)
    patients = [p.patient_id for p in created.selection.patients]
    record_response(
        created.anfrage_id,
        {p: "angenommen" if i == 0 else "abgelehnt_Kapazitaet" for i, p in enumerate(patients)},
        now=f.NOW,
    )
    return Platzsuche.get(Platzsuche.patient == patients[0])


def test_list_and_record_a_confirmed_first_session(clean_db, cli_env):
    search = placed_search()
    listed = psymatch(cli_env, "placement", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["platzsuche_id"] for r in json.loads(listed.stdout)] == [search.id]
    done = psymatch(
        cli_env, "placement", "record", str(search.id), "stattgefunden", "--actor", "Erika"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"search {search.id}: stattgefunden recorded"
    assert Platzsuche.get_by_id(search.id).status == "erfolgreich"
    row = AuditLog.get(AuditLog.action == "record_placement_outcome")
    assert row.actor == "Erika"
    again = psymatch(
        cli_env, "placement", "record", str(search.id), "passt_nicht", "--actor", "Erika"
    )
    assert again.returncode == 0  # the outcome on record stays: nothing changes
    assert (
        again.stdout.strip() == f"search {search.id}: stattgefunden was recorded before, unchanged"
    )
    assert AuditLog.select().where(AuditLog.action == "record_placement_outcome").count() == 1
    assert json.loads(psymatch(cli_env, "placement", "list", "--json").stdout) == []


def test_record_refusals_write_nothing(clean_db, cli_env):
    search = placed_search()
    audit_before = AuditLog.select().count()
    missing = psymatch(
        cli_env, "placement", "record", "999999", "kein_termin", "--actor", "Erika", "--json"
    )
    assert missing.returncode == 1 and json.loads(missing.stdout)["code"] == "PLATZSUCHE_NOT_FOUND"
    wrong = psymatch(cli_env, "placement", "record", str(search.id), "vielleicht", "--actor", "E")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr
    no_actor = psymatch(cli_env, "placement", "record", str(search.id), "kein_termin")
    assert no_actor.returncode == 2
    assert AuditLog.select().count() == audit_before
    assert Platzsuche.get_by_id(search.id).status == "aktiv"
