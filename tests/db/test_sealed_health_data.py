"""Sealed health data (SECURITY.md "What is encrypted", migration 0010): symptoms, birth
date, insurer, GP, payment reference, staff notes, replies, audit texts and IP addresses
are Fernet tokens in the database and plaintext through the models; patient coordinates
are kept to about 1 km; the geocoding cache holds no patient address; key rotation, GDPR
erasure and export cover the new columns; the migration seals and unseals real rows."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from db import crypto, database, migrate
from db.database import write_transaction
from db.migrations import v0010_sealed_health_data as sealing
from db.models import (
    ALL_MODELS,
    AuditLog,
    Geocache,
    InboundMessage,
    LinkKlick,
    Patient,
    Platzsuche,
    PlzCentroid,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations import demo_data as demo
from operations.geocoding import nominatim
from operations.privacy import erase_patient, export_patient
from operations.replies import process_inbound, store_click, store_inbound
from operations.searches import update_platzsuche
from psymatch import settings
from psymatch.domain import reply_parse
from tests import factories as f
from tests.db.test_migrations import create_at_version

SILENT = {"report": lambda _: None}
NOTE = "Suizidgedanken in der Vorgeschichte, Rückruf durch Erika vereinbart"
RAW_MARKER = "RAWMARKER-5c1e-sealed"
IP = "203.0.113.77"
REPLY_SENDER = "versiegelt.praxis@example.org"
REPLY_SUBJECT = "AW: Anfrage Versiegelungsprobe"


@pytest.fixture
def keys():
    """Set ENCRYPTION_KEYS for one test; restores the previous value."""
    before = settings.get().ENCRYPTION_KEYS
    yield lambda *k: settings.override(ENCRYPTION_KEYS=",".join(k))
    settings.override(ENCRYPTION_KEYS=before)


def raw(sql: str, params=()) -> list:
    return database.db.execute_sql(sql, params).fetchall()


def dump(url: str) -> bytes:
    """Every byte of the database: ``pg_dump`` (PostgreSQL), or the SQLite file with its
    WAL and journal, plus a SQL dump of it."""
    if database.is_postgres():
        result = subprocess.run(
            ["pg_dump", "--no-owner", url.split("?")[0]],
            capture_output=True,
            timeout=300,
            check=True,
        )
        return result.stdout
    database.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    text = "\n".join(database.db.connection().iterdump()).encode("utf-8")
    path = Path(url.removeprefix("sqlite:///"))
    files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
    return text + b"".join(p.read_bytes() for p in files if p.exists())


def _reply(anfrage_id: int | None = None):
    """A stored reply; naming ``anfrage_id`` (unproven, so it goes to review with a result)."""
    subject = REPLY_SUBJECT if anfrage_id is None else f"{REPLY_SUBJECT} Ref: A{anfrage_id}"
    message = reply_parse.message_from_parts(
        subject=subject,
        sender=f"Praxis Versiegelt <{REPLY_SENDER}>",
        recipients=["antwort@psymatch.example"],
        text=f"Leider keine Kapazität. {RAW_MARKER}",
        message_id="<versiegelt-1@example.org>",
    )
    payload = json.dumps({"rfc822": f"Subject: {REPLY_SUBJECT}\n\nKeine Kapazität {RAW_MARKER}"})
    stored, created = store_inbound(
        "raw",
        "mid:versiegelt-1@example.org",
        payload,
        REPLY_SENDER,
        "antwort@psymatch.example",
        subject,
        message=message,
        anfrage_id=anfrage_id,
    )
    assert created
    return stored


# --- the acceptance test: a dump of demo data -------------------------------------------------


def test_a_dump_of_demo_data_holds_no_sealed_field_in_plain_text(clean_db, migrated):
    demo.generate(therapists=60, patients=40, seed=3, report=lambda _: None)
    # Therapists' symptom wishes are business data in plaintext and use the same labels.
    Therapist.update(bevorzugte_symptome=[]).execute()
    # Public reference data holds some names in plaintext (GeoNames lists PLZ of large
    # customers such as "AOK Bayern - Die Gesundheitskasse"): values found there are not
    # evidence of a leak, so the patient is one whose values are not.
    reference = "\n".join(o for (o,) in PlzCentroid.select(PlzCentroid.ort).tuples())
    patient = next(
        p
        for p in Patient.select().join(Platzsuche).order_by(Patient.id)
        # long enough not to be a piece of some token by chance ("TK" would be)
        if p.symptome and p.geburtsdatum and p.zahlungsreferenz and p.hausarzt
        and len(p.krankenkasse or "") >= 6
        and p.krankenkasse not in reference and p.hausarzt not in reference
    )  # fmt: skip
    search = Platzsuche.get(Platzsuche.patient == patient.id)
    update_platzsuche(search.id, notiz=NOTE, actor="Erika")
    therapist = Therapist.select().order_by(Therapist.id).first()
    anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1)
    TherapeutAnfragePatient.create(
        therapeutenanfrage=anfrage, platzsuche=search, patient=patient, position_in_anfrage=1
    )
    process_inbound(_reply().id)
    store_click(anfrage.id, patient.id, "angenommen", IP)
    query = nominatim.normalise_query(patient.strasse, patient.plz, patient.ort)
    with write_transaction():
        nominatim._store(
            "patient",
            query,
            nominatim.Lookup(
                nominatim.FOUND, 52.520008, 13.404954, f"{patient.strasse}, Berlin", {"x": query}
            ),
        )

    sealed = {
        "symptom": patient.symptome[0],
        "birth date": patient.geburtsdatum.isoformat(),
        "insurer": patient.krankenkasse,
        "GP": patient.hausarzt,
        "payment reference": patient.zahlungsreferenz,
        "staff note": "Suizidgedanken",
        "raw payload marker": RAW_MARKER,
        "reply sender": REPLY_SENDER,
        "reply subject": "Versiegelungsprobe",
        "IP address": IP,
        "street in the geocoding cache": query,
    }
    # Through the models every value is there (so the grep below can fail) ...
    again = Patient.get_by_id(patient.id)
    assert sealed["symptom"] in again.symptome
    assert again.geburtsdatum.isoformat() == sealed["birth date"]
    assert (again.krankenkasse, again.hausarzt, again.zahlungsreferenz) == (
        sealed["insurer"], sealed["GP"], sealed["payment reference"]
    )  # fmt: skip
    assert NOTE in Platzsuche.get_by_id(search.id).notizen
    reply = InboundMessage.get()
    assert RAW_MARKER in reply.raw_payload and RAW_MARKER in reply.message
    assert (reply.sender, reply.subject) == (REPLY_SENDER, REPLY_SUBJECT)
    assert reply.status == "pruefung" and reply.review_reason
    assert LinkKlick.get().remote_addr == IP
    assert AuditLog.select().where(AuditLog.action == "update_platzsuche").count() >= 1

    # ... and in the raw bytes of the database none is.
    text = dump(migrated)
    for name, value in sealed.items():
        assert value.encode("utf-8") not in text, f"{name} {value!r} in plain text"
    # the generated values of every demo patient, not only the one above
    for p in Patient.select():
        for value in (p.hausarzt, p.zahlungsreferenz, p.geburtsdatum.isoformat()):
            if value and value not in reference:
                assert value.encode("utf-8") not in text, value
    # coordinates: nothing finer than two decimals (about 1 km) for a patient
    for lat, lon in raw('SELECT "latitude", "longitude" FROM "patienten"'):
        assert (round(lat, 2), round(lon, 2)) == (lat, lon)
    (cached,) = Geocache.select()
    assert crypto.is_blind_index(cached.query) and cached.display_name is None
    assert (cached.latitude, cached.longitude) == (52.52, 13.4)
    assert "result" not in cached.result_data


def test_every_sealed_column_holds_tokens(clean_db):
    """Each column of 0010, written through the models, is a token in the table."""
    patient = f.patient(
        hausarzt="Dr. med. Amsel",
        zahlungsreferenz="ZR12AB34",
        letzte_sitzung_vorherige_psychotherapie=dt.date(2020, 2, 29),
        erfahrung_mit_psychotherapie=True,
        empfehler_der_unterstuetzung="Beratungsstelle",
    )
    therapist = f.therapist(
        notizen="[2026-01-01 09:00 (Erika)] Praxis zieht um",
        sperrgrund="Beschwerde",
        potenziell_verfuegbar_notizen="ab März",
    )
    search = f.search(patient_obj=patient, notizen="Notiz")
    anfrage = Therapeutenanfrage.create(therapist=therapist, anfragegroesse=1, notizen="A")
    TherapeutAnfragePatient.create(
        therapeutenanfrage=anfrage,
        platzsuche=search,
        patient=patient,
        position_in_anfrage=1,
        antwortnotizen="passt nicht",
    )
    Telefonanruf.create(
        therapist=therapist,
        geplantes_datum=dt.date(2026, 1, 5),
        geplante_zeit="10:00",
        dauer_minuten=5,
        ergebnis="erreicht",
        notizen="Rückruf",
    )
    process_inbound(_reply(anfrage.id).id)
    AuditLog.create(actor="Erika", action="x", entity="patient", details={"a": 1}, reason="r")
    for table, columns in sealing.COLUMNS.items():
        for column in columns:
            values = [v for (v,) in raw(f'SELECT "{column}" FROM "{table}"') if v is not None]
            assert values, f"{table}.{column}: no value written by this test"
            assert all(crypto.is_token(v) for v in values), f"{table}.{column}"
    covered = {(t, c) for t, _, c, _ in crypto.encrypted_columns(ALL_MODELS)}
    assert {(t, c) for t, cs in sealing.COLUMNS.items() for c in cs} <= covered
    again = Patient.get_by_id(patient.id)
    assert again.letzte_sitzung_vorherige_psychotherapie == dt.date(2020, 2, 29)
    assert again.symptome == ["Schlafstörungen"] and again.geburtsdatum == dt.date(1990, 1, 1)
    reply = InboundMessage.get()
    assert reply.result["absender"] == REPLY_SENDER


def test_patient_coordinates_are_rounded_on_every_write(clean_db):
    patient = f.patient(latitude=52.520008, longitude=13.404954)
    assert raw('SELECT "latitude", "longitude" FROM "patienten"') == [(52.52, 13.4)]
    Patient.update(latitude=48.137154).where(Patient.id == patient.id).execute()
    assert Patient.get_by_id(patient.id).latitude == 48.14
    therapist = f.therapist(latitude=52.520008, longitude=13.404954)  # a practice: exact
    assert Therapist.get_by_id(therapist.id).latitude == 52.520008


# --- rotation -------------------------------------------------------------------------------


def test_rotation_covers_the_sealed_columns_so_the_old_key_can_go(clean_db, keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    patient = f.patient(hausarzt="Dr. med. Amsel", zahlungsreferenz="ZR12AB34")
    search = f.search(patient_obj=patient)
    update_platzsuche(search.id, notiz=NOTE, actor="Erika")
    anfrage = Therapeutenanfrage.create(therapist=f.therapist(), anfragegroesse=1)
    process_inbound(_reply(anfrage.id).id)  # in review with a result
    AuditLog.create(actor="Erika", action="x", entity="patient", details={"a": 1}, reason="r")
    columns = [
        ("patienten", "symptome"),
        ("patienten", "geburtsdatum"),
        ("patienten", "hausarzt"),
        ("platzsuche", "notizen"),
        ("inbound_messages", "raw_payload"),
        ("inbound_messages", "result"),
        ("audit_log", "details"),
    ]
    before = {c: raw(f'SELECT "{c[1]}" FROM "{c[0]}" ORDER BY "id"') for c in columns}

    keys(new, old)
    counts = crypto.rotate(ALL_MODELS, batch_size=2, report=lambda _: None)
    for table, column in columns:
        assert counts[f"{table}.{column}"] >= 1, (table, column)
        after = raw(f'SELECT "{column}" FROM "{table}" ORDER BY "id"')
        pairs = zip(before[(table, column)], after, strict=True)
        assert all(a != b for a, b in pairs if a != (None,)), (table, column)

    keys(new)  # the old key is gone: everything still reads
    again = Patient.get_by_id(patient.id)
    assert (again.symptome, again.geburtsdatum) == (["Schlafstörungen"], dt.date(1990, 1, 1))
    assert again.hausarzt == "Dr. med. Amsel"
    assert NOTE in Platzsuche.get_by_id(search.id).notizen
    assert RAW_MARKER in InboundMessage.get().raw_payload
    assert all(isinstance(a.details, dict | None) for a in AuditLog.select())
    keys(old)  # and the old key alone reads none of it
    with pytest.raises(crypto.CryptoError):
        Patient.get_by_id(patient.id)


def test_patient_lookups_are_found_under_every_key_and_rekeyed_by_rotation(clean_db, keys):
    from operations.maintenance import rotate_keys

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    patient = f.patient(strasse="Lindenweg 3", ort="Berlin")
    query = nominatim.normalise_query(patient.strasse, patient.plz, patient.ort)
    with write_transaction():
        nominatim._store("patient", query, nominatim.Lookup(nominatim.NOT_FOUND, error="x"))
    keys(new, old)
    assert nominatim._cached("patient", query) is not None  # found under the old key
    assert nominatim.backlog() == []  # so the final not_found still holds
    counts = rotate_keys("Erika", report=None)
    assert counts["geocache.query"] == 1 and counts["patienten.strasse"] == 1
    keys(new)
    assert nominatim._cached("patient", query).query == crypto.blind_index(query)
    assert nominatim.rekey_patient_lookups() == 0


# --- privacy -----------------------------------------------------------------------------------


def test_erasure_and_export_cover_the_sealed_columns(clean_db):
    patient = f.patient(
        strasse="Lindenweg 3",
        ort="Berlin",
        hausarzt="Dr. med. Amsel",
        empfehler_der_unterstuetzung="Beratungsstelle",
        geburtsdatum=dt.date(1988, 2, 29),
    )
    search = f.search(patient_obj=patient)
    update_platzsuche(search.id, notiz=f"{patient.nachname} erwähnt {NOTE}", actor="Erika")
    query = nominatim.normalise_query(patient.strasse, patient.plz, patient.ort)
    with write_transaction():
        nominatim._store("patient", query, nominatim.Lookup(nominatim.FOUND, 52.5, 13.4))
    exported = export_patient(patient.id, actor="Erika")
    assert exported["patient"]["geburtsdatum"] == dt.date(1988, 2, 29)
    assert exported["patient"]["symptome"] == ["Schlafstörungen"]
    assert NOTE in exported["searches"][0]["notizen"]
    assert json.dumps(exported, default=str)  # serialisable as the CLI writes it

    update_platzsuche(search.id, status="abgebrochen", actor="Erika")
    result = erase_patient(patient.id, actor="Erika", reason="Art. 17")
    assert result["geocache"] == 1 and Geocache.select().count() == 0
    erased = Patient.get_by_id(patient.id)
    assert erased.geburtsdatum == dt.date(1988, 1, 1)
    assert (erased.hausarzt, erased.empfehler_der_unterstuetzung) == (None, None)
    notes = Platzsuche.get_by_id(search.id).notizen
    assert patient.nachname not in notes and "gelöscht erwähnt Suizidgedanken" in notes
    assert crypto.is_token(raw('SELECT "notizen" FROM "platzsuche"')[0][0])
    audit = AuditLog.get(AuditLog.action == "patient_erased")
    assert audit.reason == "Art. 17" and audit.details["geocache"] == 1


# --- the migration ------------------------------------------------------------------------------


@pytest.fixture
def scratch(scratch_database_url):
    database.init(scratch_database_url)
    yield scratch_database_url
    database.db.close()


STREET, STREET_QUERY = "Lindenweg 3", "lindenweg 3, 10117 berlin"
PRACTICE_QUERY = "hauptstraße 5, 10115 berlin"


def _seed_plaintext() -> dict:
    """Rows as a version-9 database holds them: the 0010 columns in plaintext."""
    therapist = create_at_version(
        Therapist,
        external_id="T-1",
        anrede="Frau",
        geschlecht="weiblich",
        vorname="Anna",
        nachname="Berg",
        plz="10115",
        notizen="[2026-01-01 09:00 (Erika)] Praxis zieht um",
        sperrgrund="Beschwerde",
        potenziell_verfuegbar_notizen="ab März",
    )
    patient = create_at_version(
        Patient,
        external_id="P-1",
        anrede="Herr",
        geschlecht="männlich",
        vorname="Jonas",
        nachname="Kraus",
        strasse=STREET,
        plz="10117",
        ort="Berlin",
        symptome=["Depression", "Ängste / Panikattacken"],
        geburtsdatum=dt.date(1988, 2, 29),
        letzte_sitzung_vorherige_psychotherapie=dt.date(2019, 11, 3),
        krankenkasse="BARMER",
        hausarzt="Dr. med. Vogel",
        zahlungsreferenz="AB12CD34",
        empfehler_der_unterstuetzung="Hausarzt",
    )
    p = database.db.param
    database.db.execute_sql(
        f'UPDATE "patienten" SET "latitude" = {p}, "longitude" = {p}', (52.517037, 13.38886)
    )
    search = create_at_version(Platzsuche, patient=patient, notizen=NOTE)
    anfrage = create_at_version(
        Therapeutenanfrage, therapist=therapist, anfragegroesse=1, notizen="Antwort per Telefon"
    )
    create_at_version(
        TherapeutAnfragePatient,
        therapeutenanfrage=anfrage,
        platzsuche=search,
        patient=patient,
        position_in_anfrage=1,
        antwortnotizen="passt nicht",
    )
    create_at_version(
        Telefonanruf,
        therapist=therapist,
        geplantes_datum=dt.date(2026, 1, 5),
        geplante_zeit="10:00",
        dauer_minuten=5,
        ergebnis="erreicht",
        notizen="Rückruf",
    )
    create_at_version(
        InboundMessage,
        provider="raw",
        message_key="mid:1",
        raw_payload=json.dumps({"rfc822": RAW_MARKER}),
        message=json.dumps({"text": "Ja, gerne"}),
        sender=REPLY_SENDER,
        recipient="antwort@psymatch.example",
        subject=REPLY_SUBJECT,
        result={"absender": REPLY_SENDER, "decision": {"decisions": {"1": "angenommen"}}},
        review_reason="Anfrage nicht erkannt",
    )
    create_at_version(
        AuditLog,
        actor="Erika",
        action="confirm_sender",
        entity="therapist",
        entity_id="1",
        details={"address": REPLY_SENDER},
        reason="Praxis bestätigt per Telefon",
    )
    for query, display in ((STREET_QUERY, "Lindenweg 3, Berlin"), (PRACTICE_QUERY, "Praxis")):
        Geocache.create(
            query=query,
            query_type="adresse",
            latitude=52.517037,
            longitude=13.38886,
            display_name=display,
            result_data={"status": "found", "attempts": 1, "result": {"display_name": display}},
        )
    return {t: columns for t, columns in sealing.COLUMNS.items()}


def _sealed_values() -> dict:
    return {
        (table, column): [v for (v,) in raw(f'SELECT "{column}" FROM "{table}" ORDER BY "id"')]
        for table, columns in sealing.COLUMNS.items()
        for column in columns
    }


def _pg_types() -> dict:
    rows = raw(
        "SELECT table_name, column_name, data_type, character_maximum_length, column_default "
        "FROM information_schema.columns WHERE table_schema = current_schema()"
    )
    return {(t, c): (kind, length, default) for t, c, kind, length, default in rows}


def test_migration_0010_seals_real_rows_and_unseals_them_on_downgrade(scratch):
    migrate.upgrade(to=9, **SILENT)
    _seed_plaintext()
    plain = _sealed_values()
    assert not any(crypto.is_token(v) for values in plain.values() for v in values)
    types_before = _pg_types() if database.is_postgres() else None

    migrate.upgrade(to=10, **SILENT)
    sealed = _sealed_values()
    for key, values in sealed.items():
        assert values and all(v is None or crypto.is_token(v) for v in values), key
        assert [v is None for v in values] == [v is None for v in plain[key]], key
    # the columns of version 10 only (later migrations add columns to the model)
    patient = Patient.select(
        *[f for f in Patient._meta.sorted_fields if f.name != "suchindex"]
    ).get()
    assert patient.symptome == ["Depression", "Ängste / Panikattacken"]
    assert (patient.geburtsdatum, patient.letzte_sitzung_vorherige_psychotherapie) == (
        dt.date(1988, 2, 29), dt.date(2019, 11, 3)
    )  # fmt: skip
    assert (patient.krankenkasse, patient.hausarzt, patient.zahlungsreferenz) == (
        "BARMER", "Dr. med. Vogel", "AB12CD34"
    )  # fmt: skip
    assert (patient.latitude, patient.longitude) == (52.52, 13.39)
    assert Platzsuche.get().notizen == NOTE
    assert Therapist.select(Therapist.sperrgrund).get().sperrgrund == "Beschwerde"  # v10 columns
    assert TherapeutAnfragePatient.get().antwortnotizen == "passt nicht"
    assert Telefonanruf.get().ergebnis == "erreicht"
    reply = InboundMessage.get()
    assert (reply.sender, reply.subject, reply.review_reason) == (
        REPLY_SENDER, REPLY_SUBJECT, "Anfrage nicht erkannt"
    )  # fmt: skip
    assert reply.result["decision"]["decisions"] == {"1": "angenommen"}
    assert RAW_MARKER in reply.raw_payload and json.loads(reply.message) == {"text": "Ja, gerne"}
    audit = AuditLog.get()
    assert audit.details == {"address": REPLY_SENDER}
    assert audit.reason == "Praxis bestätigt per Telefon"
    cache = {row.query: row for row in Geocache.select()}
    hashed = cache[crypto.blind_index(STREET_QUERY)]
    assert STREET_QUERY not in cache and hashed.display_name is None
    assert hashed.result_data == {"status": "found", "attempts": 1}
    assert (hashed.latitude, hashed.longitude) == (52.52, 13.39)
    practice = cache[PRACTICE_QUERY]  # a practice address stays as it was
    assert practice.display_name == "Praxis" and practice.latitude == 52.517037
    if database.is_postgres():
        types = _pg_types()
        for table, columns in sealing.COLUMNS.items():
            for column in columns:
                assert types[(table, column)][0] == "text", (table, column)
        assert types[("patienten", "symptome")][2] is None  # no plaintext default

    # a second run of the data step changes nothing (tokens are skipped)
    with database.db.atomic():
        sealing.up(database.db, database.dialect())
    assert _sealed_values() == sealed

    migrate.downgrade(to=9, **SILENT)
    back = _sealed_values()
    for key, values in back.items():
        assert not any(crypto.is_token(v) for v in values), key
    (birth, symptoms, insurer) = raw(
        'SELECT "geburtsdatum", "symptome", "krankenkasse" FROM "patienten"'
    )[0]
    assert str(birth) == "1988-02-29" and insurer == "BARMER"
    symptoms = json.loads(symptoms) if isinstance(symptoms, str) else symptoms
    assert symptoms == ["Depression", "Ängste / Panikattacken"]
    (details,) = raw('SELECT "details" FROM "audit_log"')[0]
    details = json.loads(details) if isinstance(details, str) else details
    assert details == {"address": REPLY_SENDER}
    assert back[("platzsuche", "notizen")] == [NOTE]
    assert {q for (q,) in raw('SELECT "query" FROM "geocache"')} == {STREET_QUERY, PRACTICE_QUERY}
    if database.is_postgres():
        assert _pg_types() == types_before  # types, lengths and the default restored

    migrate.upgrade(**SILENT)
    again = Patient.get()
    assert again.symptome == ["Depression", "Ängste / Panikattacken"]
    assert AuditLog.get().details == {"address": REPLY_SENDER}


def test_a_remembered_plaintext_is_refused_once_its_key_is_removed(keys):
    """Short sealed values keep their plaintext (crypto._plaintext) per key set only."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    token = crypto.encrypt("F32.1 mittelgradige depressive Episode")
    assert crypto.decrypt(token) == "F32.1 mittelgradige depressive Episode"
    assert crypto._plaintext.cache_info().currsize >= 1  # remembered
    keys(new, old)  # a rotation in progress: the old key still reads it
    assert crypto.decrypt(token) == "F32.1 mittelgradige depressive Episode"
    keys(new)
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(token)
    long_value = "x" * 2000  # an email body: decrypted each time, not remembered
    sealed = crypto.encrypt(long_value)
    before = crypto._plaintext.cache_info().currsize
    assert crypto.decrypt(sealed) == long_value
    assert crypto._plaintext.cache_info().currsize == before
