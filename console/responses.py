"""Recording answers: the Response panel (manual entry) and the review queue of email replies
and link clicks.

Both call the operations (``record_response``, ``decide_review``, ``dismiss_review``,
``decide_click_review``, ``dismiss_click_review``);
a refused answer shows its outcome code and changes nothing.
"""

from __future__ import annotations

import ipywidgets as widgets
import traitlets

from operations.errors import OperationError
from operations.replies import (
    decide_click_review,
    decide_review,
    dismiss_click_review,
    dismiss_review,
)
from operations.responses import close_without_response, record_response
from psymatch.domain import vocab

from . import fmt, queries
from .common import StatusLine, esc, frozen, run_action, staff_name
from .inputs import bounded_text
from .messages import review_reason_de
from .paging import PagedTable

OUTCOMES = list(vocab.THERAPEUTENANTWORTEN)
NO_ENTRY = "—"
QUEUE_HEADERS = ["Eingang", "Empfangen", "Absender", "Betreff", "Anfrage", "Grund"]


class PatientOutcomeForm(widgets.VBox):
    """One dropdown per patient of an Anfrage; ``responses()`` gives the entered answers."""

    anfrage_id = traitlets.Int(allow_none=True)

    def __init__(self, **kwargs):
        self.info = widgets.HTML()
        self.dropdowns: dict[int, widgets.Dropdown] = {}
        self.rows_box = widgets.VBox()
        super().__init__([self.info, self.rows_box], **kwargs)
        self.observe(lambda _: self.load(), names="anfrage_id")

    def load(self) -> dict | None:
        self.dropdowns = {}
        data = queries.anfrage_lines(self.anfrage_id) if self.anfrage_id is not None else None
        if data is None:
            self.info.value = (
                "" if self.anfrage_id is None else f"<i>Anfrage {self.anfrage_id} gibt es nicht</i>"
            )
            self.rows_box.children = []
            return None
        state = (
            fmt.label(data["antworttyp"], "ANTWORTTYP")
            if data["antworttyp"]
            else ("gesendet" if data["gesendet"] else "nicht gesendet")
        )
        # an Anfrage closed without answer may still be answered: its lines stay editable
        reopened = data["antworttyp"] == "keine_Antwort"
        self.info.value = (
            f"<b>Anfrage {data['anfrage_id']}</b> an {esc(data['therapeut'])} "
            f"(Therapeut {data['therapist_id']}) – {esc(state)}"
        )
        rows = []
        for line in data["lines"]:
            decided = line["antwortergebnis"] in OUTCOMES
            dropdown = widgets.Dropdown(
                options=[(NO_ENTRY, NO_ENTRY), *fmt.options("THERAPEUTENANTWORTEN", OUTCOMES)],
                value=line["antwortergebnis"] if decided else NO_ENTRY,
                description=f"Patient {line['patient_id']}",
                style={"description_width": "initial"},
                disabled=decided and not reopened,
            )
            self.dropdowns[line["patient_id"]] = dropdown
            status = fmt.label(line["status"], "ANFRAGE_PATIENT_STATUS")
            label = widgets.HTML(f"{esc(line['patient'])} <small>({esc(status)})</small>")
            rows.append(widgets.HBox([dropdown, label]))
        self.rows_box.children = rows
        return data

    def set_outcome(self, patient_id: int, outcome: str) -> None:
        self.dropdowns[patient_id].value = outcome

    def responses(self) -> dict[int, str]:
        """The answers entered; patients decided before (shown, disabled) are not part."""
        return {
            pid: d.value
            for pid, d in self.dropdowns.items()
            if d.value != NO_ENTRY and not d.disabled
        }


def _summary(result) -> str:
    return (
        f"Antwort gespeichert: {fmt.label(result.antworttyp, 'ANTWORTTYP')} "
        f"({result.angenommen_anzahl} angenommen, {result.abgelehnt_anzahl} abgelehnt"
        + (f", {len(result.conflicts)} Konflikt(e)" if result.conflicts else "")
        + ")"
    )


