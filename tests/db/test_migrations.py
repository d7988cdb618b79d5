"""Migrations: up to head, down to empty, up again; the schema equals the models."""

from __future__ import annotations

import datetime as dt
import json

import peewee
import pytest

from db import crypto, database, migrate
from db.migrations.v0010_sealed_health_data import COLUMNS as SEALED
from db.migrations.v0010_sealed_health_data import VERSION as SEALED_VERSION
from db.models import (
    ALL_MODELS,
    DOMAIN_MODELS,
    OPERATIONS_MODELS,
    AuditLog,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from tests.conftest import run_cli

SILENT = {"report": lambda _: None}


@pytest.fixture
def scratch(scratch_database_url):
    database.init(scratch_database_url)
    yield scratch_database_url
    database.db.close()


def tables() -> set[str]:
    return set(database.db.get_tables()) - {"schema_migrations"}


def table_names(models) -> set[str]:
    return {m._meta.table_name for m in models}


# the tables of 0001 (the domain tables less the email bodies of 0007)
V1_TABLES = table_names(DOMAIN_MODELS) - {"email_inhalte"}
# the tables 0008 adds
V8_TABLES = {"webhook_replay_marker", "link_klick"}
STAFF_TABLES = {"mitarbeiter"}  # migration "mitarbeiter" (staff accounts)
CONFLICT_TABLES = {"konflikt_erledigungen"}  # migration "konflikt_erledigung"


def plain_field(field):
    """The field a column sealed by 0010 had before: a date, JSON or text in plaintext."""
    if isinstance(field, crypto.EncryptedDateField):
        return peewee.DateField(null=field.null, column_name=field.column_name)
    if isinstance(field, crypto.EncryptedJSONField):
        return peewee.JSONField(null=field.null, default=field.default)
    return peewee.TextField(null=field.null, default=field.default)


def create_at_version(model, **values):
    """``model.create`` for a table that may lack columns a later version adds, and whose
    columns sealed by 0010 are still plaintext below it."""
    table = model._meta.table_name
    present = {c.name for c in database.db.get_columns(table)}
    missing = [f for f in model._meta.sorted_fields if f.column_name not in present]
    sealed = SEALED.get(table, {}) if migrate.current_version() < SEALED_VERSION else {}
    plain = [f for f in model._meta.sorted_fields if f.column_name in sealed]
    for field in missing:
        model._meta.remove_field(field.name)
    for field in plain:
        model._meta.add_field(field.name, plain_field(field))
    try:
        return model.create(**values)
    finally:
        for field in missing + plain:
            model._meta.add_field(field.name, field)


def seed_domain_rows() -> dict:
    therapist = create_at_version(
        Therapist,
        external_id="T-1",
        anrede="Frau",
        geschlecht="weiblich",
        vorname="Anna",
        nachname="Berg",
        plz="10115",
        telefonische_erreichbarkeit={"Mo": ["09:00-10:00"]},
    )
    patient = create_at_version(
        Patient,
        external_id="P-1",
        anrede="Herr",
        geschlecht="männlich",
        vorname="Jonas",
        nachname="Kraus",
        plz="10117",
        symptome=["Schlafstörungen"],
        geburtsdatum=dt.date(1990, 5, 1),
    )
    search = Platzsuche.create(patient=patient, ausgeschlossene_therapeuten=[7, {"id": 8}])
    anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1)
    TherapeutAnfragePatient.create(
        therapeutenanfrage=anfrage, platzsuche=search, patient=patient, position_in_anfrage=1
    )
    AuditLog.create(actor="test", action="seed", entity="patient", entity_id=str(patient.id))
    return domain_row_counts()


def domain_row_counts() -> dict[str, int]:
    """Rows per domain table the database has at its version (read raw: the models
    may name columns an older version lacks)."""
    return {
        table: database.db.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        for table in sorted(table_names(DOMAIN_MODELS) & tables())
    }


