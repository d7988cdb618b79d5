"""The staff console: widget classes that notebooks in ``notebooks/`` wire together."""

from __future__ import annotations


def connect(url: str | None = None):
    """Bind the models to the configured database (call once per notebook)."""
    from db import database

    return database.init(url)
