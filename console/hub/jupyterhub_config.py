"""JupyterHub's configuration file for the production console (console/server.py starts
``jupyterhub -f`` with it); everything is set in console/hub.py from psymatch's settings."""

from console.hub import configure

configure(c)  # noqa: F821  (``c``: the config object JupyterHub puts into this file's scope)