def test_up_to_head_down_to_empty_and_up_again(scratch):
    head = migrate.head_version()
    assert head >= 3
    migrate.upgrade(**SILENT)
    assert migrate.current_version() == head
    assert tables() == table_names(ALL_MODELS)

    migrate.downgrade(to=0, **SILENT)
    assert migrate.current_version() == 0
    assert tables() == set()

    migrate.upgrade(**SILENT)
    assert tables() == table_names(ALL_MODELS)
    assert [s["applied"] for s in migrate.status()] == [True] * head


def columns(table: str) -> set[str]:
    return {c.name for c in database.db.get_columns(table)}


def test_step_by_step_each_version_has_exactly_its_schema(scratch):
    migrate.upgrade(to=1, **SILENT)
    assert tables() == V1_TABLES
    assert "auswahl" not in columns("therapeut_anfrage_patient")
    migrate.upgrade(to=2, **SILENT)
    assert tables() == (
        table_names(ALL_MODELS) - {"email_inhalte"} - V8_TABLES - STAFF_TABLES - CONFLICT_TABLES
    )
    migrate.upgrade(to=3, **SILENT)
    assert "auswahl" in columns("therapeut_anfrage_patient")
    migrate.downgrade(**SILENT)  # default: one step
    assert migrate.current_version() == 2
    assert "auswahl" not in columns("therapeut_anfrage_patient")
    migrate.downgrade(**SILENT)
    assert tables() == V1_TABLES


def test_the_conflict_step_adds_the_settlements_and_keeps_every_anfrage(scratch):
    version = next(m.version for m in migrate.discover() if m.name == "konflikt_erledigung")
    migrate.upgrade(to=version - 1, **SILENT)
    before = seed_domain_rows()
    assert not CONFLICT_TABLES & tables()
    assert "konflikt_anfrage_id" not in columns("therapeutenanfrage")
    migrate.upgrade(to=version, **SILENT)
    assert tables() >= CONFLICT_TABLES
    assert "konflikt_anfrage_id" in columns("therapeutenanfrage")
    assert domain_row_counts() == before
    migrate.downgrade(to=version - 1, **SILENT)
    assert not CONFLICT_TABLES & tables()
    assert "konflikt_anfrage_id" not in columns("therapeutenanfrage")
    assert domain_row_counts() == before


def test_the_staff_step_adds_and_drops_only_the_accounts_table(scratch):
    version = next(m.version for m in migrate.discover() if m.name == "mitarbeiter")
    migrate.upgrade(to=version - 1, **SILENT)
    before = tables()
    assert not STAFF_TABLES & before
    migrate.upgrade(to=version, **SILENT)
    assert tables() == before | STAFF_TABLES
    assert {"benutzername", "rolle", "passwort_hash", "aktiv"} <= columns("mitarbeiter")
    migrate.downgrade(to=version - 1, **SILENT)
    assert tables() == before


def test_downgrading_the_index_step_keeps_every_row(scratch):
    """0004 promises to drop only its two indexes."""
    migrate.upgrade(to=4, **SILENT)
    before = seed_domain_rows()
    indexes = {i.name for i in database.db.get_indexes("emails")}
    assert "emails_recipient_normalised" in indexes
    migrate.downgrade(**SILENT)
    assert migrate.current_version() == 3
    assert "emails_recipient_normalised" not in {i.name for i in database.db.get_indexes("emails")}
    assert domain_row_counts() == before


def test_downgrading_the_explanations_step_keeps_every_row(scratch):
    """0003 promises to drop only the explanation column."""
    migrate.upgrade(**SILENT)
    before = seed_domain_rows()
    TherapeutAnfragePatient.update(auswahl={"soft_passed": ["S1"]}).execute()
    migrate.downgrade(to=2, **SILENT)
    assert migrate.current_version() == 2
    database.db.close()  # peewee would select the dropped column: read the rows raw
    assert domain_row_counts() == {t: n for t, n in before.items() if t != "email_inhalte"}
    assert database.db.execute_sql('SELECT COUNT(*) FROM "audit_log"').fetchone()[0] == 1
    migrate.upgrade(**SILENT)
    assert TherapeutAnfragePatient.get().auswahl is None


