"""An attacker's probe of a production-mode setup (issue 14), each attack refused.

* demo mode is explicit (``PSYMATCH_MODE=demo``) and refused away from this machine, so a
  web host without it does not accept webhooks signed with the published demo secrets;
* ``/dev/mail`` does not exist in production, whatever SMTP_URL says;
* weak secrets (repeated characters, an all-zero Fernet key) refuse the start;
* ``/status`` and ``/metrics`` need the bearer token and name no host on failure;
* security headers on every response;
* ``psymatch run`` binds everything to 127.0.0.1.
"""

from __future__ import annotations

import base64
import secrets
import subprocess

import pytest

from db import database
from db.models import InboundMessage
from psymatch import settings
from psymatch.ports import free_port
from tests import webhook_payloads as wp
from tests.conftest import production_secrets
from tests.conftest import run_python as run
from webhooks import devmail, providers, security_headers
from webhooks.app import create_app

MAILGUN = "/webhooks/inbound/mailgun"
POSTMARK = "/webhooks/inbound/postmark"
RAW = "/webhooks/inbound/raw"
DEMO_DEFAULTS = {
    name: getattr(settings.Settings, name)
    for name in ("MAILGUN_SIGNING_KEY", "POSTMARK_WEBHOOK_PASSWORD", "RAW_WEBHOOK_SECRET")
}
TOKEN = secrets.token_urlsafe(32)


@pytest.fixture
def restore_settings(monkeypatch):
    """Whatever a test overrides, the settings object is put back afterwards."""
    monkeypatch.setattr(settings, "_current", settings.get())


@pytest.fixture
def production(restore_settings):
    """Production mode with good secrets and no METRICS_TOKEN, for the test's process."""
    settings.override(**production_secrets(), METRICS_TOKEN="")
    return settings.get()


@pytest.fixture
def production_app(clean_db, production):
    return create_app({"TESTING": True})


# --- demo mode fails closed -----------------------------------------------------------------


def test_without_psymatch_mode_a_local_setup_is_production(tmp_path):
    s = settings.load(environ={}, env_file=tmp_path / "none")
    assert s.PSYMATCH_MODE == "production" and not s.demo_mode
    with pytest.raises(settings.StartRefused, match="SIGNING_KEY still has its demo default"):
        settings.require_secrets(s)


