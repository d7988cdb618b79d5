"""Security: start-up refusal outside demo mode, encryption at rest, key rotation, logs.

Forged, expired and replayed links and webhooks are covered by test_tokens.py,
test_webhooks.py and test_webhook_fuzz.py; here: what the security issue adds.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

from db import crypto, database
from db.models import ALL_MODELS, Email, Patient
from operations import demo_data as demo
from operations import intake
from operations.emailing.sending import transmit
from operations.replies import process_inbound, store_inbound
from operations.searches import update_platzsuche
from operations.sending import queue_placement_email, send_anfrage
from psymatch import settings
from psymatch.domain import reply_parse
from psymatch.ports import free_port
from tests import factories as f
from tests.conftest import missing, production_secrets
from tests.conftest import run_python as run
from tests.operations.test_smtp import Recorder

PRODUCTION = production_secrets()


def load(environ: dict, tmp_path) -> settings.Settings:
    return settings.load(environ=environ, env_file=tmp_path / "none")


# --- demo mode and start-up refusal -------------------------------------------------------


DEMO = {"PSYMATCH_MODE": "demo"}


def test_production_is_the_default_and_demo_is_explicit(tmp_path):
    assert not load({}, tmp_path).demo_mode  # a local PUBLIC_BASE_URL no longer means demo
    assert not load({"PSYMATCH_MODE": ""}, tmp_path).demo_mode
    assert not load({"PSYMATCH_MODE": "production"}, tmp_path).demo_mode
    assert load(DEMO, tmp_path).demo_mode
    with pytest.raises(settings.SettingsError, match="PSYMATCH_MODE must be demo or production"):
        load({"PSYMATCH_MODE": "prod"}, tmp_path)


def test_demo_mode_needs_no_secrets_and_uses_the_named_demo_key(tmp_path):
    s = load(DEMO, tmp_path)
    settings.require_secrets(s)
    assert s.encryption_keys() == [settings.DEMO_ENCRYPTION_KEY]


def test_production_names_every_missing_or_default_secret(tmp_path):
    s = load({}, tmp_path)
    with pytest.raises(settings.SettingsError) as error:
        settings.require_secrets(s)
    message = str(error.value)
    for name in ("SIGNING_KEY", "MAILGUN_SIGNING_KEY", "POSTMARK_WEBHOOK_PASSWORD"):
        assert f"{name} still has its demo default" in message
    assert "RAW_WEBHOOK_SECRET still has its demo default" in message
    assert "ENCRYPTION_KEYS is not set" in message
    assert "CONSOLE_TOKEN" not in message  # the shared console token is for demo mode only
    with pytest.raises(settings.SettingsError, match="ENCRYPTION_KEYS is not set"):
        s.encryption_keys()


@pytest.mark.parametrize(
    "change,problem",
    [
        ({"ENCRYPTION_KEYS": "not-a-key"}, "ENCRYPTION_KEYS entry 1 is not a Fernet key"),
        ({"ENCRYPTION_KEYS": settings.DEMO_ENCRYPTION_KEY}, "entry 1 is the public demo key"),
        ({"CONSOLE_TOKEN": "short"}, "CONSOLE_TOKEN is shorter than 16 characters"),
        ({"SIGNING_KEY": "a" * 16}, "SIGNING_KEY is too predictable"),
        ({"RAW_WEBHOOK_SECRET": "ab" * 20}, "RAW_WEBHOOK_SECRET is too predictable"),
        ({"CONSOLE_TOKEN": "abcd" * 8}, "CONSOLE_TOKEN is too predictable"),
        ({"METRICS_TOKEN": "x" * 32}, "METRICS_TOKEN is too predictable"),
        ({"ENCRYPTION_KEYS": "A" * 43 + "="}, "entry 1 is not random"),  # 32 zero bytes
        ({"ENCRYPTION_KEYS": "_" * 42 + "8="}, "entry 1 is not random"),  # 32 x 0xff
        (
            {"MAILGUN_SIGNING_KEY": "demo-raw-webhook-secret"},
            "MAILGUN_SIGNING_KEY is a published demo value",
        ),
        ({"SIGNING_KEY": "demo-signing-key-change-me"}, "SIGNING_KEY still has its demo default"),
    ],
)
def test_production_refuses_weak_secrets(tmp_path, change, problem):
    settings.require_secrets(load(PRODUCTION, tmp_path))  # all good: no error
    with pytest.raises(settings.SettingsError, match=problem):
        settings.require_secrets(load({**PRODUCTION, **change}, tmp_path))


@pytest.mark.parametrize(
    "args",
    [
        ["-c", "from webhooks.app import create_app; create_app()"],
        ["-c", "import workers.actors"],
        ["-m", "cli.main", "db", "status"],
        ["-m", "console.server"],
    ],
    ids=["web", "worker", "cli", "console"],
)
def test_every_entry_point_refuses_to_start_without_secrets(cli_env, args):
    env = {**cli_env, "PSYMATCH_MODE": "production", "PUBLIC_BASE_URL": "https://p.example"}
    for name in settings.SECRET_NAMES:
        env.pop(name, None)
    result = run(args, env)
    assert result.returncode != 0
    assert "refusing to start outside demo mode" in result.stderr
    assert "ENCRYPTION_KEYS is not set" in result.stderr
    if args != ["-m", "console.server"]:  # the console needs no webhook secret or signing key
        assert "SIGNING_KEY" in result.stderr


def test_demo_console_passes_the_token_through_the_environment_only(tmp_path):
    from console import server as console_server

    token = PRODUCTION["CONSOLE_TOKEN"]
    argv, env = console_server.lab_command(load({**DEMO, "CONSOLE_TOKEN": token}, tmp_path))
    assert env["JUPYTER_TOKEN"] == token and not any(token in a for a in argv)
    demo_argv, demo_env = console_server.lab_command(load(DEMO, tmp_path))
    assert "--IdentityProvider.token=" in demo_argv
    assert "--ServerApp.terminals_enabled=False" in demo_argv


def test_the_production_console_hub_never_sees_webhook_secrets_or_the_signing_key(tmp_path):
    from console import hub
    from console import server as console_server

    if not hub.PROXY.exists():
        missing(f"configurable-http-proxy ({hub.PROXY}; npm ci --prefix console/hub)")
    argv, env = console_server.hub_command(load(PRODUCTION, tmp_path))
    assert argv[1:] == ["-f", str(console_server.CONFIG)]
    assert env["ENCRYPTION_KEYS"] == PRODUCTION["ENCRYPTION_KEYS"]
    for name in settings.KERNEL_WITHHELD:
        assert env[name] == "", name
    for value in (PRODUCTION[n] for n in settings.SECRET_NAMES if n != "ENCRYPTION_KEYS"):
        assert value not in env.values()


def test_the_app_starts_in_production_with_every_secret(cli_env):
    env = {**cli_env, **PRODUCTION, "PUBLIC_BASE_URL": "https://p.example"}
    result = run(["-c", "from webhooks.app import create_app; print(create_app().name)"], env)
    assert result.returncode == 0, result.stderr


# --- encryption at rest ------------------------------------------------------------------


@pytest.fixture
def keys():
    """Set ENCRYPTION_KEYS for one test; restores the previous value."""
    before = settings.get().ENCRYPTION_KEYS
    yield lambda *k: settings.override(ENCRYPTION_KEYS=",".join(k))
    settings.override(ENCRYPTION_KEYS=before)


def raw_values(table: str, column: str, key: str = "id") -> list:
    cursor = database.db.execute_sql(f'SELECT "{column}" FROM "{table}" ORDER BY "{key}"')
    return [row[0] for row in cursor.fetchall()]


def test_patient_fields_are_tokens_in_the_table_and_plaintext_in_python(clean_db):
    patient = f.patient(
        vorname="Zyprian",
        telefon="0171 5550123",
        strasse="Geheimweg 7",
        krankenversicherungsnummer="A123456789",
    )
    for column in ("vorname", "nachname", "email", "telefon", "strasse"):
        (value,) = raw_values("patienten", column)
        assert crypto.is_token(value)
    again = Patient.get_by_id(patient.id)
    assert (again.vorname, again.strasse) == ("Zyprian", "Geheimweg 7")
    assert again.krankenversicherungsnummer == "A123456789"
    first, second = crypto.encrypt("x"), crypto.encrypt("x")
    assert first != second  # random IV: equal values are not recognisable


def test_a_wrong_key_fails_clearly(clean_db, keys):
    f.patient()
    keys(Fernet.generate_key().decode())
    with pytest.raises(crypto.CryptoError, match="cannot be decrypted with any key"):
        Patient.get()


def test_rotation_re_encrypts_everything_so_the_old_key_can_go(clean_db, keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    therapist = f.therapist()
    search = f.search()
    update_platzsuche(search.id, vermittelter_therapeut_id=therapist.id)
    update_platzsuche(search.id, status="erfolgreich")
    queue_placement_email(search.id, "email_contact")
    before = raw_values("patienten", "nachname") + raw_values("emails", "empfaenger_email")
    keys(new, old)
    counts = crypto.rotate(ALL_MODELS, batch_size=2, report=lambda _: None)
    assert counts["patienten.nachname"] == 1 and counts["emails.empfaenger_email"] == 1
    assert counts["email_inhalte.inhalt_text"] == 1  # keyed by email_id, not id
    after = raw_values("patienten", "nachname") + raw_values("emails", "empfaenger_email")
    assert all(a != b for a, b in zip(before, after, strict=True))
    keys(new)
    patient = Patient.get()
    assert patient.nachname.startswith("Pat")
    assert Email.get().empfaenger_email == patient.email
    assert patient.nachname in Email.get().inhalt.inhalt_text


def test_therapist_addresses_stay_plaintext_for_the_weekly_rule(clean_db):
    therapist = f.therapist()
    f.searches(2)
    from operations.bundles import create_anfrage

    anfrage_id = create_anfrage(therapist.id, now=f.NOW).anfrage_id
    send_anfrage(anfrage_id, now=f.NOW)
    assert raw_values("emails", "empfaenger_email") == [therapist.email]
    assert crypto.is_token(raw_values("email_inhalte", "inhalt_text", "email_id")[0])


SECRET_PATIENT = {
    "external_id": "P-SEC-1",
    "anrede": "Frau",
    "geschlecht": "weiblich",
    "vorname": "Zyprienne",
    "nachname": "Quellwasserstein",
    "plz": "10115",
    "strasse": "Verborgener Pfad 41",
    "email": "zyprienne.quellwasserstein@example.com",
    "telefon": "0176 99887766",
    "krankenversicherungsnummer": "Q987654321",
    "krankenkasse": "AOK Nordost",
    "geburtsdatum": "1991-04-05",
    "symptome": ["Schlafstörungen"],
    "erfahrung_mit_psychotherapie": False,
    "offen_fuer_gruppentherapie": False,
    "zeitliche_verfuegbarkeit": {"montag": ["08:00-18:00"]},
}


def dump(url: str) -> str:
    """The whole database as text: pg_dump (PostgreSQL) or iterdump plus file bytes (SQLite)."""
    if database.is_postgres():
        result = subprocess.run(
            ["pg_dump", "--no-owner", url.split("?")[0]],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return result.stdout
    database.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    text = "\n".join(database.db.connection().iterdump())
    path = Path(url.removeprefix("sqlite:///"))
    return text + path.read_bytes().decode("utf-8", errors="replace")


def test_no_patient_contact_data_in_the_raw_database(clean_db, migrated, tmp_path):
    source = tmp_path / "patients.json"
    source.write_text(json.dumps([SECRET_PATIENT]), encoding="utf-8")
    report = intake.import_file("patients", source, actor="Erika", progress=False)
    assert report.created == 1
    demo.generate(therapists=60, patients=40, seed=3, report=lambda _: None)
    therapist = f.therapist(telefon="030 123")
    imported = Patient.get(Patient.external_id == "P-SEC-1")
    search = f.search(patient_obj=imported)
    update_platzsuche(search.id, vermittelter_therapeut_id=therapist.id)
    update_platzsuche(search.id, status="erfolgreich")
    email = queue_placement_email(search.id, "email_contact")
    assert "Quellwasserstein" in email.inhalt.inhalt_text  # the patient's own email names her

    text = dump(migrated)
    assert "Quellwasserstein" not in text and "Zyprienne" not in text
    for key in ("strasse", "email", "telefon", "krankenversicherungsnummer"):
        assert SECRET_PATIENT[key] not in text, key
    patients = list(Patient.select().where(Patient.external_id.startswith("demo")))
    patients = patients or list(Patient.select())
    assert len(patients) >= 40
    for p in patients:
        for value in (
            f"{p.vorname} {p.nachname}",
            p.email,
            p.telefon,
            p.krankenversicherungsnummer,
        ):
            assert not value or value not in text, value


# --- logs --------------------------------------------------------------------------------


class Refusing(Recorder):
    """Accepts therapist mail, refuses patient addresses quoting them (as real servers do)."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "quellwasserstein" in address:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def test_no_patient_identity_in_log_records(clean_db, caplog):
    before = settings.get()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.override(SMTP_URL=f"smtp://127.0.0.1:{controller.port}", SMTP_TIMEOUT_S=5.0)
    caplog.set_level(logging.DEBUG)
    try:
        patient = f.patient(
            vorname="Zyprienne",
            nachname="Quellwasserstein",
            email="zyprienne.quellwasserstein@example.com",
            telefon="0176 99887766",
        )
        therapist = f.therapist(telefon="030 123")
        search = f.search(patient_obj=patient)
        f.searches(2)
        from operations.bundles import create_anfrage

        anfrage_id = create_anfrage(therapist.id, now=f.NOW).anfrage_id
        sent = send_anfrage(anfrage_id, now=f.NOW)
        assert transmit(sent["email_id"]) == "sent"
        raw = (
            f"From: {therapist.email}\r\nTo: anfragen@psymatch.example\r\n"
            f"Subject: Re: Suche Psychotherapieplätze - Ref: A{anfrage_id}\r\n"
            f"Message-ID: <reply-1@example.org>\r\n\r\nIch nehme alle, danke.\r\n"
        )
        inbound, _ = store_inbound(
            "raw",
            "<reply-1@example.org>",
            raw,
            therapist.email,
            "anfragen@psymatch.example",
            f"Re: Ref: A{anfrage_id}",
            message=reply_parse.message_from_bytes(raw.encode()),
        )
        process_inbound(inbound.id)
        update_platzsuche(search.id, vermittelter_therapeut_id=therapist.id)
        update_platzsuche(search.id, status="erfolgreich")
        email = queue_placement_email(search.id, "email_contact")
        assert transmit(email.id) == "failed"  # 550 quoting the address
        assert "quellwasserstein" not in (Email.get_by_id(email.id).fehlermeldung or "")
    finally:
        controller.stop()
        settings.override(SMTP_URL=before.SMTP_URL, SMTP_TIMEOUT_S=before.SMTP_TIMEOUT_S)
    assert caplog.records, "the sending path logs"
    for record in caplog.records:
        if record.name.startswith("mail.log"):
            continue  # the test's SMTP server (the outside party) logs what it receives
        text = record.getMessage() + (record.exc_text or "")
        for secret in ("Quellwasserstein", "quellwasserstein", "Zyprienne", "99887766"):
            assert secret not in text, (record.name, text)


