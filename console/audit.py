"""The audit-log panel: who did what to which record, newest first, filtered by person or record.

Reading only (role ``lesen`` suffices). The latest ``LIMIT`` matching rows are read and
shown in pages (``console.paging``: filter box, page size, the filters and "Anzeigen" at
the top); times in local time, actions and record kinds as German words (``console.fmt``);
the reason column is decrypted like every sealed field.
"""

from __future__ import annotations

import ipywidgets as widgets

from db.models import AuditLog

from . import fmt
from .common import StatusLine, run_action
from .paging import PagedTable

LIMIT = 1000
HEADERS = ["Zeit", "Wer", "Aktion", "Objekt", "ID", "Grund"]


def entries(actor: str = "", entity: str = "", limit: int = LIMIT) -> list[AuditLog]:
    """The latest audit rows, optionally of one actor and/or one kind of record."""
    query = AuditLog.select().order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)
    if actor.strip():
        query = query.where(AuditLog.actor == actor.strip())
    if entity.strip():
        query = query.where(AuditLog.entity == entity.strip())
    return list(query)


def row(entry: AuditLog) -> list[str]:
    """One audit row as staff read it."""
    return [
        fmt.datetime_de(entry.at),
        entry.actor,
        fmt.label(entry.action, "AUDIT_ACTION"),
        fmt.label(entry.entity, "AUDIT_ENTITY"),
        entry.entity_id or "",
        entry.reason or "",
    ]


class AuditPanel(widgets.VBox):
    """Filters (Mitarbeiter/in, Objekt) and the latest matching audit rows, paged."""

    def __init__(self, page_size: int = 25, **kwargs):
        self.actor = widgets.Text(
            description="Mitarbeiter/in", placeholder="alle", style={"description_width": "initial"}
        )
        self.entity = widgets.Dropdown(
            description="Objekt",
            options=[("alle", ""), *sorted(fmt.options("AUDIT_ENTITY"))],
            value="",
        )
        self.show_button = widgets.Button(description="Anzeigen", icon="search")
        self.status = StatusLine()
        self.pager = PagedTable(
            HEADERS,
            actions=[self.actor, self.entity, self.show_button],
            page_size=page_size,
            filter_placeholder="in den angezeigten Einträgen suchen",
            css="psymatch-table psymatch-audit-table",
        )
        self.output = self.pager.output
        self.show_button.on_click(lambda _: self.show())
        super().__init__(
            [widgets.HTML("<h3>Protokoll (Audit-Log)</h3>"), self.status, self.pager], **kwargs
        )
        self.add_class("psymatch-audit")
        self.show()

    def show(self):
        rows = run_action(
            self.status,
            (self.show_button,),
            lambda: entries(self.actor.value, self.entity.value),
            lambda found: (
                f"{fmt.number_de(len(found))} {'Eintrag' if len(found) == 1 else 'Einträge'}"
                + (f" (die neuesten {fmt.number_de(LIMIT)})" if len(found) >= LIMIT else "")
            ),
            needs="lesen",
        )
        if rows is None:
            return None
        self.pager.set_rows([row(r) for r in rows], keys=[r.id for r in rows])
        return rows