def test_a_production_app_refuses_webhooks_signed_with_the_demo_secrets(production_app):
    client = production_app.test_client()
    stamp, token = wp.mailgun()["timestamp"], secrets.token_hex(25)
    forged = {
        **wp.mailgun(timestamp=stamp, token=token),
        "signature": providers.mailgun_signature(
            stamp, token, key=DEMO_DEFAULTS["MAILGUN_SIGNING_KEY"]
        ),
    }
    assert client.post(MAILGUN, data=forged).status_code == 401
    body = wp.raw()
    forged_raw = wp.raw_headers(body, secret=DEMO_DEFAULTS["RAW_WEBHOOK_SECRET"])
    assert client.post(RAW, data=body, headers=forged_raw).status_code == 401
    basic = base64.b64encode(
        f"postmark:{DEMO_DEFAULTS['POSTMARK_WEBHOOK_PASSWORD']}".encode()
    ).decode()
    response = client.post(
        POSTMARK,
        json={"MessageID": "x", "TextBody": "Hallo"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 401
    assert InboundMessage.select().count() == 0
    # the same app accepts a delivery signed with its own secret: the refusal was the key
    assert client.post(MAILGUN, data=wp.mailgun()).status_code == 202


@pytest.mark.parametrize(
    "change,problem",
    [
        (
            {"DATABASE_URL": "postgresql://psymatch:pw@db.internal:5432/psymatch"},
            "DATABASE_URL is not on this machine",
        ),
        ({"DATABASE_URL": "postgresql://u@10.0.0.5/p"}, "DATABASE_URL is not on this machine"),
        ({"PUBLIC_BASE_URL": "https://psymatch.example"}, "PUBLIC_BASE_URL is not on this"),
    ],
)
def test_demo_mode_is_refused_away_from_this_machine(tmp_path, change, problem):
    s = settings.load(environ={"PSYMATCH_MODE": "demo", **change}, env_file=tmp_path / "none")
    assert not s.demo_mode  # fails closed: demo secrets are not accepted here
    with pytest.raises(settings.StartRefused, match=problem) as refused:
        settings.require_secrets(s)
    assert "pw@" not in str(refused.value) and "db.internal" not in str(refused.value)


@pytest.mark.parametrize(
    "url,local",
    [
        ("sqlite:///var/psymatch.db", True),
        ("sqlite:///:memory:", True),
        ("postgresql://postgres@127.0.0.1:5432/test", True),
        ("postgresql://postgres@localhost/test", True),
        ("postgresql://postgres@[::1]:5432/test", True),
        ("postgresql:///psymatch", True),  # libpq's default unix socket
        ("postgresql:///psymatch?host=/var/run/postgresql", True),
        ("postgresql:///psymatch?host=db.internal", False),
        ("postgresql://u@db.internal/psymatch", False),
        ("postgresql://u@127.0.0.1.evil.example/psymatch", False),
        ("mysql://u@127.0.0.1/psymatch", False),
    ],
)
def test_what_counts_as_a_local_database(url, local):
    assert settings.is_local_database_url(url) is local


def test_demo_mode_with_a_remote_database_is_refused_by_every_entry_point(cli_env):
    env = {
        **cli_env,
        "PSYMATCH_MODE": "demo",
        "DATABASE_URL": "postgresql://psymatch:hunter2@db.internal:5432/psymatch",
    }
    for args in (
        ["-c", "from webhooks.app import create_app; create_app()"],
        ["-c", "import workers.actors"],
        ["-m", "console.server"],
        ["-m", "cli.main", "db", "status"],
    ):
        result = run(args, env)
        assert result.returncode != 0, args
        assert "refusing to start in demo mode" in result.stderr, args
        assert "hunter2" not in result.stderr and "db.internal" not in result.stderr
    assert run(["-m", "cli.main", "db", "status"], env).returncode == 2


def test_psymatch_run_is_demo_mode_and_refused_for_a_public_base_url(cli_env):
    env = {**cli_env, "PSYMATCH_MODE": "production", "PUBLIC_BASE_URL": "https://p.example"}
    result = run(["-m", "cli.main", "run", "--actor", "Erika"], env)
    assert result.returncode == 2
    assert "refusing to start in demo mode" in result.stderr
    assert "PUBLIC_BASE_URL is not on this machine" in result.stderr


# --- /dev/mail --------------------------------------------------------------------------------


def test_a_production_app_has_no_dev_mail_route(production, clean_db):
    settings.override(SMTP_URL="smtp://127.0.0.1:8025")  # the attack: SMTP on this machine
    app = create_app({"TESTING": True})
    assert devmail.bp.name not in app.blueprints
    assert not [r for r in app.url_map.iter_rules() if r.rule.startswith("/dev/")]
    assert app.test_client().get("/dev/mail/").status_code == 404
    assert devmail.register(app) is False


def test_demo_mode_serves_dev_mail(restore_settings, clean_db, tmp_path):
    settings.override(VAR_DIR=str(tmp_path), SMTP_URL="smtp://127.0.0.1:8025")
    assert settings.get().demo_mode
    app = create_app({"TESTING": True})
    assert devmail.bp.name in app.blueprints
    assert app.test_client().get("/dev/mail/").status_code == 200


# --- weak secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,value",
    [
        ("SIGNING_KEY", "aaaaaaaaaaaaaaaa"),
        ("MAILGUN_SIGNING_KEY", "abababababababababababab"),
        ("CONSOLE_TOKEN", "1234123412341234"),
        ("ENCRYPTION_KEYS", base64.urlsafe_b64encode(bytes(32)).decode()),
        ("RAW_WEBHOOK_SECRET", "demo-mailgun-signing-key"),
    ],
)
def test_weak_secrets_refuse_the_web_app_and_the_cli(cli_env, name, value):
    env = {**cli_env, **production_secrets(), name: value}
    web = run(["-c", "from webhooks.app import create_app; create_app()"], env)
    assert web.returncode != 0 and name in web.stderr and value not in web.stderr
    cli = run(["-m", "cli.main", "db", "status"], env)
    assert cli.returncode == 2, cli.stderr
    assert cli.stderr.startswith("psymatch: error: refusing to start outside demo mode")
    assert name in cli.stderr and value not in cli.stderr


def test_the_entropy_rule(tmp_path):
    assert settings.bits_per_char("a" * 32) == 0
    assert settings.bits_per_char("ab" * 16) == 1
    assert settings.bits_per_char("abcd" * 8) == 2
    s = settings.load(environ=production_secrets(), env_file=tmp_path / "none")
    assert s.secret_problems() == []
    for _ in range(50):  # generated secrets always pass
        good = {"SIGNING_KEY": secrets.token_hex(32), "CONSOLE_TOKEN": secrets.token_urlsafe(16)}
        assert settings.load(environ={**production_secrets(), **good}).secret_problems() == []


# --- /status, /metrics, /readyz ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/status", "/metrics"])
def test_operational_endpoints_need_the_token_in_production(production_app, path, redis_url):
    settings.override(REDIS_URL=redis_url)
    client = production_app.test_client()
    assert client.get(path).status_code == 404  # no token configured: not served at all
    settings.override(METRICS_TOKEN=TOKEN)
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    right = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200, right.get_data(as_text=True)


def test_failures_name_no_host(production_app, migrated):
    settings.override(METRICS_TOKEN=TOKEN, REDIS_URL="redis://127.0.0.1:1/0")
    client = production_app.test_client()
    database.init("postgresql://nobody:pw@127.0.0.1:1/nowhere?connect_timeout=1")
    try:
        status = client.get("/status", headers={"Authorization": f"Bearer {TOKEN}"})
        ready = client.get("/readyz")
    finally:
        database.init(migrated)
    assert status.status_code == 503 and ready.status_code == 503
    body = status.get_json()
    assert body["database"]["error"] == "database unavailable"
    assert body["broker"]["error"] == "broker unavailable"
    assert ready.get_json() == {"database": "unavailable", "broker": "unavailable"}
    for text in (status.get_data(as_text=True), ready.get_data(as_text=True)):
        for leak in ("127.0.0.1", "redis://", "nowhere", "nobody", "Error"):
            assert leak not in text, leak


def test_healthz_stays_open_in_production(production_app):
    response = production_app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "alive"}