def test_downgrading_the_operations_step_keeps_the_domain_data(scratch):
    """0002 promises to drop only the operational tables."""
    migrate.upgrade(**SILENT)
    before = seed_domain_rows()
    migrate.downgrade(to=1, **SILENT)
    assert not table_names(OPERATIONS_MODELS) & tables()
    assert domain_row_counts() == {t: n for t, n in before.items() if t != "email_inhalte"}
    migrate.upgrade(**SILENT)
    assert Patient.get(Patient.external_id == "P-1").symptome == ["Schlafstörungen"]
    assert Platzsuche.get().ausgeschlossene_therapeuten == [7, {"id": 8}]
    assert Therapeutenanfrage.select().count() == 1


def test_migrated_schema_matches_the_models(scratch):
    migrate.upgrade(**SILENT)
    for model in ALL_MODELS:
        table = model._meta.table_name
        columns = {c.name: c for c in database.db.get_columns(table)}
        expected = {f.column_name: f for f in model._meta.sorted_fields}
        assert set(columns) == set(expected), table
        for name, field in expected.items():
            assert columns[name].null == field.null, f"{table}.{name} nullability"
        indexes = {i.name for i in database.db.get_indexes(table)}
        for index in model._meta.fields_to_index():
            name = index._name
            # PostgreSQL cuts identifiers at 63 characters
            assert {name, name[:63]} & indexes, f"{table}: index {name} missing"


def test_upgrade_refuses_a_version_it_does_not_know(scratch):
    with pytest.raises(migrate.MigrationError, match="no migration version 99"):
        migrate.upgrade(to=99, **SILENT)
    assert migrate.current_version() == 0


def test_a_failing_step_leaves_the_previous_version(scratch, monkeypatch):
    migrate.upgrade(to=1, **SILENT)
    second = migrate.discover()[1]
    broken = {**second.module.UP, database.dialect(): ["CREATE TABLE broken (", "x"]}
    monkeypatch.setattr(second.module, "UP", broken)
    with pytest.raises(peewee.DatabaseError):
        migrate.upgrade(**SILENT)
    assert migrate.current_version() == 1
    if database.is_postgres():  # DDL is transactional there: nothing half-created
        assert tables() == V1_TABLES


def run_db(url, *args):
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "PSYMATCH_MODE": "demo"}
    return run_cli(env, "db", *args, timeout=120)


