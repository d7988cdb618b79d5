"""Small pieces every console panel shares: staff name, status line, freezing, HTML tables."""

from __future__ import annotations

import contextlib
import html
import io

import ipywidgets as widgets

from operations import staff
from operations.errors import OperationError
from psymatch import settings

DEMO_STAFF = "demo"


def signed_in_user() -> str | None:
    """The staff member JupyterHub signed in (it sets ``JUPYTERHUB_USER`` for the server
    and so for every kernel), or None outside JupyterHub."""
    return settings.environ_value("JUPYTERHUB_USER") or None


def current_staff() -> staff.Staff | None:
    """Who acts in this console, looked up again for every action so that a role change or
    a deactivated account applies at once.

    Under JupyterHub: the signed-in user's active account (None if it was deactivated).
    The laptop demo (no JupyterHub, demo mode) acts as ``STAFF_NAME`` (default "demo")
    with every right. In production outside JupyterHub nobody is signed in: None.
    """
    user = signed_in_user()
    if user:
        return staff.active(user)
    s = settings.get()
    if s.demo_mode:
        name = s.STAFF_NAME.strip() or DEMO_STAFF
        return staff.Staff(name, name, "admin")
    return None


def staff_name() -> str:
    """The actor of this console's audit rows: the signed-in user name (see current_staff)."""
    user = signed_in_user()
    if user:
        return staff.normalise_username(user)
    s = settings.get()
    return (s.STAFF_NAME.strip() or DEMO_STAFF) if s.demo_mode else ""


ROLE_LABELS = {"lesen": "Lesen", "team": "Team", "admin": "Admin"}


def permission_error(needs: str) -> OperationError | None:
    """Why the current staff member may not do something that needs role ``needs``."""
    who = current_staff()
    if who is None:
        return OperationError(
            "NOT_SIGNED_IN",
            "Nicht angemeldet oder Konto deaktiviert: bitte über die Anmeldeseite einloggen",
            status=401,
        )
    if not who.may(needs):
        return OperationError(
            "FORBIDDEN",
            f"Ihre Rolle {ROLE_LABELS[who.role]} darf das nicht "
            f"(nötig: {ROLE_LABELS[needs]}); es wurde nichts geändert",
            status=403,
        )
    return None


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


def run_action(
    status: StatusLine, controls, action, success, *, needs: str = "team"
) -> object | None:
    """Call an operation with controls frozen; show ``success(result)`` or the error code.

    ``needs`` is the role the action requires (``lesen`` for what only reads); without it
    the action is refused before anything runs."""
    refused = permission_error(needs)
    if refused is not None:
        status.error(refused)
        return None
    with frozen(*controls):
        try:
            result = action()
        except OperationError as error:
            status.error(error)
            return None
        status.ok(success(result))
        return result
