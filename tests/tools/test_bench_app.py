"""The console's pages timed as staff open them (Voilà over HTTP, tools/bench_app.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests import factories as f
from tools.bench_app import time_app_pages
from tools.bench_console import NOTEBOOK_DIR

pytestmark = pytest.mark.slow


def test_pages_are_timed_and_a_failing_page_is_named(clean_db, migrated, tmp_path):
    f.search(days_waiting=3)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("Overview.ipynb", "Audit.ipynb"):
        shutil.copy(NOTEBOOK_DIR / name, folder / name)
    pages = time_app_pages(sorted(folder.glob("*.ipynb")), migrated)
    assert set(pages) == {"Audit", "Overview"}
    assert all(0 < seconds < 120 for seconds in pages.values()), pages

    broken = json.loads((folder / "Overview.ipynb").read_text())
    broken["cells"][-1]["source"] = ["raise ValueError('kaputt')"]
    (folder / "Kaputt.ipynb").write_text(json.dumps(broken))
    with pytest.raises(RuntimeError, match="Kaputt.ipynb: a cell failed"):
        time_app_pages([folder / "Kaputt.ipynb"], migrated)
