"""The Cooling panel: who is cooling until when (a timeline) and the override (docs/domain.md §5).

The override goes through ``operations.cooling.override_cooling``; an empty
reason is refused with ``REASON_REQUIRED`` and changes nothing.

The list is paged and filterable (``console.paging``; thousands cool at once at Germany
scale) with the override form above it; the timeline below draws the soonest.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")  # headless: the plot is rendered to a PNG buffer
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import traitlets  # noqa: E402

from db.models import utcnow  # noqa: E402
from operations.cooling import override_cooling  # noqa: E402
from operations.errors import OperationError  # noqa: E402

from . import queries  # noqa: E402
from .common import StatusLine, frozen, png, run_action, staff_name  # noqa: E402
from .inputs import bounded_text, date_within  # noqa: E402
from .paging import PagedTable  # noqa: E402

PLOT_ROWS = 40  # bars in the timeline: the soonest contactable again
HEADERS = ["Therapeut-ID", "Therapeut", "PLZ", "kontaktierbar ab", "Tage"]


def timeline_png(rows: list[dict], today: dt.date) -> bytes:
    """Horizontal bars from today to the date each therapist is contactable again."""
    height = max(2.0, 0.4 * len(rows) + 1.2)
    fig, ax = plt.subplots(figsize=(8, height))
    try:
        if rows:
            labels = [f"{r['therapist_id']} {r['therapeut']}" for r in rows]
            starts = [mdates.date2num(today)] * len(rows)
            widths = [r["tage"] for r in rows]
            ax.barh(labels, widths, left=starts, color="#5b8def")
            ax.invert_yaxis()  # soonest contactable at the top
            ax.xaxis_date()
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%d.%m."))
        else:
            ax.text(0.5, 0.5, "niemand in der Abkühlphase", ha="center", va="center")
            ax.set_yticks([])
            ax.set_xticks([])
        ax.set_title(f"Wieder kontaktierbar ab (Stand {today:%d.%m.%Y})")
        return png(fig)
    finally:
        plt.close(fig)


class CoolingPanel(widgets.VBox):
    """Timeline of therapists in their cooling period and the override form."""

    rows = traitlets.List()

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
        self.status = StatusLine()
        self.refresh_button = widgets.Button(description="Aktualisieren", icon="refresh")
        self.plot = widgets.Image(format="png")
        self.therapist_id = widgets.IntText(description="Therapeut-ID")
        self.new_date = widgets.Text(description="Neues Datum", placeholder="TT.MM.JJJJ")
        self.immediately = widgets.Checkbox(description="sofort kontaktierbar", indent=False)
        self.reason = widgets.Text(description="Grund", placeholder="Pflichtfeld")
        self.override_button = widgets.Button(
            description="Überschreiben", icon="edit", button_style="warning"
        )
        self.refresh_button.on_click(lambda _: self.refresh())
        self.override_button.on_click(lambda _: self.override())
        self.pager = PagedTable(
            HEADERS,
            actions=[
                widgets.VBox(
                    [
                        self.refresh_button,
                        widgets.HTML(
                            "<h4>Abkühlung überschreiben</h4><small>Neues Datum (TT.MM.JJJJ) "
                            "oder „sofort kontaktierbar“; ein Grund ist Pflicht.</small>"
                        ),
                        widgets.HBox([self.therapist_id, self.new_date, self.immediately]),
                        widgets.HBox([self.reason, self.override_button]),
                        self.status,
                    ]
                )
            ],
            page_size=page_size,
            filter_placeholder="Therapeut, ID, PLZ …",
        )
        self.cooling_table = self.pager.output  # the page shown
        super().__init__(
            [
                widgets.HTML("<h3>Abkühlphasen</h3>"),
                self.pager,
                widgets.HTML(
                    f"<small>Zeitleiste: die {PLOT_ROWS} zuerst wieder kontaktierbaren</small>"
                ),
                self.plot,
            ],
            **kwargs,
        )
        self.add_class("psymatch-cooling")
        self.refresh()

    def _day(self) -> dt.date:
        if self.today:
            return self.today
        return (self.now or utcnow()).date()

    def refresh(self) -> None:
        day = self._day()
        with frozen(self.refresh_button, self.override_button):
            self.rows = queries.cooling_therapists(day)
            # at Germany scale thousands cool at once: the soonest are drawn, all are paged
            self.plot.value = timeline_png(self.rows[:PLOT_ROWS], day)
        self.pager.set_rows(
            [
                [r["therapist_id"], r["therapeut"], r["plz"], r["naechster_kontakt"], r["tage"]]
                for r in self.rows
            ],
            keys=[r["therapist_id"] for r in self.rows],
        )

    def override(self):
        """Apply the typed date (or "sofort" when ticked); an unreadable, past or missing
        date is refused with a German message and nothing is written."""
        therapist_id = self.therapist_id.value
        typed, immediately = self.new_date.value.strip(), self.immediately.value
        shown: list[str] = []

        def action():
            if immediately and typed:
                raise OperationError(
                    "INVALID_DATE", "Entweder ein Datum oder „sofort kontaktierbar“, nicht beides"
                )
            if not immediately and not typed:
                raise OperationError(
                    "INVALID_DATE", "Bitte ein Datum (TT.MM.JJJJ) oder „sofort kontaktierbar“"
                )
            new_date = None if immediately else date_within(typed, self._day(), field="Datum")
            reason = bounded_text(self.reason.value, field="Grund")
            shown.append(f"{new_date:%d.%m.%Y}" if new_date else "sofort")
            return override_cooling(therapist_id, new_date, reason, actor=self.actor, now=self.now)

        result = run_action(
            self.status,
            (self.override_button, self.refresh_button),
            action,
            lambda t: f"Therapeut {t.id}: kontaktierbar ab {shown[0]}",
        )
        if result is not None:
            self.reason.value = ""
            self.new_date.value = ""
            self.immediately.value = False
            self.refresh()
        return result
