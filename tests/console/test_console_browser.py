"""The staff console in a real browser: JupyterLab driven by Debian chromium through Playwright.

One flow, clicked and typed in the rendered widgets, against the test database (either
backend): open a search for a patient (Searches), compose and send a bundle for a therapist
(Bundles), record the therapist's partial acceptance (Responses), settle the conflict it
causes (Conflicts) and see the dashboard's figures change (Dashboard). Every step asserts
what the page shows and what the database holds; every notebook is opened, run and saved
as a screenshot under ``var/screenshots/<Notebook>.png``.

The conflict: therapist "Dr. Anna Erste" was asked about patient X before (a sent bundle,
seeded). After staff composed the new bundle for "Berta Zweite" (which also offers X), Dr.
Erste's email reply accepting X arrives (recorded through the same operation the reply
worker calls), so X leaves every other bundle; when Zweite then accepts X as well, that
second acceptance is a conflict (docs/domain.md §10), which staff settle by assigning X to her.

JupyterLab runs on a copy of ``notebooks/`` (autosave is off as well, so nothing is ever
written into the repository), with its own settings, workspace and runtime folders.
The Debian package ``chromium`` is required in CI; elsewhere its absence skips the test.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from console import fmt
from db.models import (
    OutboxItem,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    utcnow,
)
from operations.bundles import create_anfrage
from operations.responses import record_response
from psymatch import settings
from psymatch.ports import free_port
from tests import factories as f
from tests.console.conftest import TIMEOUT_MS
from workers.communication_actors import send_anfrage as send_actor

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SCREENSHOTS = settings.PROJECT_ROOT / "var" / "screenshots"
VIEWPORT = {"width": 1500, "height": 1600}
# JupyterLab user settings: start the notebook's kernel without asking, never autosave
# (the notebooks are copies anyway) and do not ask about news.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
ERROR_MESSAGE = re.compile(r'"msg_type":\s*"error"')
NAMES = ("ename", "evalue")


# --- the scenario --------------------------------------------------------------------------


@dataclass
class Scenario:
    first_therapist: int  # Dr. Anna Erste: asked about patient X before, answers by email
    therapist: int  # Berta Zweite: gets the bundle staff compose in the browser
    other_therapist: int  # Carla Dritte: also selectable, not chosen
    first_anfrage: int  # Erste's sent, pending bundle with X
    x_patient: int
    x_search: int
    waiting: list[int]  # two more patients with searches (Y, Z)
    new_patient: int  # W: no search yet; staff open one in the browser


@pytest.fixture
def scenario(clean_db) -> Scenario:
    now = utcnow()
    first = f.therapist(titel="Dr.", vorname="Anna", nachname="Erste")
    x = f.search(days_waiting=30)
    first_anfrage = create_anfrage(first.id, now=now).anfrage_id  # only X is in the pool
    f.mark_sent(first_anfrage, now)
    waiting = [f.search(days_waiting=20).patient_id, f.search(days_waiting=15).patient_id]
    new_patient = f.patient()
    second = f.therapist(vorname="Berta", nachname="Zweite")
    third = f.therapist(vorname="Carla", nachname="Dritte")
    return Scenario(
        first_therapist=first.id,
        therapist=second.id,
        other_therapist=third.id,
        first_anfrage=first_anfrage,
        x_patient=x.patient_id,
        x_search=x.id,
        waiting=waiting,
        new_patient=new_patient.id,
    )


# --- JupyterLab and the browser --------------------------------------------------------------


def _answers(url: str, token: str) -> bool:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM lets Jupyter shut its kernels down; whatever is left is killed by pid."""
    try:
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = [proc.pid]
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pid in family[1:]:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()


@dataclass
class Console:
    base: str
    token: str
    names: list[str]


