"""The console in production: JupyterHub, so that every staff member signs in personally.

``console/server.py`` starts ``jupyterhub -f console/hub/jupyterhub_config.py``, whose only line
calls ``configure`` below. What it sets up:

* **Sign-in** (``StaffAuthenticator``): user name and password of a staff account
  (``psymatch staff add``; Argon2id hashes in the ``mitarbeiter`` table,
  ``operations/staff.py``). Deactivated accounts cannot sign in, and a session already
  open is ended at the next check (``auth_refresh_age``).
* **Each staff member's own Jupyter server** (``StaffSpawner``), started on demand with the
  console notebooks as its (read-only) folder, opening on Voilà's list of console pages
  (JupyterLab stays at ``/lab``; ``console/lab_settings.py``). JupyterHub sets
  ``JUPYTERHUB_USER`` in it: the console's panels write that name into every audit row and
  look the account's role up before every action (``console/common.py``).
* **What a kernel gets**: the settings minus ``KERNEL_WITHHELD`` (webhook secrets, the
  signing key, the mail relay URL), which are set empty so a ``.env`` file cannot supply
  them either (``settings.kernel_environ``). Terminals are off.
* **The proxy**: ``configurable-http-proxy`` from npm (``console/hub/``, installed by
  ``scripts/lib/venv.sh``), listening on ``CONSOLE_HOST:CONSOLE_PORT``; the hub itself
  and the proxy's API listen on loopback only. Nobody is a JupyterHub admin: an admin
  could open other people's servers and act under their names.

All single-user servers run as the Unix user of the ``console`` process (JupyterHub's
``SimpleLocalProcessSpawner``): staff are told apart for the audit and the roles, not
isolated from each other by the operating system (SECURITY.md says what that means).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from jupyterhub.auth import Authenticator
from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import default

from db import database
from operations import staff
from psymatch import settings

from .lab_settings import APP_URL, SERVER_ARGS, write_lab_defaults

PROXY = (
    settings.PROJECT_ROOT
    / "console"
    / "hub"
    / "node_modules"
    / ".bin"
    / ("configurable-http-proxy")
)


def _in_thread(function, *args):
    """Database and Argon2 work off the hub's event loop, on a connection of its own."""

    def run():
        try:
            return function(*args)
        finally:
            database.release(database.db.obj)

    return asyncio.to_thread(run)


class StaffAuthenticator(Authenticator):
    """Staff accounts of psymatch (operations/staff.py) as JupyterHub's users."""

    @default("auth_refresh_age")
    def _auth_refresh_age(self):
        return 60  # seconds until a deactivated account's open session is ended

    def normalize_username(self, username: str) -> str:
        return staff.normalise_username(username)

    async def authenticate(self, handler, data):
        username = (data or {}).get("username", "")
        who = await _in_thread(staff.authenticate, username, (data or {}).get("password", ""))
        if who is None:
            self.log.warning("psymatch: sign-in refused for user name %r", username[:50])
            return None
        return {"name": who.username}

    async def check_allowed(self, username, authentication=None):
        return await _in_thread(staff.active, username) is not None

    async def refresh_user(self, user, handler=None, **kwargs):
        return await _in_thread(staff.active, user.name) is not None


class StaffSpawner(SimpleLocalProcessSpawner):
    """A JupyterLab per staff member on the console notebooks; home folders under VAR_DIR."""

    def get_env(self):
        env = super().get_env()
        env.update(settings.kernel_environ())
        # JupyterLab's settings per person, starting from the console's defaults
        lab_settings = Path(self.home_dir) / "lab-settings"
        write_lab_defaults(lab_settings)
        env["JUPYTERLAB_SETTINGS_DIR"] = str(lab_settings)
        return env


def configure(c, s: settings.Settings | None = None) -> None:
    """Fill JupyterHub's config object ``c`` from psymatch's settings."""
    s = s or settings.get()
    database.init(s.DATABASE_URL)  # the staff accounts the authenticator checks
    state = Path(s.VAR_DIR) / "console"
    (state / "home").mkdir(parents=True, exist_ok=True)

    c.JupyterHub.bind_url = f"http://{s.CONSOLE_HOST}:{s.CONSOLE_PORT}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s.CONSOLE_HUB_PORT}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.CONSOLE_PROXY_API_PORT}"
    c.ConfigurableHTTPProxy.command = [str(PROXY)]
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")  # not in the cwd
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True
    c.JupyterHub.shutdown_on_logout = False
    c.JupyterHub.tornado_settings = {
        "headers": {
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Content-Security-Policy": "frame-ancestors 'self'",
        }
    }

    c.JupyterHub.authenticator_class = StaffAuthenticator
    c.Authenticator.admin_users = set()
    c.Authenticator.allow_all = False
    c.Authenticator.any_allow_config = True  # check_allowed asks the staff table

    c.JupyterHub.spawner_class = StaffSpawner
    c.StaffSpawner.home_dir_template = str(state / "home" / "{username}")
    c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
    c.Spawner.default_url = APP_URL
    c.Spawner.notebook_dir = s.CONSOLE_NOTEBOOK_DIR
    # Only what a JupyterLab needs to run; psymatch's settings come from get_env.
    c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH", "TZ"]
    c.Spawner.args = list(SERVER_ARGS)
    if os.geteuid() == 0:  # containers and CI machines run everything as root
        c.Spawner.args.append("--ServerApp.allow_root=True")
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
