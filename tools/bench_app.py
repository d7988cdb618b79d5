"""The console's pages as staff open them: Voilà over HTTP, kernel start included.

``bench_console`` times a notebook's execution headless (nbclient), which is what Voilà
runs for a page. ``time_app_pages`` measures the whole page instead: it starts the demo
console's own server command (``console.server.lab_command``: Voilà, read-only notebooks)
on a free port and times ``GET /voila/render/<Notebook>.ipynb`` from the request until the
complete page (every cell executed, widgets serialised) has arrived, so the kernel's start
is included. A page whose cell failed raises ``RuntimeError`` naming it. It writes nothing
but JupyterLab's default settings under ``VAR_DIR`` (as the demo console does).

Wiring into ``psymatch bench console`` (one line in ``bench_console.run``):
``figures["app_page_s"] = time_app_pages(paths, database_url)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from psymatch import settings
from psymatch.ports import free_port

START_TIMEOUT_S = 90
FAILED_CELL = "There was an error when executing cell"


def _get(url: str, token: str, timeout: float) -> tuple[int, str]:
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def time_app_pages(
    paths: list[Path], database_url: str | None = None, *, timeout: float = 120
) -> dict[str, float]:
    """Seconds from request to complete page for each notebook (all in one folder)."""
    from console import server as console_server

    if not paths:
        return {}
    folders = {p.parent for p in paths}
    if len(folders) != 1:
        raise ValueError("the notebooks must be in one folder")
    port = free_port()
    current = dataclasses.replace(
        settings.get(), CONSOLE_PORT=port, CONSOLE_NOTEBOOK_DIR=str(folders.pop())
    )
    argv, env = console_server.lab_command(current)
    env["DATABASE_URL"] = database_url or current.DATABASE_URL
    token = env.get("JUPYTER_TOKEN", "")
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while _get(f"{base}/api/status", token, 2)[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the console server did not start")
            time.sleep(0.2)
        pages = {}
        for path in paths:
            started = time.perf_counter()
            status, body = _get(f"{base}/voila/render/{path.name}", token, timeout)
            seconds = time.perf_counter() - started
            if status != 200:
                raise RuntimeError(f"{path.name}: HTTP {status}")
            if FAILED_CELL in body or "ExecutionError" in body:
                raise RuntimeError(f"{path.name}: a cell failed")
            pages[path.stem] = round(seconds, 2)
        return pages
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
