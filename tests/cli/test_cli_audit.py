"""Every ``psymatch`` command that writes data requires ``--actor NAME`` and writes an
audit row naming that staff member (issue 14, point 3); read-only commands take none."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import pytest
from cryptography.fernet import Fernet

from cli.main import build_parser
from db import crypto, database, migrate
from db.models import ALL_MODELS, AuditLog, Patient, Platzsuche, Therapeutenanfrage
from operations import intake
from psymatch import settings
from tests import factories as f
from tests.conftest import run_cli as psymatch

ACTOR = "Erika Muster"
AS_ERIKA = ("--actor", ACTOR)

# Every command that writes data, and the read-only ones (db status, bundle preview,
# replies parse, outbox status, crypto generate-key, bench, soak, faults): a new
# command has to be put on one side.
WRITING = {
    "db upgrade",
    "db downgrade",
    "import",
    "demo-data",
    "bundle round",
    "bundle create",
    "outbox relay",
    "outbox reconcile",
    "backup",
    "restore",
    "run",
    "erase",
    "export",
    "retention",
    "crypto rotate",
    "geo load",
    "staff add",
    "staff set-role",
    "staff deactivate",
    "staff activate",
    "staff set-password",
    "anfrage close",
    "anfrage expire",
    "placement record",
}


def leaf_parsers(parser: argparse.ArgumentParser, prefix: str = ""):
    """(command line, parser) of every subcommand that takes no further subcommand."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix.strip(), parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaf_parsers(sub, f"{prefix} {name}")


def test_exactly_the_writing_commands_require_an_actor():
    required, seen = set(), set()
    for command, parser in leaf_parsers(build_parser()):
        seen.add(command)
        actor = [a for a in parser._actions if "--actor" in a.option_strings]
        if actor:
            assert actor[0].required, command
            assert actor[0].help == "name of the staff member (written into the audit log)"
            required.add(command)
    assert required == WRITING
    assert {"db status", "bundle preview", "replies parse", "outbox status"} <= seen - required
    assert {"crypto generate-key", "bench emails", "soak", "faults"} <= seen - required


def row_counts() -> dict[str, int]:
    return {m._meta.table_name: m.select().count() for m in ALL_MODELS}


def audit_rows(action: str | None = None) -> list[AuditLog]:
    query = AuditLog.select().order_by(AuditLog.id)
    if action:
        query = query.where(AuditLog.action == action)
    return list(query)


def patients_file(tmp_path, bad: bool = False):
    rows = [
        {
            "external_id": f"P-{n}",
            "anrede": "Frau",
            "geschlecht": "weiblich",
            "vorname": "Zyprienne",
            "nachname": "Quellwasserstein",
            "plz": "10117",
        }
        for n in (1, 2)
    ]
    if bad:
        rows.insert(1, {**rows[0], "external_id": "P-bad", "plz": "99999"})
    path = tmp_path / "patienten.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


# --- without an actor nothing is written ------------------------------------------------------


def write_commands(tmp_path) -> dict[str, list[str]]:
    """Each writing command as it would otherwise run against the test database."""
    file = str(patients_file(tmp_path))
    return {
        "import": ["import", "patients", file],
        "demo-data": ["demo-data", "--therapists", "5", "--patients", "5"],
        "bundle round": ["bundle", "round", "--force"],
        "bundle create": ["bundle", "create", "1"],
        "outbox relay": ["outbox", "relay"],
        "outbox reconcile": ["outbox", "reconcile"],
        "backup": ["backup", str(tmp_path / "db.backup")],
        "erase": ["erase", "1", "--reason", "Antrag"],
        "export": ["export", "1", "--out", str(tmp_path / "export.json")],
        "retention": ["retention"],
        "retention --dry-run": ["retention", "--dry-run"],
        "crypto rotate": ["crypto", "rotate"],
        "geo load": ["geo", "load"],
    }


@pytest.mark.parametrize(
    "command",
    [
        "import",
        "demo-data",
        "bundle round",
        "bundle create",
        "outbox relay",
        "outbox reconcile",
        "backup",
        "erase",
        "export",
        "retention",
        "retention --dry-run",
        "crypto rotate",
        "geo load",
    ],
)
def test_a_writing_command_without_actor_exits_2_and_writes_nothing(
    clean_db, cli_env, tmp_path, command
):
    f.therapist()
    f.searches(4)
    before = row_counts()
    result = psymatch(cli_env, *write_commands(tmp_path)[command])
    assert result.returncode == 2, result.stderr
    assert "the following arguments are required: --actor" in result.stderr
    assert result.stdout == ""
    assert row_counts() == before
    assert not (tmp_path / "db.backup").exists() and not (tmp_path / "export.json").exists()


