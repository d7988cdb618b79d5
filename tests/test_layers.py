"""The house rule: every folder is one floor and imports only the floors below it.

The README's "Layout" section names the floors; this test reads every module's
imports with ``ast`` (function-level imports included) and fails on an import
that runs up a floor. Because the floors are a strict order, two folders can
never import each other in a loop; the second test checks that explicitly too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Bottom first. A module may import its own folder and any folder listed before it.
FLOORS = ["psymatch", "db", "operations", "workers", "webhooks", "console", "tools", "cli"]
LEVEL = {name: level for level, name in enumerate(FLOORS)}


def _modules():
    for folder in FLOORS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield folder, path


def _imported_folders(path: Path) -> set[tuple[str, int]]:
    """(top-level project folder, line) for every absolute import of a project folder."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in LEVEL:
                found.add((top, node.lineno))
    return found


def test_the_floors_exist():
    for folder in FLOORS:
        assert (ROOT / folder / "__init__.py").is_file(), f"{folder}/ is not a package"


def test_no_import_runs_up_a_floor():
    upward = []
    for folder, path in _modules():
        for target, line in _imported_folders(path):
            if LEVEL[target] > LEVEL[folder]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target} (above {folder})")
    assert not upward, "imports that run up a floor:\n" + "\n".join(sorted(upward))


def test_no_two_folders_import_each_other():
    edges = defaultdict(set)
    for folder, path in _modules():
        edges[folder] |= {target for target, _ in _imported_folders(path) if target != folder}
    loops = sorted(f"{a} <-> {b}" for a in edges for b in edges[a] if a in edges.get(b, ()))
    assert not loops, f"folders importing each other: {loops}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The walk finds imports inside functions as well as at the top of a module."""
    module = tmp_path / "probe.py"
    module.write_text(
        "import os\n\ndef later():\n    from cli import main\n    import workers.broker\n"
    )
    assert _imported_folders(module) == {("cli", 4), ("workers", 5)}
