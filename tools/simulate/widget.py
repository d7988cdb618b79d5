"""The front end of notebooks/WhatIf.ipynb: a small simulation from sliders.

``WhatIf()`` shows sliders for psymatch's rules (bundle size, cooling weeks, parallel
cap, follow-up mode) and the arrivals, a run button ("Simulation starten"), a progress
bar while the days run, then the key figures and the plots of the report
(``tools.simulate.report.figures``). The run uses its own scratch SQLite database and
throwaway keys (``engine``), never the console's database; the notebook's connection
is bound again afterwards.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")  # headless: figures are rendered to PNG bytes

from console.common import StatusLine, esc, png  # noqa: E402
from psymatch import settings  # noqa: E402

from . import report  # noqa: E402
from .engine import Simulation, SimulationError  # noqa: E402
from .model import Model  # noqa: E402

SHOWN = (
    ("placed", "Vermittelt"),
    ("placement_days_mean", "Vermittlungsdauer Mittel (Tage)"),
    ("placement_days_median", "Vermittlungsdauer Median (Tage)"),
    ("acceptance_rate", "Annahmerate"),
    ("response_rate_7d", "Antwortrate 7 Tage"),
    ("inquiries_per_placement", "Anfragen je Vermittlung"),
    ("staff_actions_per_placement", "Arbeitsschritte je Vermittlung"),
    ("conflicts", "Konflikte"),
    ("invariant_breaches", "Regelverstöße"),
    ("seconds", "Rechenzeit (s)"),
)


class WhatIf(widgets.VBox):
    def __init__(self, **kwargs):
        s = settings.get()
        style = {"description_width": "14rem"}
        wide = widgets.Layout(width="34rem")

        def slider(label, value, low, high):
            return widgets.IntSlider(
                value=value, min=low, max=high, description=label, style=style, layout=wide
            )

        self.bundle_size = slider("Bündelgröße (max.)", s.MAX_ANFRAGE_SIZE, 1, 10)
        self.cooling_weeks = slider("Abkühlung (Wochen)", s.COOLING_PERIOD_WEEKS, 0, 12)
        self.parallel_cap = slider("Parallele Anfragen (max.)", s.MAX_PARALLEL_ANFRAGEN, 1, 10)
        self.follow_up_mode = widgets.Dropdown(
            options=[
                ("Anruf", "call"),
                ("Erinnerungsmail", "reminder"),
                ("Erinnerung, dann Anruf", "reminder_then_call"),
            ],
            value=s.FOLLOW_UP_MODE,
            description="Nachverfolgung",
            style=style,
            layout=wide,
        )
        self.therapists = slider("Therapeut:innen", 400, 100, 3000)
        self.arrivals = slider("Neue Suchen je Woche", 20, 0, 300)
        self.weeks = slider("Wochen", 6, 1, 26)
        self.seed = widgets.IntText(value=1, description="Zufallsstartwert", style=style)
        self.policy = widgets.ToggleButtons(
            options=[("psymatch (automatisch)", "auto"), ("manuell", "manual")],
            value="auto",
            description="Ablauf",
            style=style,
        )
        self.run_button = widgets.Button(description="Simulation starten", button_style="primary")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="Tage")
        self.status = StatusLine()
        self.figures = widgets.HTML()
        self.plots = widgets.VBox()
        self.result = None
        self.run_button.on_click(lambda _button: self.run())
        super().__init__(
            [
                widgets.HTML(
                    "<b>Was wäre, wenn?</b> Die echten Abläufe von psymatch auf einem simulierten "
                    "Kalender, in einer eigenen Übungsdatenbank (docs/simulate.md)."
                ),
                self.bundle_size,
                self.cooling_weeks,
                self.parallel_cap,
                self.follow_up_mode,
                self.arrivals,
                self.therapists,
                self.weeks,
                self.seed,
                self.policy,
                self.run_button,
                self.progress,
                self.status,
                self.figures,
                self.plots,
            ],
            **kwargs,
        )

    def simulation(self) -> Simulation:
        return Simulation(
            therapists=self.therapists.value,
            weeks=self.weeks.value,
            seed=self.seed.value,
            policy=self.policy.value,
            model=Model(arrivals_per_week=float(self.arrivals.value)),
            rules={
                "bundle_size": self.bundle_size.value,
                "round_min_size": min(settings.get().ROUND_MIN_SIZE, self.bundle_size.value),
                "cooling_weeks": self.cooling_weeks.value,
                "parallel_cap": self.parallel_cap.value,
                "follow_up_mode": self.follow_up_mode.value,
            },
            progress=self._progress,
        )

    def _progress(self, day: int, total: int) -> None:
        self.progress.max = total
        self.progress.value = day

    def run(self) -> None:
        self.run_button.disabled = True
        self.status.value = "Simulation läuft …"
        self.progress.value = 0
        try:
            self.result = self.simulation().run()
        except SimulationError as error:
            self.status.error(str(error))
            return
        finally:
            self.run_button.disabled = False
        self.show(self.result)

    def show(self, result) -> None:
        figures = result.figures
        rows = "".join(
            f"<tr><th style='text-align:left;padding:0 8px'>{esc(label)}</th>"
            f"<td style='padding:0 8px'>{esc(figures.get(key))}</td></tr>"
            for key, label in SHOWN
        )
        self.figures.value = f"<table>{rows}</table>"
        images = []
        for fig in report.figures(result).values():
            images.append(widgets.Image(value=png(fig), format="png"))
        self.plots.children = images
        breaches = figures["invariant_breaches"]
        if breaches:
            self.status.error(f"{breaches} Regelverstöße: {result.breaches[0]}")
        else:
            self.status.ok(
                f"{figures['weeks']} Wochen simuliert in {figures['seconds']} s, "
                "keine Regelverstöße"
            )
