"""Recording answers: the Response panel (manual entry) and the review queue of email replies.

Both call the operations (``record_response``, ``decide_review``, ``dismiss_review``);
a refused answer shows its outcome code and changes nothing.
"""

from __future__ import annotations

import ipywidgets as widgets
import traitlets

from operations.replies import decide_review, dismiss_review
from operations.responses import record_response
from psymatch.domain import vocab

from . import queries
from .common import StatusLine, esc, frozen, run_action, staff_name, table

OUTCOMES = list(vocab.THERAPEUTENANTWORTEN)
NO_ENTRY = "—"


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
        state = data["antworttyp"] or ("gesendet" if data["gesendet"] else "nicht gesendet")
        self.info.value = (
            f"<b>Anfrage {data['anfrage_id']}</b> an {esc(data['therapeut'])} "
            f"(Therapeut {data['therapist_id']}) – {esc(state)}"
        )
        rows = []
        for line in data["lines"]:
            dropdown = widgets.Dropdown(
                options=[NO_ENTRY, *OUTCOMES],
                value=line["antwortergebnis"] if line["antwortergebnis"] in OUTCOMES else NO_ENTRY,
                description=f"Patient {line['patient_id']}",
                style={"description_width": "initial"},
            )
            self.dropdowns[line["patient_id"]] = dropdown
            label = widgets.HTML(f"{esc(line['patient'])} <small>({esc(line['status'])})</small>")
            rows.append(widgets.HBox([dropdown, label]))
        self.rows_box.children = rows
        return data

    def set_outcome(self, patient_id: int, outcome: str) -> None:
        self.dropdowns[patient_id].value = outcome

    def responses(self) -> dict[int, str]:
        return {pid: d.value for pid, d in self.dropdowns.items() if d.value != NO_ENTRY}


