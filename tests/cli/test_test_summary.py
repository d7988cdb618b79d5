"""scripts/lib/test_summary.py: the last word of scripts/test, so CI cannot pass on no tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SUMMARY = Path(__file__).resolve().parents[2] / "scripts" / "lib" / "test_summary.py"


def junit(path: Path, tests: int, failures: int = 0, errors: int = 0, skipped: int = 0) -> Path:
    path.write_text(
        f'<testsuites><testsuite name="pytest" tests="{tests}" failures="{failures}" '
        f'errors="{errors}" skipped="{skipped}"/></testsuites>'
    )
    return path


def summary(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SUMMARY), *map(str, files)], capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("counts", "code"),
    [
        ({"tests": 5}, 0),
        ({"tests": 0}, 1),  # pytest's "no tests ran"
        ({"tests": 3, "skipped": 3}, 1),  # everything skipped is nothing tested
        ({"tests": 5, "failures": 1}, 1),
        ({"tests": 5, "errors": 1}, 1),
    ],
)
def test_the_summary_fails_unless_tests_passed_and_none_failed(tmp_path, counts, code):
    result = summary(junit(tmp_path / "sqlite.xml", **counts))
    assert result.returncode == code, result.stdout
    assert result.stdout.splitlines()[-1].startswith("total: ")


def test_no_report_at_all_fails(tmp_path):
    assert summary(tmp_path / "missing.xml").returncode == 1