# --- staff names in the audit log ------------------------------------------------------


def test_the_demo_console_acts_as_staff_name(clean_db):
    from console.searches import SearchesPanel
    from db.models import AuditLog

    search = f.search()
    before = settings.get().STAFF_NAME
    settings.override(STAFF_NAME="Erika Muster")
    try:
        panel = SearchesPanel(today=f.NOW.date())
        panel.search_select.value = search.id
        panel.pause_button.click()
    finally:
        settings.override(STAFF_NAME=before)
    entry = AuditLog.get(AuditLog.action == "update_platzsuche")
    assert entry.actor == "Erika Muster"
    assert panel.erase_actor.value == "" and not panel.erase_actor.disabled


def test_the_production_console_needs_a_staff_account(cli_env, clean_db):
    env = {**cli_env, **PRODUCTION, "PUBLIC_BASE_URL": "https://p.example"}
    result = run(["-m", "console.server"], env)
    assert result.returncode == 2
    assert "no active staff account" in result.stderr
    assert "psymatch staff add" in result.stderr


def test_cli_rotate_and_generate_key(clean_db, cli_env, keys):
    patient = f.patient(vorname="Rotraut")
    generated = run(["-m", "cli.main", "crypto", "generate-key"], cli_env)
    new = generated.stdout.strip()
    Fernet(new.encode())  # a usable key
    env = {**cli_env, "ENCRYPTION_KEYS": f"{new},{settings.DEMO_ENCRYPTION_KEY}"}
    result = run(["-m", "cli.main", "crypto", "rotate", "--actor", "Erika"], env)
    assert result.returncode == 0, result.stderr
    assert "patienten.vorname: 1 values re-encrypted" in result.stdout
    keys(new)
    assert Patient.get_by_id(patient.id).vorname == "Rotraut"
    bad = run(
        ["-m", "cli.main", "crypto", "rotate", "--actor", "Erika"],
        {**cli_env, "ENCRYPTION_KEYS": "x"},
    )
    assert bad.returncode == 1 and bad.stderr.startswith("psymatch: error: ENCRYPTION_KEYS")


