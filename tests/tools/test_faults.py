"""The fault suite (``psymatch faults --json``) against real PostgreSQL, Redis and SMTP.

Each fault is injected for real (SIGKILL, FLUSHDB, a restarted redis-server,
pg_terminate_backend, a stopped SMTP server, an unreachable database behind the web
app); after recovery every bundle was emailed exactly once and every reply recorded
exactly once, with no half-written rows. PostgreSQL only: the suite runs on a scratch
database ``<name>_faults`` next to the test database.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import run_cli
from tools.faults.faults import FAULTS, table


def run_faults(env: dict, *args: str, timeout: float = 600):
    return run_cli(env, "faults", *args, timeout=timeout)


@pytest.mark.slow
def test_every_fault_recovers_without_loss_or_duplicates(backend, cli_env, redis_url, capsys):
    if backend != "postgres":
        pytest.skip("the fault suite needs PostgreSQL (set TEST_DATABASE_URL)")
    result = run_faults({**cli_env, "REDIS_URL": redis_url}, "--json")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    with capsys.disabled():
        print("\n" + table(report))
    rows = {row["fault"]: row for row in report["faults"]}
    assert list(rows) == list(FAULTS)
    for name, row in rows.items():
        assert row["lost"] == 0, (name, row)
        assert row["duplicated"] == 0, (name, row)
        assert row["half_written"] == 0, (name, row)
        assert row["emails_sent"] == row["emails_expected"] > 0, (name, row)
        assert row["replies_recorded"] == row["replies_expected"] > 0, (name, row)
        assert row["injected"], (name, row)  # each fault says where it struck
    assert report["passed"] is True
    assert result.returncode == 0


def test_refuses_sqlite_and_unknown_faults(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "PSYMATCH_DEBUG": ""}
    result = run_faults(env, "--json", timeout=60)
    assert result.returncode == 1
    assert "psymatch: error: the fault suite needs PostgreSQL" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "x.db").exists()  # nothing created
    env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/anything"
    result = run_faults(env, "--only", "cosmic_rays", timeout=60)
    assert result.returncode == 1
    assert "unknown fault 'cosmic_rays'" in result.stderr


def test_refuses_a_scratch_name_it_did_not_create(backend, database_url, redis_url):
    if backend != "postgres":
        pytest.skip("the fault suite needs PostgreSQL (set TEST_DATABASE_URL)")
    import psycopg2

    base = database_url.rsplit("/", 1)[0]
    foreign = f"{database_url.rsplit('/', 1)[1].split('?')[0]}_foreign"
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{foreign}_faults"')
        cur.execute(f'CREATE DATABASE "{foreign}_faults"')
    try:
        marker = psycopg2.connect(f"{base}/{foreign}_faults")
        marker.autocommit = True
        with marker.cursor() as cur:
            cur.execute("CREATE TABLE precious (id int)")
        marker.close()
        env = {**os.environ, "DATABASE_URL": f"{base}/{foreign}", "REDIS_URL": redis_url}
        result = run_faults(env, "--json", timeout=120)
        assert result.returncode == 1
        assert "was not created by the fault suite" in result.stderr
        check = psycopg2.connect(f"{base}/{foreign}_faults")
        with check.cursor() as cur:
            cur.execute("SELECT to_regclass('public.precious') IS NOT NULL")
            assert cur.fetchone()[0]  # untouched
        check.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{foreign}_faults"')
        admin.close()


class _Sink:
    def __init__(self, messages):
        self.messages = messages

    def received(self):
        return list(self.messages)


def _message(subject: str):
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = subject
    return message


def test_checks_see_lost_duplicated_and_half_written_work(clean_db):
    """The counting itself: a state with every kind of damage is reported as such."""
    from operations.bundles import run_bundle_round
    from tests import factories as f
    from tools.faults import checks

    for n in range(2):
        f.therapist(email=f"praxis-check{n}@example.org")
    f.searches(6)
    first, second = run_bundle_round(f.NOW).created
    sink = _Sink(
        [_message(f"Suche Psychotherapieplätze - Ref: A{first}")] * 2  # twice, the other never
        + [_message("Bestätigung Ihrer Zusage - Ref: A1")]  # a kind this flow never causes
    )
    row = checks.row("example", sink, 3, ["mid:never-stored@example.org"])
    assert row["emails_expected"] == 3 and row["emails_sent"] == 3
    # lost: A{second} got no email, the third practice no Anfrage, the reply no row
    assert row["lost"] == 3
    # duplicated: the second inquiry of A{first} and the unexpected confirmation
    assert row["duplicated"] == 2
    assert row["replies_expected"] == 1 and row["replies_recorded"] == 0
    assert row["half_written_by_kind"] == {"anfragen_unsent": 2, "outbox_not_done": 2}
    assert not checks.passed(row)