# --- security headers -------------------------------------------------------------------------


def test_security_headers_on_every_response(production_app):
    client = production_app.test_client()
    responses = [
        client.get("/healthz"),
        client.get("/nothing-here"),
        client.get("/r/not-a-token"),
        client.post(MAILGUN, data={"x": "y"}),
        client.get("/metrics"),
    ]
    for response in responses:
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-store"
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy


def test_a_page_with_its_own_policy_keeps_it_and_cannot_be_framed(restore_settings, tmp_path):
    import mailbox
    from email.message import EmailMessage

    from psymatch import mailsink

    settings.override(VAR_DIR=str(tmp_path), SMTP_URL="smtp://127.0.0.1:8025")
    message = EmailMessage()
    message["Subject"] = "Anfrage"
    message["Date"] = "Tue, 19 Aug 2025 09:00:00 +0200"
    message.set_content("Text")
    message.add_alternative("<p>HTML</p>", subtype="html")
    key = mailbox.Maildir(str(mailsink.maildir_path()), create=True).add(message.as_bytes())
    client = create_app({"TESTING": True}).test_client()
    for path in ("/dev/mail/", f"/dev/mail/{key}", f"/dev/mail/{key}/html"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    sandboxed = client.get(f"/dev/mail/{key}/html").headers["Content-Security-Policy"]
    assert sandboxed.startswith("sandbox;")
    assert sandboxed != security_headers.CONTENT_SECURITY_POLICY


# --- loopback binding -------------------------------------------------------------------------


def test_procfile_web_binds_web_host_defaulting_to_all_interfaces():
    procfile = (settings.PROJECT_ROOT / "Procfile").read_text()
    web = next(line for line in procfile.splitlines() if line.startswith("web:"))
    assert "--bind ${WEB_HOST:-0.0.0.0}:${PORT:-8000}" in web
    console = next(line for line in procfile.splitlines() if line.startswith("console:"))
    assert "console.server" in console


def test_psymatch_run_starts_everything_on_loopback_in_demo_mode(restore_settings, monkeypatch):
    from cli import runner as runner_module

    started = {}

    class Stop(Exception):
        pass

    def prepare(self):
        started["env"] = dict(self.env)
        started["settings"] = self.settings
        raise Stop

    monkeypatch.setattr(runner_module.Runner, "prepare_database", prepare)
    monkeypatch.setattr(runner_module.Runner, "stop", lambda self: None)
    monkeypatch.setattr(runner_module.signal, "signal", lambda *_: None)
    settings.override(PSYMATCH_MODE="production", WORKER_METRICS_HOST="0.0.0.0")
    with pytest.raises(Stop):
        runner_module.Runner(1, 1, 1, actor="Erika").run()
    env = started["env"]
    assert env["PSYMATCH_MODE"] == "demo" and started["settings"].demo_mode
    assert env["WEB_HOST"] == "127.0.0.1" and env["WORKER_METRICS_HOST"] == "127.0.0.1"
    from console import server as console_server

    argv, _ = console_server.lab_command(started["settings"])
    assert "--ip=127.0.0.1" in argv


def test_gunicorn_refuses_demo_mode_on_a_public_address(cli_env):
    gunicorn = str(settings.PROJECT_ROOT / ".venv" / "bin" / "gunicorn")
    args = ["-c", "webhooks/gunicorn_conf.py", "--bind", f"0.0.0.0:{free_port()}"]
    env = {**cli_env, "PSYMATCH_MODE": "demo", "METRICS_DIR": str(settings.get().metrics_dir)}
    result = subprocess.run(
        [gunicorn, *args, "webhooks.app:create_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.PROJECT_ROOT,
    )
    assert result.returncode == 2
    assert "refusing to serve demo mode (PSYMATCH_MODE=demo) on 0.0.0.0:" in result.stderr
