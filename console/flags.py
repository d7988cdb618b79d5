"""The rollout-flags panel (docs/domain.md §6.3, §12): automatic rounds on/off and their share.

Saving goes through ``operations.flags.set_auto_rounds`` (flag and audit row in
one transaction). The panel insists on a staff name and a reason; without them, or with
an invalid share, it shows the error and writes nothing. Staff composition is never
affected by this flag. Times of the history in local time (``console.fmt``).
"""

from __future__ import annotations

import ipywidgets as widgets

from db.models import AuditLog
from operations import flags
from operations.errors import OperationError

from . import fmt
from .common import StatusLine, esc, run_action, signed_in_user, staff_name, table


def validate(staff: str, reason: str, percent) -> None:
    """The panel's own checks before the operation (which checks the values again)."""
    if not (staff or "").strip():
        raise OperationError("STAFF_REQUIRED", "Name der Mitarbeiterin / des Mitarbeiters fehlt")
    if len(staff.strip()) > 100:
        raise OperationError("STAFF_TOO_LONG", "der Name darf höchstens 100 Zeichen haben")
    if not (reason or "").strip():
        raise OperationError("REASON_REQUIRED", "eine Änderung der Runden braucht einen Grund")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise OperationError("INVALID_ROLLOUT", "der Anteil muss zwischen 0 und 100 % liegen")


def history(limit: int = 5) -> list[list]:
    """The latest changes of the flag (audit rows), newest first."""
    query = (
        AuditLog.select()
        .where((AuditLog.action == "set_flag") & (AuditLog.entity_id == flags.AUTO_ROUNDS))
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(limit)
    )
    return [
        [
            fmt.datetime_de(row.at),
            row.actor,
            "an" if (row.details or {}).get("enabled") else "aus",
            f"{(row.details or {}).get('rollout_percent')} %",
            row.reason or "",
        ]
        for row in query
    ]


class FlagsPanel(widgets.VBox):
    """Checkbox, share slider, staff name, mandatory reason and "Speichern"."""

    def __init__(self, **kwargs):
        self.enabled = widgets.Checkbox(description="Automatische Runden", indent=False)
        self.percent = widgets.IntSlider(
            description="Anteil (%)", min=0, max=100, step=5, continuous_update=False
        )
        self.staff = widgets.Text(description="Mitarbeiter", placeholder="Pflichtfeld")
        if signed_in_user():  # under JupyterHub one acts as oneself, never as someone else
            self.staff.value, self.staff.disabled = staff_name(), True
        self.reason = widgets.Text(description="Grund", placeholder="Pflichtfeld")
        self.save = widgets.Button(description="Speichern", icon="save", button_style="warning")
        self.current = widgets.HTML()
        self.status = StatusLine()
        self.save.on_click(lambda _: self.store())
        super().__init__(
            [
                widgets.HTML(
                    "<h3>Rollout: automatische Runden</h3><small>Der Anteil wählt einen festen "
                    "Teil der Platzsuchen für automatische Runden; die Zusammenstellung durch "
                    "das Personal ist davon nie betroffen.</small>"
                ),
                self.current,
                widgets.HBox([self.enabled, self.percent]),
                widgets.HBox([self.staff, self.reason, self.save]),
                self.status,
            ],
            **kwargs,
        )
        self.load()

    def load(self) -> flags.Flag:
        """Show the stored flag (or the settings' default) and its recent changes."""
        flag = flags.auto_rounds()
        self.enabled.value = flag.enabled
        self.percent.value = flag.rollout_percent
        state = "an" if flag.enabled else "aus"
        self.current.value = (
            f"<b>Aktuell:</b> automatische Runden {esc(state)}, Anteil "
            f"{flag.rollout_percent} %"
            + table(["Zeit", "Wer", "Runden", "Anteil", "Grund"], history())
        )
        return flag

    def store(self) -> flags.Flag | None:
        enabled, percent = bool(self.enabled.value), self.percent.value
        staff, reason = self.staff.value.strip(), self.reason.value.strip()

        def action():
            validate(staff, reason, percent)
            return flags.set_auto_rounds(enabled, percent, actor=staff, reason=reason)

        result = run_action(
            self.status,
            (self.save, self.enabled, self.percent),
            action,
            lambda f: (
                f"gespeichert: automatische Runden {'an' if f.enabled else 'aus'}, "
                f"Anteil {f.rollout_percent} %"
            ),
            needs="admin",
        )
        if result is not None:
            self.reason.value = ""
            status = self.status.value
            self.load()
            self.status.value = status
        return result