class ResponsePanel(widgets.VBox):
    """Pick an Anfrage, choose an outcome per patient, save through ``record_response``."""

    def __init__(self, actor: str | None = None, **kwargs):
        self.actor = actor if actor is not None else staff_name()
        self.anfrage_input = widgets.IntText(description="Anfrage-ID")
        self.load_button = widgets.Button(description="Laden", icon="folder-open")
        self.form = PatientOutcomeForm()
        self.notes = widgets.Textarea(description="Notizen", placeholder="optional")
        self.save_button = widgets.Button(
            description="Speichern", icon="save", button_style="primary"
        )
        # closing without response (docs/domain.md §11.2): only for the loaded Anfrage,
        # and only with the confirmation ticked for exactly that one
        self.close_confirm = widgets.Checkbox(description="", indent=False)
        self.close_button = widgets.Button(
            description="Ohne Antwort schließen", icon="times-circle", button_style="warning"
        )
        self.close_box = widgets.VBox([widgets.HBox([self.close_confirm, self.close_button])])
        self.status = StatusLine()
        self.load_button.on_click(lambda _: self.load())
        self.save_button.on_click(lambda _: self.save())
        self.close_button.on_click(lambda _: self.close())
        self.form.observe(lambda _: self._show_close(), names="anfrage_id")
        super().__init__(
            [
                widgets.HTML("<h3>Antwort erfassen</h3>"),
                widgets.HBox([self.anfrage_input, self.load_button]),
                self.form,
                self.notes,
                self.save_button,
                self.close_box,
                self.status,
            ],
            **kwargs,
        )
        self.add_class("psymatch-responses")  # a stable handle for the browser test
        self._show_close()

    def _closable(self) -> dict | None:
        """The loaded Anfrage when it is sent and still pending, else None."""
        if self.form.anfrage_id is None:
            return None
        data = queries.anfrage_lines(self.form.anfrage_id)
        if data is None or data["gesendet"] is None or data["antwort_datum"] is not None:
            return None
        return data

    def _show_close(self) -> None:
        """Offer the closing only for a sent, pending Anfrage; the confirmation names it and
        starts unticked for every Anfrage loaded."""
        self.close_confirm.value = False
        data = self._closable()
        self.close_box.layout.display = "" if data else "none"
        if data:
            self.close_confirm.description = (
                f"Ja, Anfrage {data['anfrage_id']} an {data['therapeut']} ohne Antwort "
                "schließen: offene Patienten gelten als unbeantwortet, geplante Anrufe "
                "werden abgesagt"
            )

    def load(self, anfrage_id: int | None = None) -> None:
        if anfrage_id is not None:
            self.anfrage_input.value = anfrage_id
        self.status.clear()
        with frozen(self.load_button):
            if self.form.anfrage_id == self.anfrage_input.value:
                self.form.load()
                self._show_close()
            else:
                self.form.anfrage_id = self.anfrage_input.value  # shows the closing too

    def close(self):
        """Close exactly the loaded Anfrage without response (confirmation required)."""
        anfrage_id = self.form.anfrage_id
        if anfrage_id is None or anfrage_id != self.anfrage_input.value:
            self.status.error("Anfrage nicht geladen: bitte zuerst „Laden“ klicken")
            return None
        confirmed = self.close_confirm.value

        def action():
            if not confirmed:
                raise OperationError(
                    "CONFIRMATION_REQUIRED",
                    f"Schließen von Anfrage {anfrage_id} bitte zuerst bestätigen",
                )
            return close_without_response(anfrage_id, actor=self.actor)

        result = run_action(
            self.status,
            (self.close_button, self.save_button, self.load_button),
            action,
            lambda r: (
                f"Anfrage {r['anfrage_id']} ohne Antwort geschlossen"
                + (f", {r['calls_cancelled']} Anruf(e) abgesagt" if r["calls_cancelled"] else "")
            ),
        )
        if result is not None:
            self.form.load()
            self._show_close()
        return result

    def save(self):
        anfrage_id = self.anfrage_input.value
        responses = self.form.responses()
        result = run_action(
            self.status,
            (self.save_button, self.load_button),
            lambda: record_response(
                anfrage_id,
                responses,
                bounded_text(self.notes.value, field="Notizen", limit=2000) or None,
                actor=self.actor,
            ),
            _summary,
        )
        if result is not None:
            self.notes.value = ""
            self.form.load()
            self._show_close()
        return result


