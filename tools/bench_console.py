"""``psymatch bench console``: the staff console's paths at a given size (issue 15.8).

On demo data of the given size (reused when present, like ``bench bundling``) it times
the staff preview for many therapists, the listing of selectable therapists for every
PLZ prefix that has therapists, the person search for queries drawn from the data, and
each console notebook's first render: the notebook executed headless (nbclient) in a
fresh kernel, timed from its first cell to its last (the kernel's start is reported
apart). Nothing is written except the demo data.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from pathlib import Path

from db import database
from db.models import Patient, Therapist

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

# the acceptance targets of issue 15.8 (PostgreSQL, 45,000 therapists, 20,000 searches)
TARGETS = {
    "preview_p95_ms": 50,
    "listing_p95_ms": 100,
    "person_search_p95_ms": 100,
    "render_max_s": 2.0,
}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _timed_ms(call) -> float:
    from operations.errors import OperationError

    started = time.perf_counter()
    # a refusal (not contactable, nobody eligible) is an answer, timed alike
    with contextlib.suppress(OperationError):
        call()
    return (time.perf_counter() - started) * 1000


def time_previews(count: int, rng: random.Random) -> list[float]:
    from operations.bundles import preview_anfrage

    ids = [i for (i,) in Therapist.select(Therapist.id).where(Therapist.status == "aktiv").tuples()]
    sample = rng.sample(ids, min(count, len(ids)))
    if sample:
        _timed_ms(lambda: preview_anfrage(sample[0]))  # warm caches and the compiled kernel
    return [_timed_ms(lambda t=t: preview_anfrage(t)) for t in sample]


def time_listings(digits: int) -> list[float]:
    from operations.bundles import list_selectable_therapists

    prefixes = sorted({plz[:digits] for (plz,) in Therapist.select(Therapist.plz).tuples() if plz})
    return [_timed_ms(lambda p=p: list_selectable_therapists(p)) for p in prefixes]


def search_texts(count: int, rng: random.Random) -> list[str]:
    """Queries as staff type them: patient and therapist names, emails, phones, PLZ."""
    patients = list(
        Patient.select(Patient.nachname, Patient.email, Patient.telefon, Patient.plz)
        .order_by(Patient.id)
        .limit(2000)
    )
    therapists = list(
        Therapist.select(Therapist.nachname, Therapist.email, Therapist.plz)
        .order_by(Therapist.id)
        .limit(2000)
    )
    texts = []
    for _ in range(count):
        kind = rng.randrange(6)
        if kind <= 1 and patients:
            texts.append(rng.choice(patients).nachname)
        elif kind == 2 and patients:
            p = rng.choice(patients)
            texts.append(p.email or p.telefon or p.nachname)
        elif kind == 3 and therapists:
            texts.append(rng.choice(therapists).nachname)
        elif kind == 4 and therapists:
            t = rng.choice(therapists)
            texts.append(t.email or t.nachname)
        else:
            texts.append((rng.choice(patients or therapists).plz or "10115")[:5])
    return [t for t in texts if t and t.strip()]


def time_person_search(count: int, rng: random.Random) -> list[float]:
    from operations.people import find_people

    texts = search_texts(count, rng)
    if texts:
        _timed_ms(lambda: find_people(texts[0]))
    return [_timed_ms(lambda t=t: find_people(t)) for t in texts]


def render_notebook(path: Path, env: dict) -> tuple[float, float]:
    """(kernel start s, first render s) of one notebook, executed headless in a new kernel."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    saved = dict(os.environ)
    os.environ.update(env)  # the kernel inherits the environment: database, demo mode
    try:
        started = time.perf_counter()
        with client.setup_kernel():
            kernel_s = time.perf_counter() - started
            started = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            render_s = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    if errors:
        raise RuntimeError(f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    return kernel_s, render_s


def run(
    therapists: int,
    searches: int,
    *,
    seed: int = 1,
    previews: int = 200,
    person_searches: int = 200,
    notebooks: list[str] | None = None,
    database_url: str | None = None,
    report=None,
) -> dict:
    from psymatch import settings
    from tools.bench import _ensure_demo, warm_up_jit

    say = report or (lambda _line: None)
    database.init(database_url)
    reused = _ensure_demo(therapists, searches, seed, report)
    warm_up_jit()
    rng = random.Random(seed)
    say("timing previews")
    preview = time_previews(previews, rng)
    say("timing listings")
    listing = time_listings(settings.get().PLZ_MATCH_DIGITS)
    say("timing person search")
    person = time_person_search(person_searches, rng)
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if notebooks is not None:
        paths = [p for p in paths if p.stem in notebooks or p.name in notebooks]
    env = {
        "DATABASE_URL": database_url or settings.get().DATABASE_URL,
        "PSYMATCH_MODE": settings.get().PSYMATCH_MODE,
    }
    renders, kernels = {}, {}
    for path in paths:
        say(f"rendering {path.name}")
        kernels[path.stem], renders[path.stem] = render_notebook(path, env)
    figures = {
        "backend": database.dialect(),
        "therapists": therapists,
        "searches": searches,
        "reused_data": reused,
        "previews": len(preview),
        "preview_p50_ms": round(percentile(preview, 0.5), 1),
        "preview_p95_ms": round(percentile(preview, 0.95), 1),
        "listings": len(listing),
        "listing_p50_ms": round(percentile(listing, 0.5), 1),
        "listing_p95_ms": round(percentile(listing, 0.95), 1),
        "person_searches": len(person),
        "person_search_p50_ms": round(percentile(person, 0.5), 1),
        "person_search_p95_ms": round(percentile(person, 0.95), 1),
        "render_max_s": round(max(renders.values(), default=0.0), 2),
        "render_s": {name: round(s, 2) for name, s in renders.items()},
        "kernel_start_max_s": round(max(kernels.values(), default=0.0), 2),
        "targets": TARGETS,
    }
    figures["meets_targets"] = all(figures[key] <= limit for key, limit in TARGETS.items())
    return figures
