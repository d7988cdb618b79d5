"""Fixtures of the console's browser tests (the demo console and the JupyterHub one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import missing

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000  # per wait; generous because the CI machine is small and shared


@pytest.fixture
def browser():
    """Debian chromium driven by Playwright (missing: skipped locally, a failure in CI)."""
    if not CHROMIUM.exists():
        missing(f"Debian chromium ({CHROMIUM} is missing: apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("the Python package playwright (pip install -e '.[dev]')")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()
