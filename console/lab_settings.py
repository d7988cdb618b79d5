"""JupyterLab user settings the console starts with."""

from __future__ import annotations

import json
from pathlib import Path

# Start a notebook's kernel without the "Select Kernel" dialog: every console notebook runs
# on the one Python kernel.
DEFAULT_LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
}


def write_lab_defaults(folder: Path) -> Path:
    """Write our defaults into a JupyterLab settings folder once, so that changes staff make
    in the settings editor stay."""
    for plugin, values in DEFAULT_LAB_SETTINGS.items():
        target = folder / f"{plugin}.jupyterlab-settings"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values, indent=2), encoding="utf-8")
    return folder
