"""Personal sign-in to the production console: JupyterHub in a real browser.

``python -m console.server`` runs in production mode (the Procfile's ``console``): JupyterHub
with psymatch's staff accounts, configurable-http-proxy from npm and one JupyterLab per
staff member. Three staff members sign in through the hub's login page in browser contexts
of their own (separate cookies), land on the console app's start page (Voilà), open the
Searches page there (widgets shown, no code, no "Run All") and click "Suche eröffnen" for a
patient of their own:

* ``anna`` and ``bernd`` (role ``team``): the search is opened and the audit row names the
  one who clicked, not a shared console name;
* ``lesa`` (role ``lesen``): the panel answers FORBIDDEN and nothing is written.

The reader then reads the audit log in JupyterLab (``/lab``, still there for admins). A wrong
password gets the login page again, and a kernel's environment holds the database and
encryption settings but none of the withheld secrets.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from console.hub import PROXY
from db.models import AuditLog, Platzsuche
from operations import staff
from psymatch import settings
from psymatch.ports import free_port
from tests import factories as f
from tests.conftest import missing, production_secrets
from tests.console.test_console_browser import (
    LAB_SETTINGS,
    NOTEBOOKS,
    TIMEOUT_MS,
    VIEWPORT,
    Console,
    Lab,
    _fill,
    _stop,
)

pytestmark = pytest.mark.slow

PASSWORDS = {
    "anna": "anna-sagt-hallo-2026",
    "bernd": "bernd-sagt-moin-2026",
    "lesa": "lesa-liest-nur-2026",
}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def people(clean_db):
    """Three staff accounts and a patient without a search for each of them; the data is
    encrypted with a production key of its own, which the hub then gets."""
    key = Fernet.generate_key().decode()
    before = settings.get()
    settings.override(ENCRYPTION_KEYS=key)
    try:
        staff.create("anna", "Anna Team", "team", PASSWORDS["anna"], actor="test")
        staff.create("bernd", "Bernd Team", "team", PASSWORDS["bernd"], actor="test")
        staff.create("lesa", "Lesa Lesen", "lesen", PASSWORDS["lesa"], actor="test")
        patients = {name: f.patient().id for name in PASSWORDS}
        yield key, patients
    finally:
        settings.override(ENCRYPTION_KEYS=before.ENCRYPTION_KEYS)


@pytest.fixture
def hub(people, migrated, tmp_path):
    if not PROXY.exists():
        missing(f"configurable-http-proxy ({PROXY}; npm ci --prefix console/hub)")
    key, _ = people
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("Searches.ipynb", "Audit.ipynb"):
        shutil.copy(NOTEBOOKS / name, notebooks / name)
    var = tmp_path / "var"
    for name in PASSWORDS:  # the test's lab settings (no autosave, no news) per person
        for plugin, values in LAB_SETTINGS.items():
            target = (
                var / "console" / "home" / name / "lab-settings" / (f"{plugin}.jupyterlab-settings")
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
    port = free_port()
    env = settings.child_environ(
        **{**production_secrets(), "ENCRYPTION_KEYS": key},
        DATABASE_URL=migrated,
        VAR_DIR=str(var),
        PUBLIC_BASE_URL="https://psymatch.example",
        CONSOLE_PORT=str(port),
        CONSOLE_HUB_PORT=str(free_port()),
        CONSOLE_PROXY_API_PORT=str(free_port()),
        CONSOLE_NOTEBOOK_DIR=str(notebooks),
    )
    log = tmp_path / "hub.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console.server"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=settings.PROJECT_ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _answers(f"{base}/hub/login"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterHub did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, log
    finally:
        _stop(proc)


def _sign_in(browser, base: str, user: str, password: str):
    """A browser context of its own (its own cookies), signed in through the login form."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/hub/login")
    page.locator("#username_input").fill(user)
    page.locator("#password_input").fill(password)
    page.locator("#login_submit").click()
    return context, page


def _notebook(page, base: str, user: str, name: str):
    """Open a notebook in the user's own JupyterLab, run it, return (lab, its panel)."""
    lab = Lab(page, Console(f"{base}/user/{user}", "", [name]))
    page.goto(f"{base}/user/{user}/lab/tree/{name}")
    lab._opened(name)
    lab.run_all(name)
    return lab, lab.rendered(name)


