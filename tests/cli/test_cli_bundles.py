"""The bundle commands and the bundling benchmark through the real CLI."""

from __future__ import annotations

import json

from db.models import Therapeutenanfrage
from tests import factories as f
from tests.conftest import run_cli as psymatch
from workers import bundle_actors

ACTOR = ("--actor", "Erika Muster")


def test_round_dry_run_then_real_round_and_preview(clean_db, cli_env):
    therapist = f.therapist()
    f.searches(4)
    dry = psymatch(cli_env, "bundle", "round", "--dry-run", "--json", "--force", *ACTOR)
    assert dry.returncode == 0, dry.stderr
    out = json.loads(dry.stdout)
    assert (out["bundles"], out["patients_offered"], out["created"]) == (1, 4, [])
    details = out["bundle_details"][0]
    assert details["therapist_id"] == therapist.id
    assert {"distance_km", "waiting_days", "soft_passed"} <= set(details["patients"][0])
    assert Therapeutenanfrage.select().count() == 0

    preview = psymatch(cli_env, "bundle", "preview", str(therapist.id))
    assert preview.returncode == 0 and "4 Patienten" in preview.stdout

    real = psymatch(cli_env, "bundle", "round", "--force", "-v", *ACTOR)
    assert real.returncode == 0, real.stderr
    assert "created 1 bundles with 4 patients" in real.stdout
    assert Therapeutenanfrage.select().count() == 1

    refused = psymatch(cli_env, "bundle", "preview", str(therapist.id))
    assert refused.returncode == 1
    assert refused.stderr.startswith("psymatch: error: THERAPIST_NOT_CONTACTABLE")


def test_bench_bundling_prints_the_contract_keys(scratch_database_url, cli_env):
    env = {**cli_env, "DATABASE_URL": scratch_database_url}
    assert psymatch(env, "db", "upgrade", *ACTOR).returncode == 0
    result = psymatch(
        env, "bench", "bundling", "--therapists", "300", "--searches", "150", "--json"
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for key in (
        "therapists",
        "searches",
        "bundles",
        "patients_offered",
        "selection_s",
        "round_s",
        "floor_s",
        "peak_rss_mb",
    ):
        assert key in figures
    assert (figures["therapists"], figures["searches"]) == (300, 150)
    assert figures["bundles"] > 0 and figures["patients_offered"] >= 3 * figures["bundles"]
    again = json.loads(
        psymatch(
            env, "bench", "bundling", "--therapists", "300", "--searches", "150", "--json"
        ).stdout
    )
    assert again["reused_data"] is True and again["bundles"] == figures["bundles"]
    other = psymatch(env, "bench", "bundling", "--therapists", "10", "--searches", "5")
    assert other.returncode == 1 and "use an empty database" in other.stderr


def test_actors_call_the_operations(clean_db):
    therapist = f.therapist()
    f.searches(3)
    refused = bundle_actors.compose_for_therapist(999_999)
    assert refused["code"] == "THERAPIST_NOT_FOUND"
    summary = bundle_actors.bundle_round()
    assert summary["bundles"] == 1
    assert Therapeutenanfrage.get().therapist_id == therapist.id
    assert bundle_actors.bundle_round()["bundles"] == 0  # a second delivery does nothing
