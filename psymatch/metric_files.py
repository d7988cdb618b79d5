"""Helpers shared by the web and worker metrics: multiprocess metric files.

prometheus_client in multiprocess mode keeps each process's values in files named
``<kind>_<pid>.db`` in one directory; a scrape sums them. Files of processes that are
gone keep their counters until they are removed; ``remove_dead_process_files`` does
that when a server starts (gunicorn's master, the worker pool's metrics server).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pid_of(path: Path) -> int | None:
    """The process id in a metric file name (``counter_123.db`` -> 123)."""
    if path.suffix != ".db":
        return None
    _, _, tail = path.stem.rpartition("_")
    return int(tail) if tail.isdigit() else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_dead_process_files(directory: Path) -> int:
    """Delete the metric files of processes that no longer run; return how many."""
    removed = 0
    for path in Path(directory).glob("*.db"):
        pid = pid_of(path)
        if pid is not None and not _running(pid):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed
