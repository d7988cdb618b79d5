"""The ``console`` process: JupyterLab on ``notebooks/``, refused without a token outside demo.

Outside demo mode ``settings.require_secrets()`` refuses to start unless every
secret, ``CONSOLE_TOKEN`` among them, is set; the token reaches Jupyter through
the environment (``JUPYTER_TOKEN``), not the command line, so ``ps`` does not show
it. Outside demo mode ``STAFF_NAME`` (the actor of the console's audit rows) is
required too. In demo mode an empty ``CONSOLE_TOKEN`` keeps the laptop demo's
token-free console on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from psymatch import settings

# Start a notebook's kernel without the "Select Kernel" dialog: every console
# notebook runs on the one Python kernel.
DEFAULT_LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
}


def lab_settings_dir(s: settings.Settings) -> Path:
    """JupyterLab's user settings under ``VAR_DIR``; our defaults are written once, so
    changes staff make in the settings editor stay."""
    folder = Path(s.VAR_DIR) / "console" / "lab-settings"
    for plugin, values in DEFAULT_LAB_SETTINGS.items():
        target = folder / f"{plugin}.jupyterlab-settings"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values, indent=2), encoding="utf-8")
    return folder


def command(s: settings.Settings) -> tuple[list[str], dict[str, str]]:
    """The JupyterLab command line and its environment."""
    argv = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={s.CONSOLE_PORT}",
        f"--ServerApp.root_dir={settings.PROJECT_ROOT / 'notebooks'}",
        "--ServerApp.allow_root=True",
    ]
    env = settings.child_environ(JUPYTERLAB_SETTINGS_DIR=str(lab_settings_dir(s)))
    if s.CONSOLE_TOKEN:
        env["JUPYTER_TOKEN"] = s.CONSOLE_TOKEN
    else:  # demo mode only (require_secrets refused otherwise)
        argv.append("--IdentityProvider.token=")
    return argv, env


def main() -> int:
    s = settings.get()
    try:
        settings.require_secrets(s)
        if not s.demo_mode and not s.STAFF_NAME.strip():
            raise settings.SettingsError(
                "STAFF_NAME is not set (the staff member whose name this console's actions "
                "write into the audit log)"
            )
    except settings.SettingsError as exc:
        print(f"psymatch console: error: {exc}", file=sys.stderr)
        return 1
    argv, env = command(s)
    os.execve(argv[0], argv, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
