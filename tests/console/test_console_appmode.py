"""The console's server setup: app start page, read-only notebooks (no browser needed)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from tornado.web import HTTPError
from traitlets.config import Config

from console import hub
from console import server as console_server
from console.contents import REFUSED, ReadOnlyContentsManager
from console.lab_settings import APP_URL, DEFAULT_LAB_SETTINGS, SERVER_ARGS
from psymatch import settings

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "id": "c1",
            "source": "1 + 1",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "Today.ipynb").write_text(json.dumps(NOTEBOOK))
    return tmp_path


def state(folder) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(call) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        asyncio.run(call)
    assert caught.value.status_code == 403
    assert REFUSED in caught.value.log_message
    return caught.value


def test_the_notebook_folder_is_read_but_never_written(folder):
    manager = ReadOnlyContentsManager(root_dir=str(folder))
    before = state(folder)
    model = asyncio.run(manager.get("Today.ipynb"))
    assert model["type"] == "notebook" and model["content"]["cells"][0]["source"] == "1 + 1"

    changed = dict(model)
    changed["content"]["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "2"}
    ]
    refused(manager.save(changed, "Today.ipynb"))
    refused(manager.new_untitled(type="notebook"))
    refused(manager.new(path="Neu.ipynb"))
    refused(manager.copy("Today.ipynb"))
    refused(manager.rename("Today.ipynb", "Morgen.ipynb"))
    refused(manager.delete("Today.ipynb"))
    refused(manager.create_checkpoint("Today.ipynb"))
    assert state(folder) == before
    assert not (folder / ".ipynb_checkpoints").exists()


def test_demo_console_opens_on_the_app_with_read_only_notebooks(tmp_path):
    before = settings.get().VAR_DIR
    try:
        argv, env = console_server.lab_command(settings.override(VAR_DIR=str(tmp_path)))
    finally:
        settings.override(VAR_DIR=before)
    assert f"--LabApp.default_url={APP_URL}" in argv
    assert APP_URL == "/voila/tree"
    for arg in SERVER_ARGS:
        assert arg in argv
    assert "--ServerApp.contents_manager_class=console.contents.ReadOnlyContentsManager" in argv
    # JupyterLab (for admins) does not autosave; it would be refused anyway.
    plugin = (
        Path(env["JUPYTERLAB_SETTINGS_DIR"])
        / "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"
    )
    assert json.loads(plugin.read_text()) == {"autosave": False}
    assert DEFAULT_LAB_SETTINGS["@jupyterlab/docmanager-extension/plugin"] == {"autosave": False}


def test_each_staff_members_server_opens_on_the_app(migrated):
    c = Config()
    hub.configure(c)
    assert c.Spawner.default_url == APP_URL
    assert list(SERVER_ARGS) == [a for a in c.Spawner.args if a in SERVER_ARGS]
    assert "--ServerApp.terminals_enabled=False" in c.Spawner.args
