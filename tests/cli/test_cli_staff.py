"""``psymatch staff ...``: accounts for the console's sign-in, managed from the command line."""

from __future__ import annotations

import json

from db.models import AuditLog, Mitarbeiter
from operations import staff


def run_cli(args: list[str], env: dict, input: str | None = None):
    """``python -m cli.main ARGS``, with ``input`` on standard input."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


PASSWORD = "ein-langes-passwort"


def test_add_list_role_and_deactivate(clean_db, cli_env):
    added = run_cli(
        [
            "staff",
            "add",
            "erika",
            "--name",
            "Erika Muster",
            "--role",
            "team",
            "--password-stdin",
            "--actor",
            "admin1",
        ],
        cli_env,
        input=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert "created erika (team)" in added.stdout
    assert staff.authenticate("erika", PASSWORD) is not None
    listed = run_cli(["staff", "list", "--json"], cli_env)
    assert [a["benutzername"] for a in json.loads(listed.stdout)] == ["erika"]
    assert PASSWORD not in listed.stdout
    role = run_cli(["staff", "set-role", "erika", "admin", "--actor", "admin1"], cli_env)
    assert role.returncode == 0 and Mitarbeiter.get().rolle == "admin"
    off = run_cli(
        ["staff", "deactivate", "erika", "--reason", "left", "--actor", "admin1"], cli_env
    )
    assert off.returncode == 0 and not Mitarbeiter.get().aktiv
    assert {a.actor for a in AuditLog.select()} == {"admin1"}


def test_refusals_write_nothing(clean_db, cli_env):
    weak = run_cli(
        [
            "staff",
            "add",
            "erika",
            "--name",
            "E",
            "--role",
            "team",
            "--password-stdin",
            "--actor",
            "admin1",
        ],
        cli_env,
        input="kurz\n",
    )
    assert weak.returncode == 1 and "WEAK_PASSWORD" in weak.stderr
    no_actor = run_cli(
        ["staff", "add", "erika", "--name", "E", "--role", "team", "--password-stdin"],
        cli_env,
        input=PASSWORD + "\n",
    )
    assert no_actor.returncode == 2 and "--actor" in no_actor.stderr
    bad_role = run_cli(["staff", "set-role", "erika", "chef", "--actor", "a"], cli_env)
    assert bad_role.returncode == 2
    assert Mitarbeiter.select().count() == 0 and AuditLog.select().count() == 0