@pytest.mark.parametrize(
    ("actor", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 101, "has 101 characters, at most 100"),
        ("Erika\nMuster", "must not contain control characters"),
    ],
)
def test_an_invalid_actor_exits_2_and_writes_nothing(clean_db, cli_env, tmp_path, actor, message):
    before = row_counts()
    result = psymatch(cli_env, "import", "patients", str(patients_file(tmp_path)), "--actor", actor)
    assert result.returncode == 2
    assert f"argument --actor: the name of the staff member {message}" in result.stderr
    assert row_counts() == before


def test_the_schema_commands_without_actor_touch_nothing(scratch_database_url, cli_env, tmp_path):
    env = {**cli_env, "DATABASE_URL": scratch_database_url}
    backup = tmp_path / "x.backup"
    backup.write_bytes(b"")
    for command in (["db", "upgrade"], ["db", "downgrade"], ["restore", str(backup)]):
        result = psymatch(env, *command)
        assert result.returncode == 2 and "--actor" in result.stderr, command
    status = psymatch(env, "db", "status", "--json")
    assert json.loads(status.stdout)["current"] == 0


def test_the_actor_is_stored_stripped(clean_db, cli_env):
    result = psymatch(cli_env, "geo", "load", "--actor", f"  {ACTOR} ")
    assert result.returncode == 0, result.stderr
    [row] = audit_rows("geo_load")
    assert row.actor == ACTOR and row.entity == "plz_centroids"
    assert row.details["before"] == row.details["after"] > 0


# --- import ---------------------------------------------------------------------------------------


def test_import_audits_the_real_counts_of_a_file_with_a_bad_row(clean_db, cli_env, tmp_path):
    path = patients_file(tmp_path, bad=True)
    result = psymatch(cli_env, "import", "patients", str(path), *AS_ERIKA)
    assert result.returncode == 1  # a rejected row
    assert Patient.select().count() == 2
    [row] = audit_rows()
    assert (row.actor, row.action, row.entity) == (ACTOR, "import", "patients")
    assert row.details == {
        "kind": "patients",
        "file": "patienten.json",
        "format": "json",
        "rows": 3,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
    }
    again = psymatch(cli_env, "import", "patients", str(path), *AS_ERIKA, "--json")
    assert again.returncode == 1
    details = audit_rows()[-1].details
    assert (details["created"], details["unchanged"], details["rejected"]) == (0, 2, 1)
    assert "Quellwasserstein" not in json.dumps([r.details for r in audit_rows()])