@pytest.fixture
def console(scenario, migrated, tmp_path):
    """``jupyter lab`` with the options of ``console/server.py`` (the Procfile's
    ``console``), token through ``JUPYTER_TOKEN``, on a copy of the notebooks."""
    root = tmp_path / "notebooks"
    root.mkdir()
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        shutil.copy(path, root / path.name)
    lab_settings = tmp_path / "lab-settings"
    for plugin, values in LAB_SETTINGS.items():
        target = lab_settings / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port, token = free_port(), "psymatch-browser-test"
    env = settings.child_environ(
        DATABASE_URL=migrated,
        JUPYTER_TOKEN=token,
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(lab_settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
    )
    log = tmp_path / "jupyter.log"
    jupyter = Path(sys.executable).with_name("jupyter")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(jupyter),
                "lab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={root}",
                "--ServerApp.allow_root=True",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _answers(f"{base}/api/status", token):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Console(base, token, [p.name for p in sorted(root.glob("*.ipynb"))])
    finally:
        _stop(proc)


@pytest.fixture
def page(browser):
    tab = browser.new_page(viewport=VIEWPORT)
    tab.set_default_timeout(TIMEOUT_MS)
    return tab


class Lab:
    """The JupyterLab page: open notebooks, run them, find their panels, act in them."""

    def __init__(self, page, console: Console):
        from playwright.sync_api import expect

        self.page, self.console, self.expect = page, console, expect
        self.panel_ids: dict[str, str] = {}
        self.started = self.last = time.monotonic()
        self.wall_start = time.time()
        self.timings: list[tuple[str, float]] = []
        self.kernel_errors: list[str] = []
        page.on("websocket", self._watch)

    def mark(self, step: str) -> None:
        """Note how long the step took (printed at the end: ``pytest -s`` shows it)."""
        now = time.monotonic()
        self.timings.append((step, now - self.last))
        self.last = now

    def report(self) -> str:
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in self.timings)
        return f"browser flow {time.monotonic() - self.started:.1f} s: {steps}"

    def start(self, first: str) -> None:
        c = self.console
        self.page.goto(f"{c.base}/lab/tree/{first}?token={c.token}")
        self._opened(first)

    def _tab(self, name: str):
        return self.page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab[title^="Name: {name}"]')

    def _opened(self, name: str) -> None:
        self.expect(self._tab(name)).to_have_class(re.compile(r"\blm-mod-current\b"))
        panel = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        self.expect(panel).to_have_count(1)
        self.panel_ids[name] = panel.get_attribute("id")

    def open(self, name: str) -> None:
        """Open a notebook from the file browser (a new tab, its kernel starts)."""
        self.page.locator(".jp-DirListing-item", has_text=name).dblclick()
        self._opened(name)

    def show(self, name: str):
        """Bring a notebook's tab to the front (from the file browser, as staff would when
        the tab bar is crowded); returns its panel."""
        self.page.locator(".jp-DirListing-item", has_text=name).dblclick()
        self.expect(self._tab(name)).to_have_class(re.compile(r"\blm-mod-current\b"))
        panel = self.panel(name)
        self.expect(panel).to_be_visible()
        return panel

    def panel(self, name: str):
        return self.page.locator(f"#{self.panel_ids[name]}")

    def run_all(self, name: str, attempts: int = 3) -> None:
        """Run > Run All Cells, once the kernel is idle; again if no cell started (a fresh
        server's first "Run All" can come before the kernel session is wired up and is
        then dropped silently)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        panel = self.show(name)
        indicator = panel.locator(".jp-Notebook-ExecutionIndicator")
        started = panel.locator(".jp-InputArea-prompt", has_text=re.compile(r"\[(\*|\d+)\]:"))
        for attempt in range(attempts):
            self.expect(indicator).to_have_attribute("data-status", "idle")
            self.page.locator(".lm-MenuBar-item", has_text="Run").click()
            self.page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
            try:
                started.first.wait_for(state="visible", timeout=20_000)
                return
            except PlaywrightTimeout:
                if attempt == attempts - 1:
                    raise

    def rendered(self, name: str):
        """Wait until the notebook's widgets are rendered; fail on a traceback."""
        panel = self.show(name)
        widget = panel.locator(".jp-OutputArea-output .widget-vbox").first
        traceback = panel.locator(".jp-OutputArea-output", has_text="Traceback")
        self.expect(widget.or_(traceback.first)).to_be_visible()
        assert traceback.count() == 0, f"{name}: {traceback.first.inner_text()[-2000:]}"
        self.expect(panel.locator(".jp-InputArea-prompt", has_text="[1]:").first).to_be_visible()
        return panel

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{Path(name).stem}.png"
        self.panel(name).screenshot(path=str(path))
        return path

    def act(self, scope, button: str, expected: str) -> str:
        """Click a button of a panel, wait until its status line changes, check it."""
        status = scope.locator(".psymatch-status").first
        before = status.text_content().strip()
        _button(scope, button).click()
        try:
            self.expect(status).not_to_have_text(before)
        except AssertionError:
            raise AssertionError(
                f"{button}: the status line still says {before!r}; "
                f"kernel errors: {self.kernel_errors or 'none'}"
            ) from None
        text = status.text_content().strip()
        assert re.fullmatch(expected, text), (
            f"{button}: {text!r}, kernel errors: {self.kernel_errors}"
        )
        return text

    def _watch(self, socket) -> None:
        if "/api/kernels/" in socket.url:
            socket.on("framereceived", self._frame)

    def _frame(self, payload) -> None:
        """Keep every ``error`` message a kernel sends (a traceback in a button callback goes
        to JupyterLab's log console, not to the page)."""
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        if not ERROR_MESSAGE.search(text):
            return
        found = {key: re.search(rf'"{key}":\s*"((?:[^"\\]|\\.)*)"', text) for key in NAMES}
        self.kernel_errors.append(": ".join(m.group(1) for m in found.values() if m) or text[:300])


