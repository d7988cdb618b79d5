"""How the console's Jupyter server starts: as an app (Voilà), read-only, JupyterLab for admins.

Shared by the laptop demo (``console/server.py``) and every staff member's server under
JupyterHub (``console/hub.py``):

* ``APP_URL``: the start page, Voilà's list of console pages (each opens in a tab of its
  own). Voilà (a server extension of the same Jupyter server) runs a notebook when it is
  opened and shows only its widgets and text, never its code; nothing needs "Run All", and
  Voilà never saves a notebook.
* ``SERVER_ARGS``: the notebook folder is served read-only (``console/contents.py``), so
  neither Voilà nor JupyterLab can write into the tracked notebook files.
* ``DEFAULT_LAB_SETTINGS``: JupyterLab stays reachable at ``/lab`` for admins; it starts the
  kernel without asking and does not autosave (every save would be refused anyway).
"""

from __future__ import annotations

import json
from pathlib import Path

APP_URL = "/voila/tree"
LAB_URL = "/lab"
SERVER_ARGS = (
    "--ServerApp.contents_manager_class=console.contents.ReadOnlyContentsManager",
    "--ServerApp.terminals_enabled=False",
    # the start page as a plain list of links (the default is a file browser with sizes)
    "--VoilaConfiguration.classic_tree=True",
)

# Start a notebook's kernel without the "Select Kernel" dialog: every console notebook runs
# on the one Python kernel. No autosave: the notebooks are read-only.
DEFAULT_LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
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
