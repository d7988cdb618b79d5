"""The audit-log panel: who did what to which record, newest first, filtered by person or record.

Reading only (role ``lesen`` suffices). Times are shown in the local time zone
(``TIMEZONE``); the reason column is decrypted like every sealed field.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import ipywidgets as widgets

from db.models import AuditLog
from psymatch import settings

from .common import StatusLine, run_action, table

LIMIT = 200


def entries(actor: str = "", entity: str = "", limit: int = LIMIT) -> list[AuditLog]:
    """The latest audit rows, optionally of one actor and/or one kind of record."""
    query = AuditLog.select().order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)
    if actor.strip():
        query = query.where(AuditLog.actor == actor.strip())
    if entity.strip():
        query = query.where(AuditLog.entity == entity.strip())
    return list(query)


def _local(at: dt.datetime) -> str:
    zone = ZoneInfo(settings.get().TIMEZONE)
    return at.replace(tzinfo=dt.UTC).astimezone(zone).strftime("%d.%m.%Y %H:%M")


class AuditPanel(widgets.VBox):
    """Filters (Mitarbeiter/in, Objekt) and the latest 200 matching audit rows."""

    def __init__(self, **kwargs):
        self.actor = widgets.Text(description="Mitarbeiter/in", placeholder="alle")
        self.entity = widgets.Text(description="Objekt", placeholder="z. B. platzsuche")
        self.show_button = widgets.Button(description="Anzeigen", icon="search")
        self.output = widgets.HTML()
        self.status = StatusLine()
        self.show_button.on_click(lambda _: self.show())
        super().__init__(
            [
                widgets.HTML("<h3>Protokoll (Audit-Log)</h3>"),
                widgets.HBox([self.actor, self.entity, self.show_button]),
                self.status,
                self.output,
            ],
            **kwargs,
        )
        self.add_class("psymatch-audit")
        self.show()

    def show(self):
        rows = run_action(
            self.status,
            (self.show_button,),
            lambda: entries(self.actor.value, self.entity.value),
            lambda found: f"{len(found)} Einträge",
            needs="lesen",
        )
        if rows is None:
            return None
        self.output.value = table(
            ["Zeit", "Wer", "Aktion", "Objekt", "ID", "Grund"],
            [
                [_local(r.at), r.actor, r.action, r.entity, r.entity_id or "", r.reason or ""]
                for r in rows
            ],
            css="psymatch-table psymatch-audit-table",
        )
        return rows