def _button(scope, label: str):
    """A widget button by its label (ipywidgets sets the title; the icon is in the text)."""
    return scope.locator(f'button[title="{label}"]')


def _fill(control, value) -> None:
    """Type a value and leave the field, so the widget syncs it to the kernel."""
    control.fill(str(value))
    control.press("Tab")


def _figure(panel, label: str) -> str:
    row = panel.locator("table.psymatch-dashboard tr", has_text=label).first
    return row.locator("td").nth(1).inner_text().strip()


# --- the test --------------------------------------------------------------------------------

FLOW = ["Searches.ipynb", "Bundles.ipynb", "Responses.ipynb", "Conflicts.ipynb", "Dashboard.ipynb"]


def test_console_flow_in_the_browser(page, console, scenario):
    s = scenario
    lab = Lab(page, console)
    names = console.names
    assert set(FLOW) <= set(names)

    # Open every notebook (their kernels start side by side), then run each one.
    lab.start(names[0])
    for name in names[1:]:
        lab.open(name)
    lab.mark("open")
    for name in names:
        lab.run_all(name)
    lab.mark("run all")
    for name in names:
        lab.rendered(name)
        if name not in FLOW:  # the flow's panels are shot after their step
            lab.screenshot(name)
    lab.mark("rendered")

    panel = lab.show("Dashboard.ipynb")
    lab.expect(panel.locator("h3", has_text="Dashboard")).to_be_visible()
    before = {k: _figure(panel, k) for k in ("Anfragen gesamt", "Konfliktrate")}
    assert before == {"Anfragen gesamt": "1", "Konfliktrate": "0.0 %"}

    # 1. Searches: open a search for patient W.
    panel = lab.show("Searches.ipynb")
    searches = panel.locator(".psymatch-searches")
    _fill(searches.get_by_label("Patient-ID", exact=True), s.new_patient)
    text = lab.act(searches, "Suche eröffnen", rf"✓ Suche \d+ für Patient {s.new_patient} eröffnet")
    w_search = int(re.search(r"Suche (\d+)", text).group(1))
    first_cell = page.locator("td:first-child", has_text=re.compile(rf"^{w_search}$"))
    row = searches.locator("table.psymatch-table tr").filter(has=first_cell)
    lab.expect(row).to_contain_text(f"{s.new_patient}")
    lab.expect(row).to_contain_text("aktiv")
    search = Platzsuche.get_by_id(w_search)
    assert (search.patient_id, search.status) == (s.new_patient, "aktiv")
    lab.screenshot("Searches.ipynb")
    lab.mark("searches")

    # 2. Bundles: list the therapists of PLZ 10, pick Berta Zweite, preview, create and send.
    panel = lab.show("Bundles.ipynb")
    bundles = panel.locator(".psymatch-bundles")
    _fill(bundles.get_by_label("PLZ-Präfix", exact=True), "10")
    lab.act(bundles, "Therapeut:innen", r"✓ 2 auswählbare Therapeut:innen für PLZ 10")
    choice = bundles.get_by_label("Therapeut", exact=True)
    lab.expect(choice).to_contain_text("Carla")
    choice.select_option(value=f"{s.therapist} – Berta Zweite")
    lab.act(bundles, "Vorschau", rf"✓ Vorschau: 4 Patienten für Therapeut {s.therapist}")
    offered = [s.x_patient, *s.waiting, s.new_patient]  # longest waiting first
    preview = bundles.locator("table.psymatch-table").first
    for patient_id in offered:
        lab.expect(preview).to_contain_text(str(patient_id))
    assert Therapeutenanfrage.select().count() == 1  # a preview stores nothing
    bundles.get_by_label("sofort senden").check()
    _button(bundles, "Anfrage erstellen").click()  # sending reaches the practice: asked first
    question = bundles.locator(".psymatch-confirmation", has_text="sofort senden")
    lab.expect(question).to_contain_text(f"Anfrage für Therapeut {s.therapist} Berta Zweite")
    assert Therapeutenanfrage.select().count() == 1
    text = lab.act(
        bundles,
        "Ja, erstellen und senden",
        r"✓ Anfrage \d+ erstellt \(4 P\.\), zum Versand eingeplant",
    )
    anfrage_id = int(re.search(r"Anfrage (\d+)", text).group(1))
    # The kernel holds no signing key: a worker renders and sends (its actor, run here).
    queued = OutboxItem.get(OutboxItem.dedupe_key == f"send_anfrage:{anfrage_id}")
    send_actor.fn(**queued.payload)
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert anfrage.therapist_id == s.therapist and anfrage.gesendet_datum is not None
    lines = (
        TherapeutAnfragePatient.select()
        .where(TherapeutAnfragePatient.therapeutenanfrage == anfrage_id)
        .order_by(TherapeutAnfragePatient.position_in_anfrage)
    )
    assert [line.patient_id for line in lines] == offered
    lab.screenshot("Bundles.ipynb")
    lab.mark("bundles")

    # Meanwhile Dr. Erste's email reply accepts X (the reply worker's operation): X is placed
    # with her and leaves the new bundle.
    record_response(s.first_anfrage, {s.x_patient: "angenommen"}, actor="system", source="email")
    assert Platzsuche.get_by_id(s.x_search).vermittelter_therapeut_id == s.first_therapist

    # 3. Responses: Berta Zweite accepts X and W, declines Y and Z.
    panel = lab.show("Responses.ipynb")
    responses = panel.locator(".psymatch-responses")
    _fill(responses.get_by_label("Anfrage-ID", exact=True), anfrage_id)
    _button(responses, "Laden").click()
    lab.expect(responses).to_contain_text(f"Anfrage {anfrage_id} an Berta Zweite")
    answers = {
        s.x_patient: "angenommen",
        s.new_patient: "angenommen",
        s.waiting[0]: "abgelehnt_Kapazitaet",
        s.waiting[1]: "abgelehnt_nicht_geeignet",
    }
    for patient_id, answer in answers.items():
        responses.get_by_label(f"Patient {patient_id}", exact=True).select_option(
            label=fmt.label(answer, "THERAPEUTENANTWORTEN")  # staff choose German words
        )
    lab.act(
        responses,
        "Speichern",
        re.escape("✓ Antwort gespeichert: teilweise Annahme (2 angenommen, 2 abgelehnt, ")
        + re.escape("1 Konflikt(e))"),
    )
    lab.expect(responses).to_contain_text("teilweise Annahme")
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert (anfrage.antworttyp, anfrage.angenommen_anzahl, anfrage.abgelehnt_anzahl) == (
        "teilweise_Annahme",
        2,
        2,
    )
    w = Platzsuche.get_by_id(w_search)
    x = Platzsuche.get_by_id(s.x_search)
    assert w.vermittelter_therapeut_id == s.therapist  # W's first acceptance places her
    assert x.vermittelter_therapeut_id == s.first_therapist  # the first acceptance wins
    notice = OutboxItem.get(OutboxItem.task == "send_conflict_notice")
    assert notice.payload == {"anfrage_id": anfrage_id, "patient_ids": [s.x_patient]}
    lab.screenshot("Responses.ipynb")
    lab.mark("responses")

    # 4. Conflicts: X accepted twice, Dr. Erste's acceptance placed X; staff reassign X to
    # Berta Zweite after ticking the confirmation; the settled conflict leaves the list.
    panel = lab.show("Conflicts.ipynb")
    conflicts = panel.locator(".psymatch-conflicts")
    _button(conflicts, "Aktualisieren").click()
    lab.expect(conflicts).to_contain_text("1 Konflikt(e) offen")
    row = conflicts.locator(".psymatch-conflict", has_text=f"Patient {s.x_patient} ")
    lab.expect(row).to_contain_text(
        f"Suche {s.x_search}, vermittelt an Dr. Anna Erste (Therapeut {s.first_therapist})"
    )
    row.get_by_label("Neu zuweisen an").select_option(value=f"{s.therapist} – Berta Zweite")
    row.get_by_label(re.compile(r"^Ja: Patient \d+ geht an Berta Zweite")).check()
    lab.act(
        conflicts,
        "Neu zuweisen",
        rf"✓ Patient {s.x_patient} \(Suche {s.x_search}\) neu zugewiesen an Therapeut "
        rf"{s.therapist}; .*",
    )
    lab.expect(conflicts).to_contain_text("0 Konflikt(e) offen")
    assert Platzsuche.get_by_id(s.x_search).vermittelter_therapeut_id == s.therapist
    lab.screenshot("Conflicts.ipynb")
    lab.mark("conflicts")

    # 5. Dashboard: "Anwenden" recomputes; the second bundle and the conflict show.
    panel = lab.show("Dashboard.ipynb")
    lab.act(panel, "Anwenden", r"✓ Kennzahlen .*: 2 Anfragen, \d+ Vermittlungen")
    after = {k: _figure(panel, k) for k in ("Anfragen gesamt", "Konfliktrate")}
    # conflict rate: X accepted twice, W once -> 1 of 2 searches with an acceptance
    assert after == {"Anfragen gesamt": "2", "Konfliktrate": "50.0 %"}
    lab.screenshot("Dashboard.ipynb")
    lab.mark("dashboard")

    print(lab.report())
    assert lab.kernel_errors == []
    for name in names:  # one fresh PNG per notebook (a file from an earlier run proves nothing)
        shot = SCREENSHOTS / f"{Path(name).stem}.png"
        assert shot.stat().st_mtime >= lab.wall_start - 1, shot
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
