"""The Today panel: what needs staff action now, each row with its next action as a button.

Sections: calls due, answers that arrived, questions practices asked beside a decision,
replies in review, conflicts, accepted patients
whose first session is not confirmed yet, bundles ready to send, and the searches waiting
longest without an open Anfrage. A row's button opens the matching panel below the list,
focused on exactly that record (the call, the reply, the search ...); sending asks first.

The panel reloads its lists every ``CONSOLE_REFRESH_SECONDS`` (60) on the kernel's event
loop. Only the lists are rebuilt: the action area below keeps what staff typed.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import ipywidgets as widgets
import traitlets

from db.models import utcnow
from operations.replies import close_open_question
from operations.sending import request_send
from psymatch import settings

from . import fmt, queries
from .common import Confirmation, StatusLine, esc, run_action, staff_name
from .messages import review_reason_de

SECTION_TITLES = {
    "calls": "Anrufe fällig",
    "answers": "Neue Antworten (48 Stunden)",
    "questions": "Offene Fragen von Praxen",
    "reviews": "Antworten in Prüfung",
    "conflicts": "Konflikte",
    "placements": "Vermittelt, Erstgespräch nicht bestätigt",
    "unsent": "Anfragen versandbereit",
    "waiting": "Längste Wartezeit ohne offene Anfrage",
}


def _call_text(c: dict) -> str:
    late = " (überfällig)" if c["ueberfaellig"] else ""
    return (
        f"Anruf {c['call_id']}: {fmt.date_de(c['datum'])} {c['zeit'] or ''}{late} – "
        f"{c['therapeut']}, Tel. {c['telefon'] or '–'}, Anfrage {c['anfrage_id'] or '–'}"
    )


def _answer_text(a: dict) -> str:
    return (
        f"Anfrage {a['anfrage_id']} – {a['therapeut']}: {fmt.label(a['antworttyp'])} "
        f"({a['angenommen']} angenommen, {a['abgelehnt']} abgelehnt), "
        f"{fmt.datetime_de(a['beantwortet'])}"
    )


def _question_text(q: dict) -> str:
    return (
        f"{q['therapist']} (Anfrage {q['anfrage_id']}), {fmt.datetime_de(q['received_at'])}: "
        f"{q['text']}"
    )


def _review_text(r: dict) -> str:
    return (
        f"{queries.review_label(r)} vom {fmt.datetime_de(r['received_at'])} – "
        f"{queries.review_origin(r)}, Anfrage {r['anfrage_id'] or '?'}: "
        f"{review_reason_de(r['reason'])}"
    )


def _conflict_text(c: dict) -> str:
    accepted = ", ".join(f"{a['therapeut']} (Anfrage {a['anfrage_id']})" for a in c["acceptances"])
    return f"{c['patient']} (Patient {c['patient_id']}): angenommen von {accepted}"


def _placement_text(p: dict) -> str:
    sent = fmt.date_de(p["sent_at"]) if p["sent_at"] else "noch nicht gesendet"
    days = f", vor {p['days']} Tagen" if p["days"] is not None else ""
    return (
        f"Suche {p['platzsuche_id']}: {p['patient']} bei {p['therapeut']} – "
        f"Vermittlungsmail {sent}{days}"
    )


def _unsent_text(u: dict) -> str:
    return (
        f"Anfrage {u['anfrage_id']} an {u['therapeut']} ({u['groesse']} Patient:innen), "
        f"erstellt {fmt.datetime_de(u['erstellt'])}"
    )


def _waiting_text(w: dict) -> str:
    return (
        f"Suche {w['search_id']}: {w['patient']}, PLZ {w['plz']}, wartet seit "
        f"{w['wartetage']} Tagen"
    )


# section -> (row text, button label, key of the record)
ROWS = {
    "calls": (_call_text, "Anruf erfassen", "call_id"),
    "answers": (_answer_text, "Antwort ansehen", "anfrage_id"),
    "questions": (_question_text, "Erledigt", "inbound_id"),
    "reviews": (_review_text, "Prüfen", None),
    "conflicts": (_conflict_text, "Konflikt klären", "patient_id"),
    "placements": (_placement_text, "Ergebnis erfassen", "platzsuche_id"),
    "unsent": (_unsent_text, "Senden …", "anfrage_id"),
    "waiting": (_waiting_text, "Bündel zusammenstellen", "search_id"),
}


def _review_key(item: dict) -> tuple[str, int]:
    return item["kind"], item["inbound_id"] if item["kind"] == "email" else item["klick_id"]


def render(summary: dict) -> str:
    """The lists as HTML text (headings with counts and one line per row), for reading."""
    parts = []
    for section, title in SECTION_TITLES.items():
        items = summary.get(section, [])
        parts.append(f"<h4>{esc(title)}: {len(items)}</h4>")
        text = ROWS[section][0]
        parts += [f"<div>{esc(text(item))}</div>" for item in items]
    return "".join(parts)


class TodayPanel(widgets.VBox):
    """Counts and short lists of today's work with a next-action button per row.

    ``today`` / ``now`` are injectable for tests; ``refresh_seconds`` defaults to the
    setting and 0 switches the self-refresh off."""

    today = traitlets.Instance(dt.date, allow_none=True)
    summary = traitlets.Dict()

    def __init__(
        self,
        today: dt.date | None = None,
        limit: int = 10,
        now: dt.datetime | None = None,
        actor: str | None = None,
        refresh_seconds: int | None = None,
        **kwargs,
    ):
        self.limit = limit
        self.now = now
        self.actor = actor if actor is not None else staff_name()
        self.refresh_seconds = (
            settings.get().CONSOLE_REFRESH_SECONDS if refresh_seconds is None else refresh_seconds
        )
        self.stamp = widgets.HTML()
        self.lists = widgets.VBox()
        self.lists.add_class("psymatch-today-lists")
        self.action_title = widgets.HTML()
        self.action_area = widgets.VBox()
        self.action_area.add_class("psymatch-today-action")
        self.close_button = widgets.Button(description="Schließen", icon="times")
        self.close_button.on_click(lambda _: self.close_action())
        self.close_button.layout.display = "none"
        self.confirmation = Confirmation()
        self.status = StatusLine()
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.buttons: dict[tuple[str, object], widgets.Button] = {}
        self.focus: tuple[str, object] | None = None
        self._timer = None
        super().__init__(
            [
                widgets.HTML("<h3>Heute</h3>"),
                widgets.HBox([self.refresh_button, self.stamp]),
                self.confirmation,
                self.status,
                widgets.HBox([self.action_title, self.close_button]),
                self.action_area,
                self.lists,
            ],
            **kwargs,
        )
        self.add_class("psymatch-today")
        self.today = today
        self.observe(lambda _: self.refresh(), names="today")
        self.refresh()
        self._schedule()

    # --- the lists ----------------------------------------------------------------------------

    def text(self) -> str:
        """What the lists say, as one HTML text."""
        return render(self.summary)

    def counts(self) -> dict[str, int]:
        return {key: len(items) for key, items in self.summary.items()}

    def refresh(self) -> None:
        """Reload the lists; the action area (and what is typed there) stays."""
        self.refresh_button.disabled = True
        try:
            self.summary = queries.today_summary(self.today, self.limit, self.now)
            self.buttons = {}
            self.lists.children = [self._section(s) for s in SECTION_TITLES]
            at = self.now or utcnow()
            self.stamp.value = f"<small>Stand {fmt.time_de(at)} Uhr</small>"
        finally:
            self.refresh_button.disabled = False

    def _section(self, section: str) -> widgets.VBox:
        items = self.summary.get(section, [])
        text, label, key = ROWS[section]
        rows = [widgets.HTML(f"<h4>{esc(SECTION_TITLES[section])}: {len(items)}</h4>")]
        for item in items:
            record = _review_key(item) if section == "reviews" else item[key]
            button = widgets.Button(description=label, layout=widgets.Layout(width="auto"))
            button.add_class(f"psymatch-today-{section}")
            button.on_click(lambda _, s=section, r=record: self.act(s, r))
            self.buttons[(section, record)] = button
            rows.append(widgets.HBox([button, widgets.HTML(esc(text(item)))]))
        if not items:
            rows.append(widgets.HTML("<i>nichts zu tun</i>"))
        return widgets.VBox(rows)

    # --- self-refresh ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Reload every ``refresh_seconds`` on the running event loop (the kernel's);
        without one (a script, a test) nothing is scheduled."""
        if not self.refresh_seconds:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                return
            if not loop.is_running():
                return
        self._timer = loop.call_later(self.refresh_seconds, self.tick)

    def tick(self) -> None:
        """One self-refresh: reload the lists, then plan the next one."""
        try:
            self.refresh()
        finally:
            self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- next actions ---------------------------------------------------------------------------

    def close_action(self) -> None:
        self.focus = None
        self.action_title.value = ""
        self.action_area.children = []
        self.close_button.layout.display = "none"

    def _open(self, title: str, panel: widgets.Widget) -> widgets.Widget:
        self.action_title.value = f"<h4>{esc(title)}</h4>"
        self.action_area.children = [panel]
        self.close_button.layout.display = ""
        return panel

    def act(self, section: str, record) -> widgets.Widget | None:
        """The row's next action, on exactly that record."""
        self.focus = (section, record)
        self.status.clear()
        return getattr(self, f"_act_{section}")(record)

    def _act_calls(self, call_id: int):
        from .calls import CallsPanel

        panel = CallsPanel(today=self.today, now=self.now, actor=self.actor)
        panel.select(call_id)  # its page shown; nothing selected when it is no longer due
        return self._open(f"Anruf {call_id}", panel)

    def _act_answers(self, anfrage_id: int):
        from .responses import PatientOutcomeForm

        form = PatientOutcomeForm()
        form.anfrage_id = anfrage_id
        for dropdown in form.dropdowns.values():
            dropdown.disabled = True  # recorded already: shown, not edited here
        return self._open(f"Antwort auf Anfrage {anfrage_id}", form)

    def _act_questions(self, inbound_id: int):
        """Staff answered the practice's question (by phone or email): mark it done."""
        result = run_action(
            self.status,
            (self.refresh_button,),
            lambda: close_open_question(inbound_id, self.actor, now=self.now),
            lambda _: "Frage als erledigt markiert",
        )
        if result is not None:
            self.refresh()
        return result

    def _act_reviews(self, key):
        from .responses import ReviewQueuePanel

        panel = ReviewQueuePanel(actor=self.actor)
        panel.pager.select(panel.item_select, key)  # its page shown; else nothing selected
        return self._open(f"Prüfen: {key[0]} {key[1]}", panel)

    def _act_conflicts(self, patient_id: int):
        from .conflicts import ConflictsPanel

        return self._open(f"Konflikt um Patient {patient_id}", ConflictsPanel(actor=self.actor))

    def _act_placements(self, search_id: int):
        from .placements import PlacementsPanel

        panel = PlacementsPanel(now=self.now, actor=self.actor)
        panel.pager.select(panel.search_select, search_id)  # its page shown; else none
        return self._open(f"Vermittlung der Suche {search_id}", panel)

    def _act_unsent(self, anfrage_id: int):
        row = next((u for u in self.summary["unsent"] if u["anfrage_id"] == anfrage_id), None)
        who = f" an {row['therapeut']} ({row['groesse']} Patient:innen)" if row else ""

        def send():
            result = run_action(
                self.status,
                (self.refresh_button,),
                lambda: request_send(anfrage_id, actor=self.actor, now=self.now),
                lambda r: f"Anfrage {anfrage_id} zum Versand eingeplant ({r['channel']})",
            )
            if result is not None:
                self.refresh()
            return result

        self.confirmation.ask(
            f"Anfrage {anfrage_id}{who} jetzt senden?", f"Ja, Anfrage {anfrage_id} senden", send
        )
        return self.confirmation

    def _act_waiting(self, search_id: int):
        from .bundles import BundlesPanel

        row = next((w for w in self.summary["waiting"] if w["search_id"] == search_id), None)
        panel = BundlesPanel(now=self.now, actor=self.actor)
        if row and row["plz"]:
            panel.plz_prefix.value = row["plz"][: settings.get().PLZ_MATCH_DIGITS]
            panel.list_therapists()
        return self._open(f"Bündel für Suche {search_id} zusammenstellen", panel)
