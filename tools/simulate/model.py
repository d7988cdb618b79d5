"""The behaviour model of ``psymatch simulate``: who does what, with which probability.

Pure: no database, no clock. Every draw comes from a ``random.Random`` stream named
after the seed and the entity it is about (``Streams``), so the same seed gives the
same draws whatever order the simulation asks in, and a change in one part of the
model does not shift the random numbers of another.

The defaults are the table of issue 16; each is a CLI option (``options`` lists
them) and the report states the values a run used. Three numbers the issue leaves
open are marked *assumed* (``ASSUMED``): how free-text replies are phrased, and when a
placed patient has the initial session.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass

from psymatch.domain import vocab


@dataclass(frozen=True)
class Model:
    # practice
    free_places: tuple[float, float, float] = (0.6, 0.3, 0.1)  # share with 0 / 1 / 2 free
    new_place_per_week: float = 0.08
    # therapist
    responsiveness_alpha: float = 2.0  # r ~ Beta(alpha, beta)
    responsiveness_beta: float = 2.0
    answer_days_max: int = 7  # answers on a day uniform in 1..answer_days_max, with prob. r
    call_reached: float = 0.7
    favoured_symptoms: int = 2
    favoured_recorded: float = 0.3  # share whose favoured symptoms are in bevorzugte_symptome
    accept_favoured: float = 0.6
    accept_other: float = 0.25
    distance_scale_km: float = 50.0  # acceptance times (1 - km / scale)
    link_share: float = 0.4  # one-click links; the rest write free text
    # patient
    arrivals_per_week: float | None = None  # None: 5 % of the therapists
    give_up_per_week: float = 0.01
    attends: float = 0.9
    not_fitting: float = 0.15
    reports_by_link: float = 0.7
    # staff (manual policy)
    staff_bundles_per_day: int = 40
    # assumed (not in the table)
    text_form_share: float = 0.4  # free-text replies that fill in the answer form
    text_vague_share: float = 0.15  # free-text replies phrased so that no parser can be sure
    session_days_min: int = 7  # placement email -> initial session, uniform in min..max days
    session_days_max: int = 21

    def arrivals(self, therapists: int) -> float:
        if self.arrivals_per_week is not None:
            return self.arrivals_per_week
        return 0.05 * therapists

    def validate(self) -> None:
        """``ValueError`` naming the first value outside its range."""
        for name in (
            "new_place_per_week", "call_reached", "favoured_recorded", "accept_favoured",
            "accept_other", "link_share", "give_up_per_week", "attends", "not_fitting",
            "reports_by_link", "text_form_share", "text_vague_share",
        ):  # fmt: skip
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if len(self.free_places) != 3 or abs(sum(self.free_places) - 1) > 1e-6:
            raise ValueError("free_places must be three shares (0 / 1 / 2 places) summing to 1")
        if min(self.free_places) < 0:
            raise ValueError("free_places shares must not be negative")
        if self.responsiveness_alpha <= 0 or self.responsiveness_beta <= 0:
            raise ValueError("responsiveness Beta parameters must be positive")
        if self.answer_days_max < 1:
            raise ValueError("answer_days_max must be at least 1")
        if not 0 <= self.favoured_symptoms <= len(vocab.SYMPTOME):
            raise ValueError("favoured_symptoms out of range")
        if self.distance_scale_km <= 0:
            raise ValueError("distance_scale_km must be positive")
        if self.arrivals_per_week is not None and self.arrivals_per_week < 0:
            raise ValueError("arrivals_per_week must not be negative")
        if self.staff_bundles_per_day < 0:
            raise ValueError("staff_bundles_per_day must not be negative")
        if self.text_form_share + self.text_vague_share > 1:
            raise ValueError("text_form_share + text_vague_share must not exceed 1")
        if not 0 <= self.session_days_min <= self.session_days_max:
            raise ValueError("need 0 <= session_days_min <= session_days_max")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


ASSUMED = ("text_form_share", "text_vague_share", "session_days_min", "session_days_max")


@dataclass
class Therapist:
    """What the model knows about one therapist (psymatch knows only what is recorded)."""

    id: int
    responsiveness: float
    favoured: tuple[str, ...]
    recorded: bool  # favoured symptoms written to bevorzugte_symptome
    places: int


@dataclass(frozen=True)
class Offered:
    """One patient of a bundle as the therapist reads it."""

    patient_id: int
    symptoms: tuple[str, ...]
    km: float | None


class Streams:
    """Named random streams of one seed: ``streams("therapist", 7)`` always starts the same.

    Each call gives a fresh stream; the simulation asks once per name (one therapist, one
    Anfrage, one search), so nothing is kept between calls."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, *name) -> random.Random:
        return random.Random(":".join((str(self.seed), *(str(part) for part in name))))


