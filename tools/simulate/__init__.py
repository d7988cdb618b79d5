"""``psymatch simulate``: psymatch's real operations for months on a simulated clock.

``engine`` runs the days, ``model`` is the behaviour model (therapists, patients,
staff), ``texts`` writes the therapists' German replies, ``invariants`` checks the
rules every run must keep, ``figures`` computes the outcome, ``report`` writes the HTML
page with plots and ``widget`` is the notebook's front end (notebooks/WhatIf.ipynb).
"""

from .engine import RULES, Simulation, SimulationError
from .model import Model

__all__ = ["RULES", "Model", "Simulation", "SimulationError"]