def test_an_unreadable_file_is_audited_as_failed(clean_db, cli_env, tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("vorname;nachname\nZyprienne;Quellwasserstein\n", encoding="utf-8")
    result = psymatch(cli_env, "import", "patients", str(path), *AS_ERIKA)
    assert result.returncode == 1 and "lacks the required column" in result.stderr
    [row] = audit_rows()
    assert row.details["failed"] == "ImportFileError" and row.details["file"] == "broken.csv"
    assert row.details["created"] == 0
    assert "Quellwasserstein" not in json.dumps(row.details)


def test_an_import_that_fails_partway_is_audited_with_the_committed_counts(
    clean_db, tmp_path, monkeypatch
):
    path = tmp_path / "many.json"
    rows = [
        {
            "external_id": f"P-{n}",
            "anrede": "Herr",
            "geschlecht": "männlich",
            "vorname": "Ulf",
            "nachname": "Beispiel",
            "plz": "10117",
        }
        for n in range(5)
    ]
    path.write_text(json.dumps(rows), encoding="utf-8")
    monkeypatch.setattr(intake, "CHUNK_ROWS", 2)
    write = intake._Importer.write
    calls = []

    def failing_second_chunk(self, valid):
        calls.append(len(valid))
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return write(self, valid)

    monkeypatch.setattr(intake._Importer, "write", failing_second_chunk)
    with pytest.raises(RuntimeError):
        intake.import_file("patients", path, actor=ACTOR)
    assert Patient.select().count() == 2  # the first chunk committed
    [row] = audit_rows()
    assert row.actor == ACTOR and row.action == "import"
    assert row.details["failed"] == "RuntimeError"
    assert (row.details["rows"], row.details["created"]) == (5, 2)


def test_import_file_needs_an_actor(clean_db, tmp_path):
    with pytest.raises(ValueError, match="must not be empty"):
        intake.import_file("patients", patients_file(tmp_path), actor=" ")
    assert Patient.select().count() == 0 and audit_rows() == []


# --- demo data, bundles, outbox ---------------------------------------------------------------


def test_demo_data_is_audited(clean_db, cli_env):
    args = ["demo-data", "--therapists", "20", "--patients", "10", "--seed", "4", "--json"]
    result = psymatch(cli_env, *args, *AS_ERIKA)
    assert result.returncode == 0, result.stderr
    [row] = audit_rows()
    assert (row.actor, row.action) == (ACTOR, "demo_data")
    assert row.details["therapists"] == 20 and row.details["patients"] == 10
    assert row.details["seed"] == 4 and row.details["platzsuchen"] >= 0


def test_bundle_round_and_create_write_their_own_rows_once(clean_db, cli_env):
    f.therapist()
    f.searches(4)
    dry = psymatch(cli_env, "bundle", "round", "--force", "--dry-run", *AS_ERIKA)
    assert dry.returncode == 0, dry.stderr
    assert audit_rows() == []  # a dry run writes nothing
    done = psymatch(cli_env, "bundle", "round", "--force", *AS_ERIKA)
    assert done.returncode == 0, done.stderr
    assert [(r.actor, r.action) for r in audit_rows()] == [
        (ACTOR, "create_anfrage"),
        (ACTOR, "bundle_round"),
    ]
    other = f.therapist(plz="10117")
    f.searches(2)
    created = psymatch(cli_env, "bundle", "create", str(other.id), *AS_ERIKA)
    assert created.returncode == 0, created.stderr
    [row] = audit_rows()[2:]
    assert (row.actor, row.action, row.entity) == (ACTOR, "create_anfrage", "therapeutenanfrage")
    assert Therapeutenanfrage.select().count() == 2


def test_outbox_relay_and_reconcile_are_audited(clean_db, cli_env, redis_url):
    env = {**cli_env, "REDIS_URL": redis_url}
    relay = psymatch(env, "outbox", "relay", *AS_ERIKA)
    assert relay.returncode == 0, relay.stderr
    reconcile = psymatch(env, "outbox", "reconcile", "--stale-after-seconds", "60", *AS_ERIKA)
    assert reconcile.returncode == 0, reconcile.stderr
    first, second = audit_rows()
    assert (first.actor, first.action, first.details) == (ACTOR, "outbox_relay", {"enqueued": 0})
    assert (second.actor, second.action) == (ACTOR, "outbox_reconcile")
    assert second.details["stale_after_seconds"] == 60 and second.details["enqueued"] == 0


# --- privacy and keys ---------------------------------------------------------------------------


def test_erase_export_and_retention_are_audited(clean_db, cli_env, tmp_path):
    patient = f.patient()
    search = f.search(patient_obj=patient, status="abgebrochen")
    exported = psymatch(
        cli_env, "export", str(patient.id), "--out", str(tmp_path / "e.json"), *AS_ERIKA
    )
    assert exported.returncode == 0, exported.stderr
    erased = psymatch(cli_env, "erase", str(patient.id), "--reason", "Antrag", *AS_ERIKA)
    assert erased.returncode == 0, erased.stderr
    assert [(r.actor, r.action) for r in audit_rows()] == [
        (ACTOR, "patient_exported"),
        (ACTOR, "patient_erased"),
    ]

    old = f.search(status="erfolgreich")
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=3000)
    Platzsuche.update(updated_at=stamp).where(Platzsuche.id.in_([old.id, search.id])).execute()
    dry = psymatch(cli_env, "retention", "--dry-run", *AS_ERIKA)
    assert dry.returncode == 0, dry.stderr
    assert len(audit_rows()) == 2  # a dry run writes nothing
    done = psymatch(cli_env, "retention", *AS_ERIKA)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["erased"] == 1
    erasure, run = audit_rows()[2:]
    assert (erasure.actor, erasure.action, erasure.entity_id) == (
        ACTOR,  # run by hand: the operator, not the clock's "retention"
        "patient_erased",
        str(old.patient_id),
    )
    assert (run.actor, run.action) == (ACTOR, "retention_run")
    assert {k: run.details[k] for k in ("eligible", "erased", "skipped")} == {
        "eligible": 1,
        "erased": 1,
        "skipped": 0,
    }
    assert "patient_ids" not in run.details