def test_bulk_encryption_makes_standard_fernet_tokens():
    texts = [None, "", "ä", "x" * 15, "y" * 16, "Zyprienne Quellwasserstein " * 9] * 20
    texts += ["z" * 5000]
    tokens = crypto.encrypt_many(texts)
    standard = Fernet(settings.get().encryption_keys()[0].encode())
    for text, token in zip(texts, tokens, strict=True):
        if text is None:
            assert token is None
        else:
            assert standard.decrypt(token.encode()).decode() == text
    present = [t for t in tokens if t]
    assert len(set(present)) == len(present)  # a fresh IV per value
    assert len({t[:32] for t in present}) == len(present)


def test_console_starts_a_notebook_kernel_without_asking_and_keeps_staff_settings(tmp_path):
    import dataclasses
    import json

    from console import server as console_server

    s = dataclasses.replace(load({}, tmp_path), VAR_DIR=str(tmp_path / "var"))
    _, env = console_server.lab_command(s)
    tracker = (
        Path(env["JUPYTERLAB_SETTINGS_DIR"])
        / "@jupyterlab"
        / "notebook-extension"
        / "tracker.jupyterlab-settings"
    )
    assert json.loads(tracker.read_text())["autoStartDefaultKernel"] is True
    tracker.write_text('{"autoStartDefaultKernel": false}')  # staff changed it
    console_server.lab_command(s)
    assert json.loads(tracker.read_text()) == {"autoStartDefaultKernel": False}


def test_signing_refuses_a_withheld_or_demo_key_outside_demo_mode():
    """A console kernel gets SIGNING_KEY empty: anything that would sign fails loudly instead
    of mailing links signed with the wrong key."""
    from psymatch.domain import tokens

    before = settings.get()
    try:
        settings.override(PSYMATCH_MODE="production", SIGNING_KEY="")
        with pytest.raises(settings.SettingsError, match="SIGNING_KEY is not available"):
            tokens.reply_address(1)
        settings.override(SIGNING_KEY="demo-signing-key-change-me")
        with pytest.raises(settings.SettingsError, match="SIGNING_KEY is not available"):
            tokens.reply_address(1)
        settings.override(SIGNING_KEY=PRODUCTION["SIGNING_KEY"])
        assert tokens.find_reply_anfrage([tokens.reply_address(7)]) == 7
    finally:
        settings.override(PSYMATCH_MODE=before.PSYMATCH_MODE, SIGNING_KEY=before.SIGNING_KEY)