def test_cli_status_upgrade_downgrade(scratch):
    status = run_db(scratch, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["current"] == 0

    up = run_db(scratch, "upgrade", "--no-geo", "--actor", "release")
    assert up.returncode == 0, up.stderr
    assert "applied 0001_domain" in up.stdout and "applied 0002_operations" in up.stdout
    assert "applied 0003_bundle_explanations" in up.stdout
    assert "applied 0004_address_indexes" in up.stdout

    down = run_db(scratch, "downgrade", "--to", "0", "--actor", "release")
    assert down.returncode == 0, down.stderr
    assert "database now at version 0" in down.stdout

    bad = run_db(scratch, "downgrade", "--to", "5", "--actor", "release")
    assert bad.returncode == 1
    assert (
        bad.stderr.startswith("psymatch: error: cannot downgrade") and bad.stderr.count("\n") == 1
    )


def test_cli_reports_an_unusable_database_url_in_one_line():
    result = run_db("mysql://nowhere/db", "status")
    assert result.returncode == 1
    assert result.stderr == (
        "psymatch: error: DATABASE_URL 'mysql://nowhere/db': unsupported scheme 'mysql' "
        "(use sqlite:/// or postgresql://)\n"
    )


def raw(sql: str):
    return database.db.execute_sql(sql).fetchall()


def test_encryption_step_decrypts_on_downgrade_and_encrypts_on_upgrade(scratch):
    """0005 keeps every row and turns the stored values into tokens and back; 0007 moves
    the bodies out of ``emails`` and back without losing one."""
    from db import crypto
    from db.models import Email, EmailInhalt

    migrate.upgrade(**SILENT)
    before = seed_domain_rows()
    patient = Patient.get(Patient.external_id == "P-1")
    Patient.update(email="jonas.kraus@example.com", telefon="030 99887766").execute()
    for key, therapist, to_patient in (("t", Therapist.get().id, None), ("p", None, patient.id)):
        email = Email.create(
            therapist=therapist,
            patient=to_patient,
            art="vermittlung" if to_patient else "anfrage",
            idempotenz_schluessel=key,
            betreff="Betreff Jonas Kraus",
            empfaenger_email=crypto.Sealed("jonas.kraus@example.com")
            if to_patient
            else "praxis@example.org",
            absender_email="a@psymatch.example",
        )
        EmailInhalt.create(
            email=email, inhalt_text="Guten Tag Jonas Kraus", inhalt_html=f"<p>{key}</p>"
        )
    stored = raw('SELECT "vorname", "email", "telefon" FROM "patienten"')[0]
    assert all(crypto.is_token(v) for v in stored)

    migrate.downgrade(to=4, **SILENT)
    assert raw('SELECT "vorname", "nachname", "email", "telefon" FROM "patienten"') == [
        ("Jonas", "Kraus", "jonas.kraus@example.com", "030 99887766")
    ]
    assert sorted(
        raw('SELECT "empfaenger_email", "betreff", "inhalt_text", "inhalt_html" FROM "emails"')
    ) == [
        ("jonas.kraus@example.com", "Betreff Jonas Kraus", "Guten Tag Jonas Kraus", "<p>p</p>"),
        ("praxis@example.org", "Betreff Jonas Kraus", "Guten Tag Jonas Kraus", "<p>t</p>"),
    ]
    assert "email_inhalte" not in tables()

    migrate.upgrade(**SILENT)
    assert domain_row_counts() == {**before, "emails": 2, "email_inhalte": 2}
    assert not {"inhalt_text", "inhalt_html", "inhalt_markdown"} & columns("emails")
    assert all(crypto.is_token(v) for (v,) in raw('SELECT "inhalt_text" FROM "email_inhalte"'))
    for key in ("t", "p"):
        body = Email.get(Email.idempotenz_schluessel == key).inhalt
        assert (body.inhalt_text, body.inhalt_html) == ("Guten Tag Jonas Kraus", f"<p>{key}</p>")
    recipients = dict(raw('SELECT "idempotenz_schluessel", "empfaenger_email" FROM "emails"'))
    assert recipients["t"] == "praxis@example.org" and crypto.is_token(recipients["p"])
    assert all(crypto.is_token(v) for v in raw('SELECT "nachname", "email" FROM "patienten"')[0])
    again = Patient.get(Patient.external_id == "P-1")
    assert (again.vorname, again.email) == ("Jonas", "jonas.kraus@example.com")
    assert Email.get(Email.idempotenz_schluessel == "p").empfaenger_email == (
        "jonas.kraus@example.com"
    )


def test_markers_and_clicks_move_out_of_inbound_messages_and_back(scratch):
    """0008 moves the fake inbound rows (token markers, link clicks) into tables of their
    own, decodes the stored replies into the provider-neutral form, and reverses both."""
    from db import crypto
    from db.models import InboundMessage, LinkKlick, WebhookReplayMarker
    from operations.replies import stored_message

    migrate.upgrade(to=7, **SILENT)
    seed_domain_rows()
    anfrage = Therapeutenanfrage.select(Therapeutenanfrage.id).scalar()
    patient = Patient.select(Patient.id).scalar()  # 0010 columns are plaintext at 7
    p = database.db.param
    insert = (
        'INSERT INTO "inbound_messages" ("provider", "message_key", "received_at", '
        '"raw_payload", "subject", "therapeutenanfrage_id", "status", "review_reason") '
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
    )
    at = dt.datetime(2026, 11, 30, 12, 0)
    click = {"anfrage_id": anfrage, "patient_id": patient, "answer": "angenommen",
             "token": "1.x.y", "remote_addr": "192.0.2.7"}  # fmt: skip
    mailgun = {"from": "Praxis <praxis@example.org>", "recipient": "antwort@psymatch.example",
               "subject": "AW: Anfrage A1", "body-plain": "Ja, gerne.",
               "Message-Id": "<mg-1@example.org>", "message-headers": "[]"}  # fmt: skip
    rows = [
        ("mailgun-token", "mailgun-token:" + "ab" * 32, at, "mid:mg-1@example.org", None, None,
         "ignoriert", "Mailgun-Token (Schutz vor Wiederholung)"),
        ("link", f"link:{anfrage}:{patient}", at, json.dumps(click), "Klick", anfrage, "neu",
         None),
        ("link", f"link:{anfrage}:999", at, json.dumps({**click, "patient_id": 999}), "Klick",
         anfrage, "neu", None),  # its patient is gone: nothing a click could record
        ("mailgun", "mid:mg-1@example.org", at, json.dumps(mailgun), "AW: Anfrage A1", None,
         "neu", None),
        ("postmark", "postmark:kaputt", at, "{nicht json", "x", None, "neu", None),
    ]  # fmt: skip
    for row in rows:
        database.db.execute_sql(insert, row)

    migrate.upgrade(**SILENT)
    assert [r.provider for r in InboundMessage.select().order_by(InboundMessage.id)] == [
        "mailgun",
        "postmark",
    ]
    marker = WebhookReplayMarker.get()
    assert (marker.provider, marker.token, marker.message_key, marker.seen_at) == (
        "mailgun", "ab" * 32, "mid:mg-1@example.org", at
    )  # fmt: skip
    moved = LinkKlick.get()
    assert (moved.therapeutenanfrage_id, moved.patient_id, moved.answer, moved.status) == (
        anfrage, patient, "angenommen", "neu"
    )  # fmt: skip
    assert moved.remote_addr == "192.0.2.7" and moved.clicked_at == at
    assert crypto.is_token(raw('SELECT "remote_addr" FROM "link_klick"')[0][0])
    reply = InboundMessage.get(InboundMessage.provider == "mailgun")
    message = stored_message(reply)
    assert (message.sender, message.text, message.message_id) == (
        "Praxis <praxis@example.org>", "Ja, gerne.", "<mg-1@example.org>"
    )  # fmt: skip
    broken = InboundMessage.get(InboundMessage.provider == "postmark")
    assert broken.message is None and broken.review_reason.startswith("Nachricht nicht lesbar")

    migrate.downgrade(to=7, **SILENT)
    assert not V8_TABLES & tables() and "message" not in columns("inbound_messages")
    back = raw(
        'SELECT "provider", "message_key", "raw_payload", "therapeutenanfrage_id", "status" '
        'FROM "inbound_messages" ORDER BY "provider", "message_key"'
    )
    assert [r[:2] for r in back] == [
        ("link", f"link:{anfrage}:{patient}"),
        ("mailgun", "mid:mg-1@example.org"),
        ("mailgun-token", "mailgun-token:" + "ab" * 32),
        ("postmark", "postmark:kaputt"),
    ]
    link_row = back[0]
    assert json.loads(link_row[2]) == {
        "anfrage_id": anfrage, "patient_id": patient, "answer": "angenommen",
        "remote_addr": "192.0.2.7",
    }  # fmt: skip
    assert link_row[3:] == (anfrage, "neu")
    assert back[2][2] == "mid:mg-1@example.org"

    migrate.upgrade(**SILENT)
    assert InboundMessage.select().count() == 2
    assert WebhookReplayMarker.get().token == "ab" * 32
    again = LinkKlick.get()
    assert (again.patient_id, again.answer) == (patient, "angenommen")
    assert again.remote_addr == "192.0.2.7"
    assert stored_message(InboundMessage.get(InboundMessage.provider == "mailgun")).text == (
        "Ja, gerne."
    )
