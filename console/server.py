"""The ``console`` process (Procfile): JupyterHub in production, JupyterLab in the laptop demo.

* **Production** (the default): ``jupyterhub -f console/hub/jupyterhub_config.py``, where every
  staff member signs in with their own account (``console/hub.py``). The hub process gets
  only the settings a kernel may have (``settings.kernel_environ``): the webhook secrets
  and the signing key are not in its environment, so neither it nor any kernel can read
  them from ``/proc``. It needs ``ENCRYPTION_KEYS`` (checked like every secret), the
  proxy from npm (``console/hub/node_modules``) and at least one active staff account.
* **Demo** (``PSYMATCH_MODE=demo``): one Jupyter server on 127.0.0.1 acting as ``STAFF_NAME``
  (default "demo"), with the shared ``CONSOLE_TOKEN`` if one is set, else none.

Both open as an app: the start page is Voilà's list of console pages (``/voila/tree``), each
page runs its notebook on opening and shows widgets, not code; JupyterLab stays at ``/lab``
for admins. The notebook folder is read-only (``console/lab_settings.py``).

A configuration that cannot start exits with code 2 and one line naming what to fix.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from psymatch import settings

from .lab_settings import APP_URL, SERVER_ARGS, write_lab_defaults

CONFIG = Path(__file__).parent / "hub" / "jupyterhub_config.py"


def lab_command(s: settings.Settings) -> tuple[list[str], dict[str, str]]:
    """The demo's Jupyter server command line (Voilà start page, JupyterLab at /lab) and its
    environment."""
    argv = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={s.CONSOLE_PORT}",
        f"--ServerApp.root_dir={s.CONSOLE_NOTEBOOK_DIR}",
        "--ServerApp.allow_root=True",
        f"--LabApp.default_url={APP_URL}",
        *SERVER_ARGS,
    ]
    lab_settings = write_lab_defaults(Path(s.VAR_DIR) / "console" / "lab-settings")
    env = settings.child_environ(JUPYTERLAB_SETTINGS_DIR=str(lab_settings))
    if s.CONSOLE_TOKEN:
        env["JUPYTER_TOKEN"] = s.CONSOLE_TOKEN  # the environment, so ``ps`` does not show it
    else:
        argv.append("--IdentityProvider.token=")
    return argv, env


def hub_command(s: settings.Settings) -> tuple[list[str], dict[str, str]]:
    """The production JupyterHub command line and its (secret-free) environment."""
    from . import hub

    if not hub.PROXY.exists():
        raise settings.StartRefused(
            f"configurable-http-proxy is not installed ({hub.PROXY}): run "
            "'npm ci --prefix console/hub' (scripts/test and .ci/run do it)"
        )
    argv = [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(CONFIG)]
    keep = ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH", "TZ", "HOME")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(settings.kernel_environ(s))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(settings.PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    return argv, env


def check_accounts() -> None:
    """Refuse a hub nobody can sign in to (a fresh installation's first stumbling block)."""
    import peewee

    from db import database
    from operations import staff

    database.init()
    try:
        try:
            accounts = staff.listing()
        except peewee.DatabaseError:
            raise settings.StartRefused(
                "the database has no staff accounts table: run 'psymatch db upgrade' first"
            ) from None
        if not any(a["aktiv"] for a in accounts):
            raise settings.StartRefused(
                "no active staff account: create one with "
                "'psymatch staff add USER --name NAME --role admin --actor YOU'"
            )
    finally:
        database.release(database.db.obj)


def main() -> int:
    s = settings.get()
    try:
        if s.demo_mode:
            settings.require_secrets(s)
            argv, env = lab_command(s)
        else:
            settings.require_secrets(s, required=settings.CONSOLE_SECRET_NAMES)
            check_accounts()
            argv, env = hub_command(s)
    except settings.SettingsError as exc:
        print(f"psymatch console: error: {exc}", file=sys.stderr)
        return 2
    os.execve(argv[0], argv, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