class ReviewQueuePanel(widgets.VBox):
    """Items in status ``pruefung`` (email replies and one-click link answers): reason and
    text beside the bundle, decide per patient or dismiss with a reason.

    The selection is a ``(kind, id)`` pair (``"email"`` or ``"klick"``);
    ``selected_inbound_id`` / ``selected_klick_id`` name the selected reply or click.

    The queue is paged and filterable (``console.paging``) with the selected item, its form
    and the buttons above it. The selection offers the items of the page shown and, as a
    queue worked through item by item, moves to the first of them when the selected one
    is gone (decided, dismissed, or on another page)."""

    selected = traitlets.Any(None, allow_none=True)
    selected_inbound_id = traitlets.Int(allow_none=True)
    selected_klick_id = traitlets.Int(allow_none=True)
    items = traitlets.List()

    def __init__(self, actor: str | None = None, page_size: int = 25, **kwargs):
        self.actor = actor if actor is not None else staff_name()
        self._by_key: dict[tuple[str, int], dict] = {}
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.item_select = widgets.Dropdown(description="Eingang", options=[])
        self.reason = widgets.HTML()
        self.reply = widgets.HTML()
        self.anfrage_input = widgets.IntText(description="Anfrage-ID")
        self.form = PatientOutcomeForm()
        self.decide_button = widgets.Button(
            description="Entscheiden", icon="check", button_style="primary"
        )
        self.partial = widgets.Checkbox(
            description="nur die gewählten Patient:innen entscheiden, die anderen bleiben offen",
            indent=False,
            layout=widgets.Layout(width="auto"),
        )
        self.dismiss_reason = widgets.Text(description="Grund", placeholder="zum Verwerfen")
        self.dismiss_button = widgets.Button(description="Verwerfen", icon="trash")
        self.status = StatusLine()

        self.refresh_button.on_click(lambda _: self.refresh())
        self.decide_button.on_click(lambda _: self.decide())
        self.dismiss_button.on_click(lambda _: self.dismiss())
        traitlets.link((self.item_select, "value"), (self, "selected"))
        self.observe(self._on_select, names="selected")
        self.anfrage_input.observe(self._anfrage_changed, names="value")
        self.pager = PagedTable(
            QUEUE_HEADERS,
            actions=[
                widgets.VBox(
                    [
                        widgets.HBox([self.refresh_button, self.item_select]),
                        widgets.HBox(
                            [
                                widgets.VBox([self.reason, self.reply], layout={"width": "50%"}),
                                widgets.VBox(
                                    [
                                        self.anfrage_input,
                                        self.form,
                                        self.partial,
                                        self.decide_button,
                                    ],
                                    layout={"width": "50%"},
                                ),
                            ]
                        ),
                        widgets.HBox([self.dismiss_reason, self.dismiss_button]),
                        self.status,
                    ],
                    layout={"width": "100%"},
                )
            ],
            page_size=page_size,
            filter_placeholder="Absender, Betreff, Anfrage, Grund …",
        )
        self.queue_table = self.pager.output  # the page shown
        self.pager.observe(lambda _: self._offer(), names="visible_keys")
        super().__init__(
            [
                widgets.HTML("<h3>Prüfungsliste (E-Mail-Antworten und Link-Klicks)</h3>"),
                self.pager,
            ],
            **kwargs,
        )
        self.add_class("psymatch-review-queue")
        self.refresh()

    @staticmethod
    def _key(item: dict) -> tuple[str, int]:
        return item["kind"], item["inbound_id"] if item["kind"] == "email" else item["klick_id"]

    @staticmethod
    def _option_label(item: dict) -> str:
        if item["kind"] == "email":
            return f"{item['inbound_id']} – {item['sender'] or '?'}"
        return f"Klick {item['klick_id']} – Patient {item['patient_id']} ({item['answer']})"

    def refresh(self) -> None:
        with frozen(self.refresh_button):
            self.items = queries.reviews()
        self._by_key = {self._key(i): i for i in self.items}
        self.pager.set_rows(
            [
                [
                    queries.review_label(i),
                    i["received_at"],
                    queries.review_origin(i),
                    i["subject"],
                    i["anfrage_id"],
                    review_reason_de(i["reason"]),
                ]
                for i in self.items
            ],
            keys=[self._key(i) for i in self.items],
        )
        self._offer()
        self._on_select()

    def _offer(self) -> None:
        """The selection offers the items of the page shown: the selected one while it is
        there, else the first of them (the queue is worked through item by item)."""
        previous = self.selected
        keys = list(self.pager.visible_keys)
        self.item_select.options = [(self._option_label(self._by_key[k]), k) for k in keys]
        self.item_select.value = previous if previous in keys else (keys[0] if keys else None)

    def _on_select(self, _change=None) -> None:
        kind, item_id = self.selected or (None, None)
        self.selected_inbound_id = item_id if kind == "email" else None
        self.selected_klick_id = item_id if kind == "klick" else None
        self.show_item()

    def _item(self) -> dict | None:
        return self._by_key.get(self.selected)

    def show_item(self) -> None:
        item = self._item()
        if item is None:
            self.reason.value = ""
            self.reply.value = ""
            self.anfrage_input.disabled = False
            self.form.anfrage_id = None
            return
        words = item.get("evidence") or []
        why = "<br><b>Gelesen aus:</b> " + ", ".join(f"„{esc(w)}“" for w in words) if words else ""
        self.reason.value = f"<b>Grund:</b> {esc(review_reason_de(item['reason']))}{why}"
        if item["kind"] == "klick":
            self._show_click(item)
            return
        text = queries.reply_text(item["inbound_id"])
        self.reply.value = (
            f"<b>Betreff:</b> {esc(item['subject'])}<pre style='white-space:pre-wrap'>"
            f"{esc(text)}</pre>"
        )
        self.anfrage_input.disabled = False
        self.anfrage_input.value = item["anfrage_id"] or 0
        self.form.anfrage_id = item["anfrage_id"]

    def _show_click(self, item: dict) -> None:
        """A click belongs to its Anfrage (no other can be named); the form starts with the
        answers clicked for it that are in review, where nothing is recorded yet."""
        self.reply.value = (
            f"<b>Link-Klick</b> am {esc(item['received_at'])}<br>"
            f"Anfrage {esc(item['anfrage_id'])}, Patient {esc(item['patient_id'])} "
            f"{esc(item['patient'])}<br><b>Geklickte Antwort:</b> {esc(item['answer'])}"
        )
        before = self.form.anfrage_id
        self.anfrage_input.value = item["anfrage_id"]
        self.anfrage_input.disabled = True
        if self.form.anfrage_id != item["anfrage_id"]:
            self.form.anfrage_id = item["anfrage_id"]  # loads the form
        elif before == item["anfrage_id"]:
            self.form.load()  # drop what was entered for another item
        for other in self.items:
            if other["kind"] == "klick" and other["anfrage_id"] == item["anfrage_id"]:
                dropdown = self.form.dropdowns.get(other["patient_id"])
                if dropdown is not None and dropdown.value == NO_ENTRY:
                    dropdown.value = other["answer"]

    def _anfrage_changed(self, change) -> None:
        self.form.anfrage_id = change["new"] or None

    def _controls(self):
        return (self.decide_button, self.dismiss_button, self.refresh_button)

    def decide(self):
        kind, item_id = self.selected or (None, None)
        if item_id is None:
            self.status.error("Kein Eingang ausgewählt")
            return None
        responses = self.form.responses()
        partial = self.partial.value
        if kind == "klick":
            if partial:
                self.status.error("Link-Klicks werden für die ganze Anfrage entschieden")
                return None
            action = lambda: decide_click_review(item_id, responses, self.actor)  # noqa: E731
            label = f"Klick {item_id}"
        else:
            anfrage_id = self.anfrage_input.value or None
            action = lambda: decide_review(  # noqa: E731
                item_id, responses, self.actor, anfrage_id=anfrage_id, partial=partial
            )
            label = f"Eingang {item_id}"

        def success(r) -> str:
            if r.still_open:
                return (
                    f"{label}: {len(responses)} Patient:in(nen) entschieden, "
                    f"{r.still_open} bleiben offen; der Eingang bleibt in Prüfung"
                )
            return f"{label}: " + _summary(r)

        result = run_action(self.status, self._controls(), action, success)
        if result is not None:
            self.partial.value = False
            if result.still_open:
                self.form.load()  # the decided patients now show their answer
            else:
                self.refresh()
        return result

    def dismiss(self):
        kind, item_id = self.selected or (None, None)
        if item_id is None:
            self.status.error("Kein Eingang ausgewählt")
            return None
        reason = self.dismiss_reason.value.strip()
        if not reason:
            self.status.error("REASON_REQUIRED: zum Verwerfen einen Grund angeben")
            return None
        dismiss = dismiss_click_review if kind == "klick" else dismiss_review
        label = f"Klick {item_id}" if kind == "klick" else f"Eingang {item_id}"
        result = run_action(
            self.status,
            self._controls(),
            lambda: dismiss(item_id, self.actor, bounded_text(reason, field="Grund")),
            lambda _: f"{label} verworfen",
        )
        if result is not None:
            self.dismiss_reason.value = ""
            self.refresh()
        return result
