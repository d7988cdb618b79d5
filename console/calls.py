"""The Calls panel: today's and overdue planned calls and their outcome (docs/domain.md §8.2).

Outcomes go through ``operations.calls``: reached with per-patient answers
(recorded like any answer, cooling starts there), not reached (nothing else changes),
cancelled, and rescheduling a new call.

The list is paged and filterable (``console.paging``) with the selection, the selected
call's patients and the outcome buttons above it; the selection offers the calls of the
page shown.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import traitlets

from operations.calls import reschedule, set_call_status

from . import fmt, queries
from .common import StatusLine, choose, esc, frozen, run_action, staff_name
from .inputs import bounded_text
from .paging import PagedTable
from .responses import PatientOutcomeForm

HEADERS = ["Anruf", "Datum", "Zeit", "Therapeut", "Telefon", "Anfrage", "überfällig"]

STATUS_TEXT = {
    "abgeschlossen": "erreicht",
    "fehlgeschlagen": "nicht erreicht",
    "abgebrochen": "abgebrochen",
}


class CallsPanel(widgets.VBox):
    """Planned calls up to today; record the outcome of the selected one."""

    selected_call_id = traitlets.Int(allow_none=True)
    calls = traitlets.List()

    def __init__(
        self,
        today: dt.date | None = None,
        now: dt.datetime | None = None,
        actor: str | None = None,
        page_size: int = 25,
        **kwargs,
    ):
        self.today = today
        self.now = now
        self.actor = actor if actor is not None else staff_name()
        self._by_id: dict[int, dict] = {}
        self._offered = False
        self.status = StatusLine()
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.call_select = widgets.Dropdown(description="Anruf", options=[])
        self.call_info = widgets.HTML()
        self.form = PatientOutcomeForm()
        self.ergebnis = widgets.Text(description="Ergebnis", placeholder="Notiz (optional)")
        self.reached_button = widgets.Button(
            description="Erreicht", icon="check", button_style="success"
        )
        self.failed_button = widgets.Button(description="Nicht erreicht", icon="phone-slash")
        self.cancel_button = widgets.Button(
            description="Abgebrochen", icon="times", button_style="danger"
        )
        self.reschedule_id = widgets.IntText(description="Anruf-ID")
        self.reschedule_button = widgets.Button(description="Neu planen", icon="calendar")

        self.refresh_button.on_click(lambda _: self.refresh())
        self.reached_button.on_click(lambda _: self.reached())
        self.failed_button.on_click(lambda _: self.finish("fehlgeschlagen"))
        self.cancel_button.on_click(lambda _: self.finish("abgebrochen"))
        self.reschedule_button.on_click(lambda _: self.plan_again())
        traitlets.link((self.call_select, "value"), (self, "selected_call_id"))
        self.observe(lambda _: self.show_call(), names="selected_call_id")

        self.pager = PagedTable(
            HEADERS,
            actions=[
                widgets.VBox(
                    [
                        widgets.HBox([self.refresh_button, self.call_select]),
                        self.call_info,
                        self.form,
                        self.ergebnis,
                        widgets.HBox([self.reached_button, self.failed_button, self.cancel_button]),
                        widgets.HTML(
                            "<small>Neu planen: ab dem Tag des Anrufs "
                            "(meist nach „Nicht erreicht“)</small>"
                        ),
                        widgets.HBox([self.reschedule_id, self.reschedule_button]),
                        self.status,
                    ]
                )
            ],
            page_size=page_size,
            filter_placeholder="Therapeut, Telefon, Datum …",
        )
        self.calls_table = self.pager.output  # the page shown
        self.pager.observe(lambda _: self._offer(), names="visible_keys")

        super().__init__(
            [widgets.HTML("<h3>Anrufe (heute und überfällig)</h3>"), self.pager], **kwargs
        )
        self.add_class("psymatch-calls")
        self.refresh()

    @property
    def action_controls(self):
        return (
            self.refresh_button,
            self.reached_button,
            self.failed_button,
            self.cancel_button,
            self.reschedule_button,
        )

    def refresh(self) -> None:
        """Reload the due calls; a call that left the list (or the page shown) is not
        replaced by the next one."""
        with frozen(self.refresh_button):
            self.calls = queries.calls_due(self.today)
        self._by_id = {c["call_id"]: c for c in self.calls}
        self.pager.set_rows(
            [
                [
                    c["call_id"],
                    c["datum"],
                    c["zeit"],
                    c["therapeut"],
                    c["telefon"],
                    c["anfrage_id"],
                    "ja" if c["ueberfaellig"] else "",
                ]
                for c in self.calls
            ],
            keys=[c["call_id"] for c in self.calls],
        )
        self._offer()
        self.show_call()

    def _offer(self) -> None:
        """The selection offers the calls of the page shown; the selected one stays
        selected while it is there."""
        options = [
            (f"{c['call_id']} – {c['datum']} {c['zeit'] or ''} {c['therapeut']}", c["call_id"])
            for c in (self._by_id[k] for k in self.pager.visible_keys)
        ]
        # the first time the first row; later a vanished selection is not replaced by a
        # neighbour (a repeated click must not record an outcome for another call)
        choose(self.call_select, options, self.selected_call_id, first=not self._offered)
        self._offered = True

    def select(self, call_id: int) -> bool:
        """Show the page holding ``call_id`` and select it; nothing is selected when the
        call is not due. True if it is selected now."""
        return self.pager.select(self.call_select, call_id)

    def _call(self) -> dict | None:
        return self._by_id.get(self.selected_call_id)

    def show_call(self) -> None:
        call = self._call()
        if call is None:
            self.call_info.value = ""
            self.form.anfrage_id = None
            return
        self.call_info.value = (
            f"<b>Anruf {call['call_id']}</b> bei {esc(call['therapeut'])} "
            f"(Tel. {esc(call['telefon'] or '–')}), Anfrage {esc(call['anfrage_id'] or '–')}"
        )
        self.reschedule_id.value = call["call_id"]
        if self.form.anfrage_id == call["anfrage_id"]:
            self.form.load()
        else:
            self.form.anfrage_id = call["anfrage_id"]

    def _need_call(self) -> int | None:
        if self.selected_call_id is None:
            self.status.error("Kein Anruf ausgewählt")
        return self.selected_call_id

    def _set(self, call_id: int, status: str, responses: dict | None):
        typed = self.ergebnis.value

        def success(result) -> str:
            text = f"Anruf {call_id}: {STATUS_TEXT[status]}"
            answer = result["response"]
            if answer:
                text += (
                    f", Antwort gespeichert: {fmt.label(answer['antworttyp'], 'ANTWORTTYP')} "
                    f"({answer['angenommen_anzahl']} angenommen, "
                    f"{answer['abgelehnt_anzahl']} abgelehnt)"
                )
            return text

        result = run_action(
            self.status,
            self.action_controls,
            lambda: set_call_status(
                call_id,
                status,
                ergebnis=bounded_text(typed, field="Ergebnis") or None,
                responses=responses or None,
                actor=self.actor,
                now=self.now,
            ),
            success,
        )
        if result is not None:
            self.ergebnis.value = ""
            self.refresh()
            self.reschedule_id.value = call_id
        return result

    def reached(self):
        """Reached: complete the call; answers entered per patient are recorded."""
        call_id = self._need_call()
        if call_id is None:
            return None
        responses = self.form.responses()
        if self.form.dropdowns and not responses:  # "reached" must record something
            self.status.error(
                "Bitte für mindestens eine Patientin / einen Patienten die Antwort wählen "
                "(sonst „Nicht erreicht“); es wurde nichts gespeichert"
            )
            return None
        return self._set(call_id, "abgeschlossen", responses)

    def finish(self, status: str):
        """Not reached (``fehlgeschlagen``) or cancelled (``abgebrochen``): no answer."""
        call_id = self._need_call()
        if call_id is None:
            return None
        return self._set(call_id, status, None)

    def plan_again(self):
        """A new planned call after the one in ``reschedule_id``."""
        call_id = self.reschedule_id.value
        result = run_action(
            self.status,
            self.action_controls,
            lambda: reschedule(call_id, actor=self.actor, now=self.now),
            lambda new: (
                f"Neuer Anruf {new.id} am {new.geplantes_datum} {new.geplante_zeit or ''}".strip()
            ),
        )
        if result is not None:
            self.refresh()
        return result
