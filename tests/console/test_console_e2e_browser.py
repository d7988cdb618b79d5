"""One patient from import to ``erfolgreich`` through the UI only (issue 15's acceptance).

The whole laptop stack runs as ``psymatch run`` starts it (web app with the one-click
link pages and ``/dev/mail``, worker, clock, mail sink, the console app) on the test
database of either backend. The test imports two therapists and two patients with
``psymatch import``; everything after that is clicked in Debian chromium:

1. Personen: look the patient up by name, open her page, **Suche eröffnen**.
2. Bündel: list the therapists of PLZ 10, preview, create with "sofort senden", confirm.
3. The inquiry arrives in the mail sink (``/dev/mail``); the therapist's one-click link
   "Ja, ich kann ein Erstgespräch anbieten" is opened and confirmed.
4. The patient's placement email arrives; her link "Erstgespräch hat stattgefunden" is
   opened and confirmed: the search is ``erfolgreich``.
5. Dashboard: the placement is counted.
6. A second patient's therapist never answers: staff close that Anfrage without answer
   (Antworten, with its confirmation) and her search is back in the pool (Heute).

Between steps the test only runs what the clock would run a minute later
(``psymatch outbox relay``), so it waits seconds instead of minutes. Screenshots of each
step: ``var/screenshots/e2e-NN-*.png``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from db.models import AuditLog, Email, Platzsuche, Therapeutenanfrage
from psymatch import settings
from psymatch.domain import vocab
from psymatch.ports import free_port
from tests.console.conftest import TIMEOUT_MS
from tests.console.test_console_app import App
from tests.console.test_console_browser import SCREENSHOTS, VIEWPORT, Console, Lab, _button, _fill

pytestmark = pytest.mark.slow

ROOT = settings.PROJECT_ROOT
EXAMPLES = ROOT / "examples"
STARTUP_S = 240


def _people(tmp_path: Path) -> tuple[Path, Path]:
    """Two therapists (Berlin, München) and two patients beside them, from the examples."""
    therapist = json.loads((EXAMPLES / "therapists.json").read_text())[0]
    patient = json.loads((EXAMPLES / "patients.json").read_text())[0]
    therapists, patients = [], []
    for n, (plz, ort, street) in enumerate(
        (("10115", "Berlin", "Chausseestraße 12"), ("80331", "München", "Sendlinger Straße 1"))
    ):
        t = copy.deepcopy(therapist)
        t.update(
            external_id=f"E2E-T{n}",
            vorname=("Tanja", "Theo")[n],
            nachname=("Antwortet", "Schweigt")[n],
            email=f"praxis{n}@example.org",
            plz=plz,
            ort=ort,
            strasse=street,
        )
        p = copy.deepcopy(patient)
        p.update(
            external_id=f"E2E-P{n}",
            vorname=("Laura", "Mara")[n],
            nachname=("Ersthilfe", "Zweitweg")[n],
            email=f"patientin{n}@example.com",
            plz=plz,
            ort=ort,
            strasse=street,
            zahlungsreferenz=f"E2E-{n}",
        )
        therapists.append(t)
        patients.append(p)
    t_file, p_file = tmp_path / "therapists.json", tmp_path / "patients.json"
    t_file.write_text(json.dumps(therapists, ensure_ascii=False))
    p_file.write_text(json.dumps(patients, ensure_ascii=False))
    return t_file, p_file


def _cli(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"psymatch {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _choose(select, text: str) -> None:
    """Pick the option of a widget dropdown whose label contains ``text`` (labels carry
    non-breaking spaces in the DOM; the option values carry plain ones)."""
    values = select.evaluate("e => [...e.options].map(o => o.value)")
    select.select_option(value=next(v for v in values if text in v))


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


@pytest.fixture
def stack(clean_db, migrated, tmp_path):
    """``psymatch run`` on the test database, after the import."""
    var = tmp_path / "var"
    port, console_port, smtp_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TEST_DATABASE_URL")}
    env.update(
        DATABASE_URL=migrated,
        VAR_DIR=str(var),
        PORT=str(port),
        CONSOLE_PORT=str(console_port),
        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        WORKER_PROCESSES="1",
        WEB_CONCURRENCY="1",
        CONSOLE_REFRESH_SECONDS="0",
        PSYMATCH_MODE="demo",
    )
    t_file, p_file = _people(tmp_path)
    _cli(env, "import", "therapists", str(t_file), "--actor", "e2e-import")
    _cli(env, "import", "patients", str(p_file), "--actor", "e2e-import")
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", "--actor", "e2e"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    web, console = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{console_port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while not (_get(f"{web}/status") == 200 and _get(f"{console}/voila/tree") == 200):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"psymatch run did not come up:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        redis_file = var / "redis.url"
        if redis_file.exists():  # the embedded Redis: the relay must reach the same broker
            env["REDIS_URL"] = redis_file.read_text().strip()
        yield {"web": web, "console": console, "env": env, "log": log}
    finally:
        from tests.console.test_console_browser import _stop

        _stop(proc)


class Flow:
    """The browser, the console app's pages, the mail sink and the screenshots."""

    def __init__(self, page, stack):
        self.page, self.stack = page, stack
        self.app = App(page, stack["console"])
        self.clicker = Lab(page, Console(stack["console"], "", []))  # act() + kernel errors
        self.expect = self.app.expect
        self.step = 0

    def shot(self, what: str) -> None:
        self.step += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"e2e-{self.step:02d}-{what}.png"))

    def relay(self) -> None:
        """What the clock runs every minute: hand queued work to the workers."""
        _cli(self.stack["env"], "outbox", "relay", "--actor", "e2e-clock")

    def mail_to(self, address: str, subject: str) -> str:
        """Open the newest mail to ``address`` in /dev/mail (waiting for it); its text."""
        deadline = time.monotonic() + 90
        while True:
            self.page.goto(f"{self.stack['web']}/dev/mail/")
            row = self.page.locator("tr", has_text=address).filter(has_text=subject).first
            if row.count():
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no mail to {address} ({subject}):\n"
                    + self.page.locator("body").inner_text()[-2000:]
                    + self.stack["log"].read_text()[-3000:]
                )
            self.relay()
            time.sleep(1)
        row.locator("a").first.click()
        self.expect(self.page.locator("h1")).to_contain_text(subject)
        return self.page.locator("pre").first.inner_text()

    def click_link(self, text: str, label: str) -> None:
        """Open the one-click link under ``label`` in a mail's text and confirm it."""
        lines = [line.strip() for line in text.splitlines()]
        at = next(i for i, line in enumerate(lines) if label in line)
        url = next(line for line in lines[at + 1 :] if line.startswith("http"))
        self.page.goto(url)
        self.page.get_by_role("button", name="Bestätigen").click()


