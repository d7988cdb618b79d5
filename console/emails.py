"""The failed-emails panel: emails in status ``Fehlgeschlagen`` with their error, and
"Erneut senden" for exactly the selected one (``operations.emails_admin.resend_email``).

The console renders and sends nothing itself (a kernel holds no ``SIGNING_KEY``): the
operation puts the email back into the queue and its sending into the outbox, and the
workers send it. A repeated click is refused with ``EMAIL_NOT_FAILED``.

The list is paged and filterable with the selection and "Erneut senden" above it
(``console.paging``); the selection offers the emails of the page shown. Kinds of email in
German, times in local time (``console.fmt``).
"""

from __future__ import annotations

import ipywidgets as widgets
import traitlets

from operations.emails_admin import failed_emails, resend_email
from operations.errors import OperationError

from . import fmt
from .common import StatusLine, choose, esc, frozen, run_action, staff_name
from .paging import PagedTable

HEADERS = ["E-Mail", "Art", "Empfänger", "Anfrage", "Betreff", "Fehler", "Fehlgeschlagen am"]


def _art(row: dict) -> str:
    return fmt.label(row["art"], "EMAIL_ART")


class FailedEmailsPanel(widgets.VBox):
    """Table of failed emails, one selected, resent after an explicit confirmation."""

    selected_email_id = traitlets.Int(allow_none=True)
    rows = traitlets.List()

    def __init__(self, actor: str | None = None, limit: int = 1000, page_size: int = 25, **kwargs):
        self.actor = actor if actor is not None else staff_name()
        self.limit = limit
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.email_select = widgets.Dropdown(
            description="E-Mail", options=[], layout=widgets.Layout(width="520px")
        )
        self.details = widgets.HTML()
        self.confirm = widgets.Checkbox(description="", indent=False)
        self.resend_button = widgets.Button(
            description="Erneut senden", icon="paper-plane", button_style="warning"
        )
        self.status = StatusLine()
        self.pager = PagedTable(
            HEADERS,
            actions=[
                widgets.VBox(
                    [
                        widgets.HBox([self.refresh_button, self.email_select]),
                        self.details,
                        widgets.HBox([self.confirm, self.resend_button]),
                        self.status,
                    ]
                )
            ],
            page_size=page_size,
            filter_placeholder="Empfänger, Art, Fehler …",
        )
        self.table = self.pager.output
        self.pager.observe(lambda _: self._offer(), names="visible_keys")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.resend_button.on_click(lambda _: self.resend())
        traitlets.link((self.email_select, "value"), (self, "selected_email_id"))
        self.observe(lambda _: self._show_selected(), names="selected_email_id")
        super().__init__(
            [
                widgets.HTML("<h3>Fehlgeschlagene E-Mails</h3>"),
                self.pager,
            ],
            **kwargs,
        )
        self.add_class("psymatch-failed-emails")
        self.refresh()

    def refresh(self) -> None:
        with frozen(self.refresh_button):
            self.rows = failed_emails(self.limit)
        self.pager.set_rows(
            [
                [
                    r["email_id"],
                    _art(r),
                    f"{r['empfaenger']} {r['empfaenger_name']}".strip(),
                    r["anfrage_id"] or "",
                    r["betreff"],
                    r["fehlermeldung"],
                    fmt.datetime_de(r["fehlgeschlagen_am"]),
                ]
                for r in self.rows
            ],
            keys=[r["email_id"] for r in self.rows],
        )
        self._offer()

    def _offer(self) -> None:
        """The selection offers the emails of the page shown; the selected one stays
        selected while it is there."""
        previous = self.selected_email_id
        shown = set(self.pager.visible_keys)
        options = [
            (f"{r['email_id']} – {_art(r)} an {r['empfaenger']}", r["email_id"])
            for r in self.rows
            if r["email_id"] in shown
        ]
        # the first time the first row; later a vanished selection is not replaced
        # by a neighbour (a repeated click must not act on another record)
        choose(self.email_select, options, previous, first=not getattr(self, "_offered", False))
        self._offered = True
        self._show_selected()

    def _row(self) -> dict | None:
        return next((r for r in self.rows if r["email_id"] == self.selected_email_id), None)

    def _show_selected(self) -> None:
        """The confirmation names the selected email and starts unticked for each one."""
        self.confirm.value = False
        row = self._row()
        if row is None:
            self.details.value = ""
            self.confirm.description = "Keine E-Mail ausgewählt"
            return
        self.details.value = (
            f"<b>Fehler:</b> {esc(row['fehlermeldung'])}<br>"
            f"<b>Versuche:</b> {esc(row['versuche'])}, "
            f"<b>eingereiht am:</b> {esc(fmt.datetime_de(row['eingereiht_am']))}"
        )
        self.confirm.description = (
            f"Ja, E-Mail {row['email_id']} ({_art(row)}) erneut an {row['empfaenger']} senden"
        )

    def resend(self):
        """Queue exactly the selected email again (the one the confirmation names)."""
        row = self._row()
        if row is None:
            self.status.error("Keine E-Mail ausgewählt")
            return None
        email_id, confirmed = row["email_id"], self.confirm.value

        def action():
            if not confirmed:
                raise OperationError(
                    "CONFIRMATION_REQUIRED", f"Erneutes Senden von E-Mail {email_id} bestätigen"
                )
            return resend_email(email_id, actor=self.actor)

        result = run_action(
            self.status,
            (self.resend_button, self.refresh_button),
            action,
            lambda r: f"E-Mail {r['email_id']} wieder in der Warteschlange; sie wird gesendet",
        )
        if result is not None:
            self.refresh()
        return result
