"""The console's notebooks are read-only for every server that serves them.

Staff use the console as an app (Voilà, which never saves); admins may still open
JupyterLab at ``/lab``, whose autosave used to write outputs into the tracked notebook
files. ``ReadOnlyContentsManager`` (``ServerApp.contents_manager_class``, set by
``console/server.py`` and ``console/hub.py``) serves the notebook folder for reading and
refuses every write through the contents API: saving, creating, copying, renaming and
deleting files, and checkpoints (which would write ``.ipynb_checkpoints/``). Notebooks are
changed in the repository, not in the running console.
"""

from __future__ import annotations

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado.web import HTTPError

REFUSED = (
    "Die Konsole ist schreibgeschützt: Notebooks werden im Repository geändert, "
    "nicht in der laufenden Konsole (nichts wurde gespeichert)"
)


def _refuse(path: str) -> HTTPError:
    return HTTPError(403, f"{REFUSED}: {path}")


class ReadOnlyContentsManager(AsyncLargeFileManager):
    """Jupyter's file contents manager with every writing method refused (HTTP 403)."""

    async def save(self, model, path=""):
        raise _refuse(path)

    async def delete_file(self, path):
        raise _refuse(path)

    async def rename_file(self, old_path, new_path):
        raise _refuse(old_path)

    async def create_checkpoint(self, path):
        raise _refuse(path)

    async def restore_checkpoint(self, checkpoint_id, path):
        raise _refuse(path)

    async def delete_checkpoint(self, checkpoint_id, path):
        raise _refuse(path)
