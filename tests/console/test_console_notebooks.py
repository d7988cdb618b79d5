"""Every staff notebook runs headless against the test database (either backend).

The kernel is a subprocess: it finds the database through ``DATABASE_URL``, which
``console.connect()`` reads via settings.
"""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest
from nbformat.v4 import new_code_cell

from operations.bundles import create_anfrage
from operations.responses import record_response
from tests import factories as f

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
CHECK = (
    "from db import database\n"
    "from db.models import Platzsuche\n"
    "print('BACKEND', database.dialect(), 'SEARCHES', Platzsuche.select().count())"
)


@pytest.fixture
def seeded(clean_db):
    """A conflict, an unsent bundle and a waiting search, so every panel has rows."""
    first_t, second_t = f.therapist(), f.therapist(plz="10117")
    f.searches(3)
    bundles = []
    for therapist in (first_t, second_t):
        anfrage_id = create_anfrage(therapist.id, now=f.NOW).anfrage_id
        f.mark_sent(anfrage_id, f.NOW)
        bundles.append(anfrage_id)
    record_response(bundles[0], {p: "angenommen" for p in _patients(bundles[0])})
    record_response(bundles[1], {p: "angenommen" for p in _patients(bundles[1])})
    f.searches(3)
    create_anfrage(f.therapist(plz="10119").id, now=f.NOW)
    f.search(days_waiting=40)
    return 7


def _patients(anfrage_id):
    from db.models import TherapeutAnfragePatient

    return [
        r.patient_id
        for r in TherapeutAnfragePatient.select().where(
            TherapeutAnfragePatient.therapeutenanfrage == anfrage_id
        )
    ]


def test_there_are_the_console_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {
        "Overview.ipynb",
        "Today.ipynb",
        "Searches.ipynb",
        "Responses.ipynb",
        "Conflicts.ipynb",
        "Dashboard.ipynb",
        "Settings.ipynb",
        "Audit.ipynb",
        "Personen.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(path, seeded, migrated, backend, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", migrated)
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells and "connect()" in code_cells[0].source
    nb.cells.append(new_code_cell(CHECK))
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    widget_views = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widget_views, "the notebook shows no widget"
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert f"BACKEND {backend} SEARCHES {seeded}" in printed


@pytest.mark.parametrize("name", ["Today.ipynb", "Searches.ipynb"])
def test_notebooks_with_postal_codes_credit_geonames(name):
    nb = nbformat.read(NOTEBOOKS[0].parent / name, as_version=4)
    markdown = "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "GeoNames (CC BY 4.0)" in markdown  # the licence credit, in German or English
