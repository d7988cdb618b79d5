"""``psymatch bench console`` at a tiny size: every figure of the CLI contract is there."""

from __future__ import annotations

import json

import pytest

from db.models import Platzsuche, Therapist
from tests.conftest import run_cli
from tools import bench_console

CONTRACT = (
    "preview_p50_ms",
    "preview_p95_ms",
    "listing_p95_ms",
    "person_search_p95_ms",
    "render_max_s",
)


def test_bench_console_small(clean_db, migrated):
    lines = []
    figures = bench_console.run(
        40,
        25,
        seed=3,
        previews=10,
        person_searches=20,
        notebooks=["Overview"],
        database_url=migrated,
        report=lines.append,
    )
    for key in CONTRACT:
        assert isinstance(figures[key], int | float) and figures[key] >= 0, key
    assert figures["previews"] == 10 and figures["listings"] >= 1
    assert figures["person_searches"] >= 15
    assert set(figures["render_s"]) == {"Overview"} and figures["render_max_s"] > 0
    assert isinstance(figures["meets_targets"], bool)
    assert (Therapist.select().count(), Platzsuche.select().count()) == (40, 25)
    again = bench_console.run(
        40, 25, previews=2, person_searches=2, notebooks=[], database_url=migrated
    )
    assert again["reused_data"] is True and again["render_max_s"] == 0.0


@pytest.mark.slow  # renders every notebook in a kernel of its own
def test_bench_console_command_prints_the_contract_keys(clean_db, cli_env):
    done = run_cli(
        cli_env,
        "bench",
        "console",
        "--therapists",
        "30",
        "--searches",
        "20",
        "--previews",
        "5",
        "--person-searches",
        "5",
        "--json",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert set(CONTRACT) <= set(figures)
    assert {"Overview", "Searches", "Cooling"} <= set(figures["render_s"])  # every notebook