def _open_search_as(browser, base: str, user: str, patient_id: int, expected: str) -> str:
    """Sign in, land on the app's start page, open the Searches page in the app, act."""
    from tests.console.test_console_app import App

    context, page = _sign_in(browser, base, user, PASSWORDS[user])
    try:
        page.wait_for_url(re.compile(rf"/user/{user}/voila/tree"), timeout=120_000)
        lab = Lab(page, Console(f"{base}/user/{user}", "", ["Searches.ipynb"]))
        App(page, base).open("Searches.ipynb", prefix=f"/user/{user}")
        App(page, base).screenshot(f"hub-{user}-Searches.ipynb")
        searches = page.locator(".psymatch-searches")
        _fill(searches.get_by_label("Patient-ID", exact=True), patient_id)
        text = lab.act(searches, "Suche eröffnen", expected)
        assert lab.kernel_errors == [], lab.kernel_errors
        # Terminals are off: the terminals API of the staff member's own server is not there.
        terminals = page.request.get(f"{base}/user/{user}/api/terminals")
        assert terminals.status == 404, terminals.status
        return text
    finally:
        context.close()


def _audit_rows_seen_by(browser, base: str, user: str) -> list[list[str]]:
    """The audit log as the Audit notebook shows it to ``user``: (who, action, record) rows."""
    context, page = _sign_in(browser, base, user, PASSWORDS[user])
    try:
        page.wait_for_url(re.compile(rf"/user/{user}/voila/tree"), timeout=120_000)
        lab, panel = _notebook(page, base, user, "Audit.ipynb")
        rows = panel.locator("table.psymatch-audit-table tr")
        lab.expect(rows.nth(1)).to_be_visible()
        cells = [[c.strip() for c in r.split("\t")] for r in rows.all_inner_texts()[1:]]
        assert lab.kernel_errors == [], lab.kernel_errors
        lab.screenshot("Audit.ipynb")
        return [[c[1], c[2], c[3]] for c in cells]
    finally:
        context.close()


def test_each_staff_member_signs_in_and_acts_under_their_own_name(hub, people, browser):
    base, log = hub
    _, patients = people

    # A wrong password: the login page again, with JupyterHub's message.
    context, page = _sign_in(browser, base, "anna", "not-annas-password")
    page.locator("#login_submit").wait_for()
    assert "/hub/login" in page.url
    assert page.locator(".login_error").inner_text().strip()
    context.close()

    for user in ("anna", "bernd"):
        _open_search_as(
            browser,
            base,
            user,
            patients[user],
            rf"✓ Suche \d+ für Patient {patients[user]} eröffnet",
        )
        search = Platzsuche.get(Platzsuche.patient == patients[user])
        row = AuditLog.get(
            (AuditLog.action == "create_platzsuche") & (AuditLog.entity_id == str(search.id))
        )
        assert row.actor == user

    audit_before = AuditLog.select().count()
    _open_search_as(browser, base, "lesa", patients["lesa"], r"✗ Ihre Rolle Lesen .* FORBIDDEN")
    assert Platzsuche.select().where(Platzsuche.patient == patients["lesa"]).count() == 0
    assert AuditLog.select().count() == audit_before

    # The reader finds both names on their actions in the audit log, in the browser.
    seen = _audit_rows_seen_by(browser, base, "lesa")
    assert ["anna", "Platzsuche angelegt", "Platzsuche"] in seen
    assert ["bernd", "Platzsuche angelegt", "Platzsuche"] in seen
    assert not any(row[0] == "lesa" for row in seen)

    text = log.read_text()
    assert "User logged in: anna" in text and "User logged in: bernd" in text
    # The hub keeps its state under VAR_DIR, nothing in the working directory
    assert not (settings.PROJECT_ROOT / "jupyterhub-proxy.pid").exists()
    assert not (settings.PROJECT_ROOT / "jupyterhub.sqlite").exists()


def test_a_kernel_gets_the_database_but_no_webhook_secret_or_signing_key(hub, people):
    """What the hub hands a staff member's server (and so every kernel) to run on."""
    environment = settings.kernel_environ()
    assert environment["DATABASE_URL"] == settings.get().DATABASE_URL
    assert environment["ENCRYPTION_KEYS"] == settings.get().ENCRYPTION_KEYS
    for name in settings.KERNEL_WITHHELD:
        assert environment[name] == "", name
    running = [
        Path(f"/proc/{pid}/environ")
        for pid in subprocess.run(
            ["pgrep", "-f", "bin/jupyterhub -f"], capture_output=True, text=True
        ).stdout.split()
    ]
    checked = 0
    for path in running:
        try:
            found = dict(item.split("=", 1) for item in path.read_text().split("\0") if "=" in item)
        except OSError:
            continue
        if found.get("DATABASE_URL") != settings.get().DATABASE_URL:
            continue  # another test run's hub
        checked += 1
        assert found["ENCRYPTION_KEYS"] == settings.get().ENCRYPTION_KEYS
        for name in settings.KERNEL_WITHHELD:
            assert found.get(name, "") == "", name
    assert checked == 1  # this test's hub was found and looked at