def test_one_patient_from_import_to_erfolgreich_through_the_ui(browser, stack):
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(TIMEOUT_MS)
    flow = Flow(page, stack)
    act = flow.clicker.act

    # 1. Personen: find Laura by name, open her page, open a search.
    flow.app.open("Personen.ipynb")
    people = page.locator(".psymatch-people").first
    _fill(people.get_by_label("Suche", exact=True), "Laura Ersthilfe")
    act(people, "Suchen", r"✓ 1 Treffer.*")
    _choose(people.get_by_label("Person", exact=True), "Laura Ersthilfe")
    _button(people, "Öffnen").click()
    person = page.locator(".psymatch-person")
    flow.expect(person).to_contain_text("Laura Ersthilfe")
    act(person, "Suche eröffnen", r"✓ Suche \d+ für Laura Ersthilfe eröffnet")
    laura = Platzsuche.get(Platzsuche.status == "aktiv")
    flow.expect(page.locator(".psymatch-searches")).to_contain_text("Laura Ersthilfe")
    flow.shot("personen-suche-eroeffnet")

    # 2. Bündel: Tanja Antwortet (PLZ 10), preview, create and send (confirmed).
    flow.app.open("Bundles.ipynb")
    bundles = page.locator(".psymatch-bundles")
    _fill(bundles.get_by_label("PLZ-Präfix", exact=True), "10")
    act(bundles, "Therapeut:innen", r"✓ 1 auswählbare Therapeut:innen für PLZ 10")
    act(bundles, "Vorschau", r"✓ Vorschau: 1 Patienten für Therapeut \d+")
    flow.expect(bundles).to_contain_text("Laura Ersthilfe")
    bundles.get_by_label("sofort senden").check()
    _button(bundles, "Anfrage erstellen").click()
    act(bundles, "Ja, erstellen und senden", r"✓ Anfrage \d+ erstellt \(1 P\.\), zum Versand .*")
    flow.shot("buendel-gesendet")

    # 3. The inquiry in the sink: the therapist accepts with her one-click link.
    inquiry = flow.mail_to("praxis0@example.org", "Psychotherapieplätze")
    flow.shot("anfrage-im-postfach")
    flow.click_link(inquiry, vocab.ANTWORT_LABELS["angenommen"])
    flow.expect(page.locator("h1")).to_contain_text("Antwort erfasst")
    flow.shot("therapeutin-nimmt-an")
    assert Platzsuche.get_by_id(laura.id).vermittelter_therapeut_id is not None

    # 4. Laura's placement email: she confirms the first session with her link.
    placement = flow.mail_to("patientin0@example.com", "Therapieplatz")
    assert "Tanja Antwortet" in placement and "praxis0@example.org" in placement
    flow.shot("vermittlungsmail")
    flow.click_link(placement, vocab.VERMITTLUNGSERGEBNIS_LABELS["stattgefunden"])
    flow.shot("patientin-bestaetigt")
    assert Platzsuche.get_by_id(laura.id).status == "erfolgreich"

    # 5. Dashboard: the placement is counted.
    flow.app.open("Dashboard.ipynb")
    flow.expect(page.locator(".psymatch-status").first).to_contain_text(", 1 Vermittlungen")
    row = page.locator("table.psymatch-dashboard tr", has_text="Vermittlungen").first
    flow.expect(row.locator("td").nth(1)).to_have_text("1")
    flow.shot("dashboard")

    # 6. Mara's therapist never answers: staff close the Anfrage, Mara is back in the pool.
    flow.app.open("Personen.ipynb")
    people = page.locator(".psymatch-people").first
    _fill(people.get_by_label("Suche", exact=True), "Mara Zweitweg")
    act(people, "Suchen", r"✓ 1 Treffer.*")
    _choose(people.get_by_label("Person", exact=True), "Mara Zweitweg")
    _button(people, "Öffnen").click()
    act(page.locator(".psymatch-person"), "Suche eröffnen", r"✓ Suche \d+ für Mara .*")
    mara = Platzsuche.get((Platzsuche.status == "aktiv") & (Platzsuche.id != laura.id))
    flow.app.open("Bundles.ipynb")
    bundles = page.locator(".psymatch-bundles")
    _fill(bundles.get_by_label("PLZ-Präfix", exact=True), "80")
    act(bundles, "Therapeut:innen", r"✓ 1 auswählbare Therapeut:innen für PLZ 80")
    bundles.get_by_label("sofort senden").check()
    _button(bundles, "Anfrage erstellen").click()
    text = act(bundles, "Ja, erstellen und senden", r"✓ Anfrage \d+ erstellt .*")
    silent = int(re.search(r"Anfrage (\d+)", text).group(1))
    flow.mail_to("praxis1@example.org", "Psychotherapieplätze")  # sent, and never answered
    flow.app.open("Responses.ipynb")
    responses = page.locator(".psymatch-responses")
    _fill(responses.get_by_label("Anfrage-ID", exact=True), silent)
    _button(responses, "Laden").click()
    responses.get_by_label(re.compile(rf"Ja, Anfrage {silent} an .* ohne Antwort")).check()
    act(responses, "Ohne Antwort schließen", rf"✓ Anfrage {silent} ohne Antwort geschlossen.*")
    flow.shot("ohne-antwort-geschlossen")
    assert Therapeutenanfrage.get_by_id(silent).antworttyp == "keine_Antwort"
    mara = Platzsuche.get_by_id(mara.id)
    assert mara.status == "aktiv" and mara.vermittelter_therapeut_id is None
    flow.app.open("Today.ipynb")
    waiting = page.locator(".psymatch-today-lists")
    flow.expect(waiting).to_contain_text(f"Suche {mara.id}: Mara Zweitweg")  # back in the pool
    flow.shot("heute-wieder-im-pool")

    assert flow.clicker.kernel_errors == []
    sent = Email.select().where(Email.status == "Gesendet").count()
    assert sent >= 3  # two inquiries and the placement email, each once
    assert AuditLog.select().where(AuditLog.actor == "demo").count() >= 4  # staff clicks
