"""Small pieces every console panel shares: staff name, status line, freezing, HTML tables."""

from __future__ import annotations

import contextlib
import html
import io
import threading

import ipywidgets as widgets

from operations import staff
from operations.errors import OperationError
from psymatch import settings

from .messages import german

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
        self.busy = threading.Lock()  # held while an action of this panel runs
        self.answered = False  # the running action has shown its outcome
        self.line = threading.Lock()  # a refusal and that outcome write one after the other

    def ok(self, text: str) -> None:
        self.value = f"<span style='color:#1a7f37'>✓ {esc(text)}</span>"

    def error(self, error: OperationError | str) -> None:
        """The German text of the outcome, its code small beside it (for support)."""
        if isinstance(error, OperationError):
            field = error.details.get("field")
            code = f"{error.code} ({field})" if field else error.code
            ids = error.details.get("ids")
            text = german(error.code, error.message)
            if text != error.message:
                text += f" (Nr. {', '.join(str(i) for i in ids)})" if ids else ""
                text += f" – Feld „{field}“" if field else ""
            self.value = (
                f"<span style='color:#b3261e'>✗ {esc(text)} "
                f"<small style='color:#777'>{esc(code)}</small></span>"
            )
            return
        self.value = f"<span style='color:#b3261e'>✗ {esc(str(error))}</span>"

    def clear(self) -> None:
        self.value = ""


# Widget id -> [how many actions froze it, its state before the first one]. A kernel can
# handle a double-click's two clicks side by side (seen on PostgreSQL); restoring "what
# it was before" per call then left buttons disabled for good. Counting restores the
# state from before the first freeze when the last one ends.
_FREEZE_LOCK = threading.Lock()
_FROZEN: dict[int, list] = {}


@contextlib.contextmanager
def frozen(*controls: widgets.Widget):
    """Disable the given controls for the duration of a slow call (nesting and
    overlapping calls restore each control once, to its state before the first)."""
    with _FREEZE_LOCK:
        for c in controls:
            entry = _FROZEN.get(id(c))
            if entry is None:
                _FROZEN[id(c)] = [1, c.disabled]
                c.disabled = True
            else:
                entry[0] += 1
    try:
        yield
    finally:
        with _FREEZE_LOCK:
            for c in controls:
                entry = _FROZEN[id(c)]
                entry[0] -= 1
                if entry[0] == 0:
                    del _FROZEN[id(c)]
                    c.disabled = entry[1]


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
    # one action at a time per panel: a second click handled while the first still runs
    # is refused instead of acting beside it; once the first has shown its outcome, the
    # refusal leaves that line alone (a double-click would otherwise hide what was done)
    if not status.busy.acquire(blocking=False):
        with status.line:
            if not status.answered:
                status.error("Die vorige Aktion läuft noch: bitte kurz warten; nichts geändert")
        return None
    status.answered = False
    try:
        with frozen(*controls):
            try:
                result = action()
            except OperationError as error:
                with status.line:
                    status.error(error)
                    status.answered = True
                return None
            text = success(result)
            if text:  # an empty text: the caller words the outcome itself, after its reload
                with status.line:
                    status.ok(text)
                    status.answered = True
            return result
    finally:
        status.busy.release()


def choose(dropdown: widgets.Dropdown, options: list, previous, *, first: bool = False) -> None:
    """Give ``dropdown`` new options and keep ``previous`` selected while it is listed.

    When the previous record is gone (an action moved it out of the list) nothing is
    selected: the selection never jumps to a neighbour, so a repeated click cannot act on a
    record nobody looked at. ``first`` selects the first option when nothing was selected
    before (a panel's initial load)."""
    dropdown.options = options
    values = [value for _, value in options]
    if previous in values:
        dropdown.value = previous
    elif first and previous is None and values:
        dropdown.value = values[0]
    else:
        dropdown.value = None


class Confirmation(widgets.VBox):
    """Asks before an irreversible or wide action, naming exactly what will happen.

    ``ask(text, yes_label, action)`` shows the question; "Ja" runs ``action`` once (a
    second click finds nothing pending), "Nein" or ``cancel()`` (e.g. on another selection)
    drops it. The action is a closure over the record shown when staff clicked, never the
    selection at the time of the confirmation."""

    def __init__(self, **kwargs):
        self.question = widgets.HTML()
        self.yes_button = widgets.Button(description="Ja", button_style="danger", icon="check")
        self.no_button = widgets.Button(description="Nein, zurück", icon="undo")
        self.yes_button.layout.width = "auto"
        self._pending = None
        self.yes_button.on_click(lambda _: self.confirm())
        self.no_button.on_click(lambda _: self.cancel())
        super().__init__([self.question, widgets.HBox([self.yes_button, self.no_button])], **kwargs)
        self.add_class("psymatch-confirmation")  # a stable handle for the browser test
        self.layout.display = "none"

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def ask(self, text: str, yes_label: str, action) -> None:
        self._pending = action
        self.question.value = f"<b style='color:#8a1c00'>⚠ {esc(text)}</b>"
        self.yes_button.description = yes_label
        self.layout.display = ""

    def cancel(self) -> None:
        self._pending = None
        self.question.value = ""
        self.layout.display = "none"

    def confirm(self):
        action, self._pending = self._pending, None
        self.cancel()
        return action() if action is not None else None
