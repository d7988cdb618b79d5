"""Small pieces every console panel shares: staff name, status line, freezing, HTML tables."""

from __future__ import annotations

import contextlib
import html
import io

import ipywidgets as widgets

from operations.errors import OperationError
from psymatch import settings


def staff_name() -> str:
    """Who acts in this console (``STAFF_NAME``, written into audit rows); "staff" when unset."""
    return settings.get().STAFF_NAME.strip() or "staff"


def png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (tight layout, 80 dpi); the caller closes it."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def table(headers: list[str], rows: list[list], css: str = "psymatch-table") -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th style='text-align:left;padding:0 8px'>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:0 8px'>{esc(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    if not rows:
        body = f"<tr><td colspan='{len(headers)}'><i>keine Einträge</i></td></tr>"
    return f"<table class='{css}'><tr>{head}</tr>{body}</table>"


class StatusLine(widgets.HTML):
    """One line telling staff what the last action did: success or the outcome code."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_class("psymatch-status")  # a stable handle for the browser test

    def ok(self, text: str) -> None:
        self.value = f"<span style='color:#1a7f37'>✓ {esc(text)}</span>"

    def error(self, error: OperationError | str) -> None:
        if isinstance(error, OperationError):
            field = error.details.get("field")
            code = f"{error.code} ({field})" if field else error.code
            text = f"{code}: {error.message}"
        else:
            text = str(error)
        self.value = f"<span style='color:#b3261e'>✗ {esc(text)}</span>"

    def clear(self) -> None:
        self.value = ""


@contextlib.contextmanager
def frozen(*controls: widgets.Widget):
    """Disable the given controls for the duration of a slow call."""
    before = [c.disabled for c in controls]
    for c in controls:
        c.disabled = True
    try:
        yield
    finally:
        for c, was in zip(controls, before, strict=True):
            c.disabled = was


def run_action(status: StatusLine, controls, action, success) -> object | None:
    """Call an operation with controls frozen; show ``success(result)`` or the error code."""
    with frozen(*controls):
        try:
            result = action()
        except OperationError as error:
            status.error(error)
            return None
        status.ok(success(result))
        return result