def test_key_rotation_is_audited_at_start_and_end(clean_db, cli_env):
    f.patient(vorname="Rotraut")
    new = Fernet.generate_key().decode()
    keys, before = f"{new},{settings.DEMO_ENCRYPTION_KEY}", settings.get().ENCRYPTION_KEYS
    env = {**cli_env, "ENCRYPTION_KEYS": keys}
    settings.override(ENCRYPTION_KEYS=keys)  # to read what the command encrypted
    try:
        result = psymatch(env, "crypto", "rotate", *AS_ERIKA)
        assert result.returncode == 0, result.stderr
        started, done = audit_rows()
        assert (started.actor, started.action) == (ACTOR, "crypto_rotate_started")
        assert (done.actor, done.action, done.entity) == (ACTOR, "crypto_rotate", "encryption")
        columns = done.details["columns"]
        assert columns and all("." in column for column in columns)
        assert done.details["values"] == sum(columns.values()) >= 1
        assert new not in json.dumps(done.details) and "failed" not in done.details
    finally:
        Patient.delete().execute()  # encrypted with the new key
        AuditLog.delete().execute()
        settings.override(ENCRYPTION_KEYS=before)

    refused = psymatch({**cli_env, "ENCRYPTION_KEYS": "x"}, "crypto", "rotate", *AS_ERIKA)
    assert refused.returncode == 1 and audit_rows() == []  # an unusable key: no row


# --- schema ---------------------------------------------------------------------------------------


def plain(details):
    """Stored audit details: JSON, or (from migration 0010 on) a Fernet token of JSON."""
    if details is None or isinstance(details, dict):
        return details
    try:
        return json.loads(details)
    except ValueError:
        return json.loads(crypto.decrypt(details))


def scratch_audit(url: str) -> list[tuple[str, str, dict]]:
    """The audit rows of a database at any schema version, read without the model."""
    scratch = database.database_from_url(url)
    try:
        query = 'SELECT actor, action, details FROM "audit_log" ORDER BY id'
        return [(a, b, plain(d)) for a, b, d in scratch.execute_sql(query).fetchall()]
    finally:
        database.release(scratch)


def test_db_upgrade_and_downgrade_are_audited_while_the_audit_table_exists(
    scratch_database_url, cli_env
):
    env = {**cli_env, "DATABASE_URL": scratch_database_url}
    head = migrate.head_version()

    low = psymatch(env, "db", "upgrade", "--to", "1", "--no-geo", "--actor", "release")
    assert low.returncode == 0, low.stderr
    assert (
        f"no audit row written: the database is at schema version 1, audit rows need version "
        f"{head}" in low.stderr
    )

    up = psymatch(env, "db", "upgrade", "--no-geo", "--actor", "release")
    assert up.returncode == 0, up.stderr
    [(actor, action, details)] = scratch_audit(scratch_database_url)
    assert (actor, action) == ("release", "db_upgrade")
    assert (details["from"], details["to"], details["target"]) == (1, head, head)
    assert details["applied"][0] == "0002_operations" and len(details["applied"]) == head - 1

    # written at the head before the first step, carried along by the step
    down = psymatch(env, "db", "downgrade", *AS_ERIKA)
    assert down.returncode == 0, down.stderr
    assert down.stderr == ""
    assert scratch_audit(scratch_database_url)[-1] == (
        ACTOR,
        "db_downgrade",
        {"from": head, "to": head - 1, "steps": [details["applied"][-1]]},
    )

    # below the head the model no longer fits the table: no row, and the command says so
    gone = psymatch(env, "db", "downgrade", "--to", "0", *AS_ERIKA)
    assert gone.returncode == 0, gone.stderr
    assert "database now at version 0" in gone.stdout
    assert f"no audit row written: the database is at schema version {head - 1}" in gone.stderr


def test_db_upgrade_at_head_is_audited_too(clean_db, cli_env):
    result = psymatch(cli_env, "db", "upgrade", "--actor", "release")
    assert result.returncode == 0, result.stderr
    assert f"database already at version {migrate.head_version()}" in result.stdout
    [row] = audit_rows()
    assert (row.actor, row.action, row.details["applied"]) == ("release", "db_upgrade", [])
    assert row.details["plz_centroids"] > 0