def _summary(result) -> str:
    return (
        f"Antwort gespeichert: {result.antworttyp} "
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
        self.status = StatusLine()
        self.load_button.on_click(lambda _: self.load())
        self.save_button.on_click(lambda _: self.save())
        super().__init__(
            [
                widgets.HTML("<h3>Antwort erfassen</h3>"),
                widgets.HBox([self.anfrage_input, self.load_button]),
                self.form,
                self.notes,
                self.save_button,
                self.status,
            ],
            **kwargs,
        )
        self.add_class("psymatch-responses")  # a stable handle for the browser test

    def load(self, anfrage_id: int | None = None) -> None:
        if anfrage_id is not None:
            self.anfrage_input.value = anfrage_id
        self.status.clear()
        with frozen(self.load_button):
            if self.form.anfrage_id == self.anfrage_input.value:
                self.form.load()
            else:
                self.form.anfrage_id = self.anfrage_input.value

    def save(self):
        anfrage_id = self.anfrage_input.value
        responses = self.form.responses()
        result = run_action(
            self.status,
            (self.save_button, self.load_button),
            lambda: record_response(
                anfrage_id, responses, self.notes.value or None, actor=self.actor
            ),
            _summary,
        )
        if result is not None:
            self.notes.value = ""
            self.form.load()
        return result


class ReviewQueuePanel(widgets.VBox):
    """Replies in status ``pruefung``: reason and text beside the bundle, decide per patient."""

    selected_inbound_id = traitlets.Int(allow_none=True)
    items = traitlets.List()

    def __init__(self, actor: str | None = None, **kwargs):
        self.actor = actor if actor is not None else staff_name()
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.queue_table = widgets.HTML()
        self.item_select = widgets.Dropdown(description="Eingang", options=[])
        self.reason = widgets.HTML()
        self.reply = widgets.HTML()
        self.anfrage_input = widgets.IntText(description="Anfrage-ID")
        self.form = PatientOutcomeForm()
        self.decide_button = widgets.Button(
            description="Entscheiden", icon="check", button_style="primary"
        )
        self.dismiss_reason = widgets.Text(description="Grund", placeholder="zum Verwerfen")
        self.dismiss_button = widgets.Button(description="Verwerfen", icon="trash")
        self.status = StatusLine()

        self.refresh_button.on_click(lambda _: self.refresh())
        self.decide_button.on_click(lambda _: self.decide())
        self.dismiss_button.on_click(lambda _: self.dismiss())
        traitlets.link((self.item_select, "value"), (self, "selected_inbound_id"))
        self.observe(lambda _: self.show_item(), names="selected_inbound_id")
        self.anfrage_input.observe(self._anfrage_changed, names="value")
        super().__init__(
            [
                widgets.HTML("<h3>Prüfungsliste (E-Mail-Antworten)</h3>"),
                self.refresh_button,
                self.queue_table,
                self.item_select,
                widgets.HBox(
                    [
                        widgets.VBox([self.reason, self.reply], layout={"width": "50%"}),
                        widgets.VBox(
                            [self.anfrage_input, self.form, self.decide_button],
                            layout={"width": "50%"},
                        ),
                    ]
                ),
                widgets.HBox([self.dismiss_reason, self.dismiss_button]),
                self.status,
            ],
            **kwargs,
        )
        self.add_class("psymatch-review-queue")
        self.refresh()

    def refresh(self) -> None:
        with frozen(self.refresh_button):
            self.items = queries.reviews()
        self.queue_table.value = table(
            ["Eingang", "Empfangen", "Absender", "Betreff", "Anfrage", "Grund"],
            [
                [
                    i["inbound_id"],
                    i["received_at"],
                    i["sender"],
                    i["subject"],
                    i["anfrage_id"],
                    i["reason"],
                ]
                for i in self.items
            ],
        )
        previous = self.selected_inbound_id
        options = [
            (f"{i['inbound_id']} – {i['sender'] or '?'}", i["inbound_id"]) for i in self.items
        ]
        self.item_select.options = options
        ids = [v for _, v in options]
        self.item_select.value = previous if previous in ids else (ids[0] if ids else None)
        self.show_item()

    def _item(self) -> dict | None:
        return next((i for i in self.items if i["inbound_id"] == self.selected_inbound_id), None)

    def show_item(self) -> None:
        item = self._item()
        if item is None:
            self.reason.value = ""
            self.reply.value = ""
            self.form.anfrage_id = None
            return
        self.reason.value = f"<b>Grund:</b> {esc(item['reason'])}"
        text = queries.reply_text(item["inbound_id"])
        self.reply.value = (
            f"<b>Betreff:</b> {esc(item['subject'])}<pre style='white-space:pre-wrap'>"
            f"{esc(text)}</pre>"
        )
        self.anfrage_input.value = item["anfrage_id"] or 0
        self.form.anfrage_id = item["anfrage_id"]

    def _anfrage_changed(self, change) -> None:
        self.form.anfrage_id = change["new"] or None

    def decide(self):
        inbound_id = self.selected_inbound_id
        if inbound_id is None:
            self.status.error("Kein Eingang ausgewählt")
            return None
        anfrage_id = self.anfrage_input.value or None
        responses = self.form.responses()
        result = run_action(
            self.status,
            (self.decide_button, self.dismiss_button, self.refresh_button),
            lambda: decide_review(inbound_id, responses, self.actor, anfrage_id=anfrage_id),
            lambda r: f"Eingang {inbound_id}: " + _summary(r),
        )
        if result is not None:
            self.refresh()
        return result

    def dismiss(self):
        inbound_id = self.selected_inbound_id
        if inbound_id is None:
            self.status.error("Kein Eingang ausgewählt")
            return None
        if not self.dismiss_reason.value.strip():
            self.status.error("REASON_REQUIRED: zum Verwerfen einen Grund angeben")
            return None
        result = run_action(
            self.status,
            (self.decide_button, self.dismiss_button, self.refresh_button),
            lambda: dismiss_review(inbound_id, self.actor, self.dismiss_reason.value.strip()),
            lambda _: f"Eingang {inbound_id} verworfen",
        )
        if result is not None:
            self.dismiss_reason.value = ""
            self.refresh()
        return result
