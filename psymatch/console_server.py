"""The ``console`` process: JupyterLab on ``notebooks/``, refused without a token outside demo.

Outside demo mode ``settings.require_secrets()`` refuses to start unless every
secret, ``CONSOLE_TOKEN`` among them, is set; the token reaches Jupyter through
the environment (``JUPYTER_TOKEN``), not the command line, so ``ps`` does not show
it. Outside demo mode ``STAFF_NAME`` (the actor of the console's audit rows) is
required too. In demo mode an empty ``CONSOLE_TOKEN`` keeps the laptop demo's
token-free console on 127.0.0.1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from psymatch import settings


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
    env = settings.child_environ()
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