class Behaviour:
    """The draws of the model; every method takes what it needs and returns a decision."""

    def __init__(self, model: Model, seed: int):
        model.validate()
        self.model = model
        self.streams = Streams(seed)

    # --- therapists -------------------------------------------------------------------

    def therapist(self, therapist_id: int) -> Therapist:
        rng = self.streams("therapist", therapist_id)
        m = self.model
        r = rng.betavariate(m.responsiveness_alpha, m.responsiveness_beta)
        favoured = tuple(sorted(rng.sample(vocab.SYMPTOME, m.favoured_symptoms)))
        recorded = rng.random() < m.favoured_recorded
        draw, places = rng.random(), 0
        if draw >= m.free_places[0]:
            places = 1 if draw < m.free_places[0] + m.free_places[1] else 2
        return Therapist(therapist_id, r, favoured, recorded, places)

    def new_place(self, therapist_id: int, week: int) -> bool:
        return self.streams("place", therapist_id, week).random() < self.model.new_place_per_week

    def email_answer(self, therapist: Therapist, anfrage_id: int, kind: str) -> int | None:
        """Days after an inquiry (``kind`` anfrage) or reminder until the therapist answers
        by email or link; None: no answer by email."""
        rng = self.streams("answer", anfrage_id, kind)
        if rng.random() >= therapist.responsiveness:
            return None
        return rng.randint(1, self.model.answer_days_max)

    def answer_minute(self, anfrage_id: int, kind: str) -> int:
        """Minute of the (local) day the answer arrives: 08:00-19:59."""
        return self.streams("answer-time", anfrage_id, kind).randint(8 * 60, 20 * 60 - 1)

    def channel(self, anfrage_id: int) -> str:
        """``link`` or ``text``, per inquiry."""
        rng = self.streams("channel", anfrage_id)
        return "link" if rng.random() < self.model.link_share else "text"

    def text_style(self, anfrage_id: int) -> str:
        """How a free-text reply is written: ``form``, ``prose`` or ``vague``."""
        draw = self.streams("style", anfrage_id).random()
        if draw < self.model.text_form_share:
            return "form"
        if draw < self.model.text_form_share + self.model.text_vague_share:
            return "vague"
        return "prose"

    def reached(self, call_id: int) -> bool:
        return self.streams("call", call_id).random() < self.model.call_reached

    def acceptance(self, therapist: Therapist, patient: Offered) -> float:
        m = self.model
        base = (
            m.accept_favoured if set(patient.symptoms) & set(therapist.favoured) else m.accept_other
        )
        km = patient.km or 0.0
        return max(0.0, base * (1 - km / m.distance_scale_km))

    def decide(self, therapist: Therapist, anfrage_id: int, offered: list[Offered]) -> dict:
        """The therapist's answer per patient: accepts up to ``places`` of the bundle, each
        with ``acceptance``; no free place declines for capacity, a patient not taken while
        places are free is declined as not suitable. Does not change ``places``."""
        rng = self.streams("decide", anfrage_id)
        left, answers = therapist.places, {}
        for patient in offered:
            draw = rng.random()
            if left <= 0:
                answers[patient.patient_id] = vocab.ABGELEHNT_KAPAZITAET
            elif draw < self.acceptance(therapist, patient):
                answers[patient.patient_id] = vocab.ANGENOMMEN
                left -= 1
            else:
                answers[patient.patient_id] = vocab.ABGELEHNT_NICHT_GEEIGNET
        return answers

    # --- patients ---------------------------------------------------------------------

    def arrivals_today(self, therapists: int, day: int) -> int:
        """New searches on one day: Poisson with a seventh of the weekly rate."""
        rate = self.model.arrivals(therapists) / 7
        return _poisson(self.streams("arrivals", day), rate)

    def gives_up_after(self, search_id: int) -> int | None:
        """Days from the start of a search until the patient gives up (None: never): the
        weekly chance spread evenly over the days, drawn once per search."""
        weekly = self.model.give_up_per_week
        if weekly <= 0:
            return None
        if weekly >= 1:
            return 1
        daily = 1 - (1 - weekly) ** (1 / 7)
        draw = self.streams("give-up", search_id).random()
        # geometric: the first day whose chance comes up
        return 1 + int(math.log(1 - draw) / math.log(1 - daily))

    def session(self, search_id: int, therapist_id: int) -> tuple[int, str, bool]:
        """(days after the placement email, outcome, reports by link) of a placement."""
        rng = self.streams("session", search_id, therapist_id)
        m = self.model
        days = rng.randint(m.session_days_min, m.session_days_max)
        if rng.random() >= m.attends:
            outcome = vocab.KEIN_TERMIN
        elif rng.random() < m.not_fitting:
            outcome = vocab.PASST_NICHT
        else:
            outcome = vocab.STATTGEFUNDEN
        return days, outcome, rng.random() < m.reports_by_link


def _poisson(rng: random.Random, rate: float) -> int:
    """Knuth's method (rates here are small); sums chunks of 30 for larger rates."""
    count = 0
    while rate > 30:
        count += _poisson(rng, 30)
        rate -= 30
    limit, k, p = math.exp(-rate), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return count + k
        k += 1
