"""scripts/backup and scripts/restore: a round trip keeps every row, compared by checksum."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from db import crypto, database
from db.models import ALL_MODELS
from operations.bundles import create_anfrage, run_bundle_round
from operations.responses import record_response
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
TABLES = [m._meta.table_name for m in ALL_MODELS] + ["schema_migrations"]


def fingerprint(url: str, but_audit_action: str = "") -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row (ordered by the first column) per table;
    without the audit rows of ``but_audit_action``."""
    db = database.database_from_url(url)
    try:
        out = {}
        for table in TABLES:
            where = f" WHERE action <> '{but_audit_action}'" if table == "audit_log" else ""
            rows = db.execute_sql(f'SELECT * FROM "{table}"{where} ORDER BY 1').fetchall()
            out[table] = (len(rows), hashlib.md5(repr(rows).encode()).hexdigest())
        return out
    finally:
        database.release(db)


def seed():
    for _ in range(3):
        f.therapist()
    f.searches(8)
    run_bundle_round(f.NOW)
    extra = f.therapist(plz="10117")
    created = create_anfrage(extra.id, now=f.NOW)
    f.mark_sent(created.anfrage_id)
    record_response(
        created.anfrage_id, {p.patient_id: "angenommen" for p in created.selection.patients}
    )


@pytest.fixture
def empty_target(backend, database_url, tmp_path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"restore_{uuid.uuid4().hex[:8]}"
    admin = database.database_from_url(database_url)
    admin.execute_sql(f'CREATE DATABASE "{name}"')
    yield database_url.rsplit("/", 1)[0] + f"/{name}"
    database.release(admin)
    admin = database.database_from_url(database_url)
    admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}"')
    database.release(admin)


def audit_rows(url: str, action: str) -> list[tuple]:
    db = database.database_from_url(url)
    try:
        query = 'SELECT actor, details FROM "audit_log" WHERE action = ' + db.param
        return db.execute_sql(query, (action,)).fetchall()
    finally:
        database.release(db)


def run(script, file, url, env):
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / script), str(file), "--actor", "Erika"],
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_round_trip_keeps_counts_and_checksums(clean_db, migrated, empty_target, cli_env, tmp_path):
    seed()
    clean_db.close()
    before = fingerprint(migrated)
    assert before["therapeutenanfrage"][0] == 4 and before["audit_log"][0] > 0
    file = tmp_path / "operations.backup"
    made = run("backup", file, migrated, cli_env)
    assert made.returncode == 0, made.stderr
    assert file.stat().st_size > 0
    restored = run("restore", file, empty_target, cli_env)
    assert restored.returncode == 0, restored.stderr
    # The backup's audit row is written after the dump, the restore's into the restored
    # database: apart from that one, the restored database is the one backed up.
    assert fingerprint(empty_target, but_audit_action="restore") == before
    assert [actor for actor, _ in audit_rows(migrated, "backup")] == ["Erika"]
    assert audit_rows(empty_target, "backup") == []
    [(actor, details)] = audit_rows(empty_target, "restore")
    if not isinstance(details, dict):  # JSON or, from migration 0010 on, encrypted JSON
        details = json.loads(details if details.startswith("{") else crypto.decrypt(details))
    assert actor == "Erika" and details["file"] == "operations.backup"
    assert details["bytes"] == file.stat().st_size and details["schema_version"] > 0


def test_restore_refuses_a_database_that_is_not_empty(clean_db, migrated, cli_env, tmp_path):
    file = tmp_path / "operations.backup"
    assert run("backup", file, migrated, cli_env).returncode == 0
    refused = run("restore", file, migrated, cli_env)
    assert refused.returncode == 1
    assert "not empty" in refused.stderr and refused.stderr.count("\n") == 1
