"""The console as an app (Voilà) in a real browser, on the repository's own notebooks.

``python -m console.server`` in demo mode, exactly as ``scripts/run`` starts it, serving
the tracked ``notebooks/`` folder itself (not a copy). The start page lists the console
pages; each page opens with its widgets rendered and no code shown, without "Run All".
Staff click in some of them; an admin opens a notebook in JupyterLab (``/lab``) and
presses Ctrl+S. Afterwards every notebook file is byte for byte what it was and
``git status --porcelain notebooks/`` is unchanged: Voilà never saves, and the read-only
contents manager refuses JupyterLab's save.

Screenshots: ``var/screenshots/app-<Notebook>.png``. The time from opening a page to its
widgets being visible is printed (``pytest -s``) and must stay under ``PAGE_BUDGET_S``
(a generous bound for the small, shared CI machine; ``psymatch bench console`` measures the
render itself against its 2 s target).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db.models import AuditLog
from operations import audit
from psymatch import settings
from psymatch.ports import free_port
from tests import factories as f
from tests.console.test_console_browser import (
    NOTEBOOKS,
    SCREENSHOTS,
    TIMEOUT_MS,
    VIEWPORT,
    Console,
    Lab,
    _answers,
    _fill,
    _stop,
)

pytestmark = pytest.mark.slow

PAGE_BUDGET_S = 30.0


def fingerprint() -> dict[str, str]:
    """Every file in notebooks/ (hidden ones too) with its SHA-256."""
    return {
        str(p.relative_to(NOTEBOOKS)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(NOTEBOOKS.rglob("*"))
        if p.is_file()
    }


def git_status() -> str:
    found = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored", "notebooks/"],
        cwd=settings.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    return found.stdout if found.returncode == 0 else f"git failed: {found.stderr}"


class App:
    """Pages of the console app: open one, wait for its widgets, check no code is shown."""

    def __init__(self, page, base: str):
        from playwright.sync_api import expect

        self.page, self.base, self.expect = page, base, expect
        self.timings: dict[str, float] = {}

    def open(self, name: str, prefix: str = ""):
        started = time.monotonic()
        self.page.goto(f"{self.base}{prefix}/voila/render/{name}")
        return self.rendered(name, started)

    def rendered(self, name: str, started: float):
        page = self.page
        widget = page.locator(".widget-vbox").first
        failed = page.locator(".jp-OutputArea-output", has_text=re.compile("Traceback|error"))
        self.expect(widget.or_(failed.first)).to_be_visible()
        assert failed.count() == 0, f"{name}: {failed.first.inner_text()[-2000:]}"
        self.timings[name] = time.monotonic() - started
        # the app shows no code: no input areas, no editors, no prompts
        # (a markdown cell's text sits in an input area too: only code cells count)
        for code in (".jp-CodeCell .jp-InputArea", ".jp-CodeMirrorEditor", ".cm-editor", "pre"):
            assert page.locator(f"{code}:visible").count() == 0, (name, code)
        assert "connect()" not in page.locator("body").inner_text()
        return page

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"app-{Path(name).stem}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def demo_console(clean_db, migrated, tmp_path):
    """The demo console (``python -m console.server``) on the tracked notebooks."""
    port = free_port()
    env = settings.child_environ(
        PSYMATCH_MODE="demo",
        DATABASE_URL=migrated,
        VAR_DIR=str(tmp_path / "var"),
        CONSOLE_PORT=str(port),
        CONSOLE_TOKEN="",
        CONSOLE_NOTEBOOK_DIR=str(NOTEBOOKS),
        STAFF_NAME="demo-app",
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
    )
    log = tmp_path / "console.log"
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
        while not _answers(f"{base}/api/status", ""):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the console did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, log
    finally:
        _stop(proc)


def test_the_console_opens_as_an_app_and_leaves_the_notebooks_untouched(demo_console, browser):
    base, log = demo_console
    f.search(days_waiting=12)
    f.therapist(vorname="Berta", nachname="Zweite")
    audit.record("anna", "create_platzsuche", "platzsuche", 1)
    before, status_before = fingerprint(), git_status()
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert len(names) >= 10

    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(TIMEOUT_MS)
    app = App(page, base)

    # The start page is the list of console pages (not JupyterLab).
    page.goto(base + "/")
    page.wait_for_url(re.compile(r"/voila/tree"))
    listing = page.locator("body")
    for name in names:
        app.expect(listing).to_contain_text(Path(name).stem)

    # Every page opens with its widgets; one is clicked in the list (a tab of its own),
    # the others by address.
    started = time.monotonic()
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Overview.ipynb").click()
    tab = App(opened.value, base)
    tab.page.set_default_timeout(TIMEOUT_MS)
    tab.rendered("Overview.ipynb", started)
    tab.screenshot("Overview.ipynb")
    app.timings.update(tab.timings)
    tab.page.close()
    for name in names:
        if name != "Overview.ipynb":
            app.open(name)
            app.screenshot(name)
    slow = {n: round(s, 1) for n, s in app.timings.items() if s > PAGE_BUDGET_S}
    assert not slow, slow
    print("app pages, open to widgets visible:", {n: round(s, 1) for n, s in app.timings.items()})

    # Staff use them: the audit page filters, the settings page refuses a change without a
    # reason and writes nothing.
    clicker = Lab(page, Console(base, "", names))  # its act() and kernel error watch
    app.open("Audit.ipynb")
    panel = page.locator(".psymatch-audit")
    app.expect(panel).to_contain_text("Platzsuche angelegt")  # German, not create_platzsuche
    _fill(panel.get_by_label("Mitarbeiter/in", exact=True), "niemand")
    clicker.act(panel, "Anzeigen", r"✓ 0 Einträge")
    app.open("Settings.ipynb")
    rows = AuditLog.select().count()
    clicker.act(page, "Speichern", r"✗ .* \w+_REQUIRED")
    assert AuditLog.select().count() == rows
    assert clicker.kernel_errors == [], clicker.kernel_errors

    # An admin in JupyterLab: the notebook opens and runs, Ctrl+S is refused.
    lab = Lab(page, Console(base, "", names))
    lab.start("Overview.ipynb")
    lab.run_all("Overview.ipynb")
    lab.rendered("Overview.ipynb")
    lab.panel("Overview.ipynb").locator(".jp-Notebook").click()
    page.keyboard.press("Control+s")
    app.expect(
        page.locator(".jp-Dialog, .jp-toast-content, .Toastify__toast").first
    ).to_contain_text(re.compile("schreibgeschützt|403|Forbidden", re.I))
    page.close()

    assert fingerprint() == before
    assert git_status() == status_before
    # the save reached the server and was refused there
    assert "403 PUT /api/contents/Overview.ipynb" in log.read_text()
