"""How well replies are understood: counts over a set of replies (pure; issue 17).

``evaluate(cases)`` takes ``Case`` rows (a reply's ``Decision`` from
``reply_parse.understand`` and, when known, the expected reading) and returns the JSON
that ``psymatch replies stats`` prints:

``files``, ``decided`` (recorded automatically), ``review`` (sent to staff),
``auto_replies`` (out-of-office, bounces: nothing to record), ``share_decided``
(decided / (decided + review)) and ``review_reasons`` (kind of reason -> count).
With expectations (``expected``: ``{patient id: outcome}``, ``"review"`` or ``"auto"``):
``clear`` (replies a person reads as clear: an outcome per patient), ``clear_correct``
(decided automatically with exactly those outcomes), ``share_clear_correct``, ``hedges``
(expected review) and ``hedges_to_review``, ``wrong_acceptances`` (patients recorded
``angenommen`` whom the therapist did not accept), ``wrong_decisions`` (replies decided
with another outcome than expected) and ``misses`` (their names).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from psymatch.domain.reply_parse import ANGENOMMEN, Decision


@dataclass(frozen=True)
class Case:
    name: str
    decision: Decision
    expected: dict | str | None = None  # {patient id (str): outcome} | "review" | "auto"


def reason_kind(reason: str) -> str:
    """A review reason without its particulars: "hedged", "no answer for patient(s)" ..."""
    text = reason or ""
    if "form says" in text:
        return "answer form and text disagree"
    if re.match(r"patient \d+: acceptance and refusal", text):
        return "acceptance and refusal for one patient"
    first = re.split(r"[:;]", text, maxsplit=1)[0]
    first = re.sub(r"\d+", "N", first)
    first = re.sub(r"'[^']*'", "'…'", first)
    return first.strip() or "(none)"


def _reading(decision: Decision) -> str | dict:
    if decision.review:
        return "review"
    if not decision.decisions:
        return "auto"
    return {str(k): v for k, v in decision.decisions.items()}


def evaluate(cases: list[Case]) -> dict:
    reasons: Counter = Counter()
    decided = review = auto = 0
    clear = clear_correct = hedges = hedges_review = wrong_accept = 0
    expected_auto = auto_correct = wrong_decisions = 0
    misses: list[str] = []
    with_expected = 0
    for case in cases:
        got = _reading(case.decision)
        if got == "review":
            review += 1
            reasons[reason_kind(case.decision.reason)] += 1
        elif got == "auto":
            auto += 1
        else:
            decided += 1
        want = case.expected
        if want is None:
            continue
        with_expected += 1
        if isinstance(got, dict):
            accepted_ok = want if isinstance(want, dict) else {}
            wrong_accept += sum(
                1
                for pid, v in got.items()
                if v == ANGENOMMEN and accepted_ok.get(pid) != ANGENOMMEN
            )
        if isinstance(want, dict):
            clear += 1
            if got == want:
                clear_correct += 1
            else:
                misses.append(case.name)
                wrong_decisions += isinstance(got, dict)
        elif want == "review":
            hedges += 1
            if got == "review":
                hedges_review += 1
            else:
                misses.append(case.name)
                wrong_decisions += isinstance(got, dict)
        elif want == "auto":
            expected_auto += 1
            if got == "auto":
                auto_correct += 1
            else:
                misses.append(case.name)
    out = {
        "files": len(cases),
        "decided": decided,
        "review": review,
        "auto_replies": auto,
        "share_decided": round(decided / (decided + review), 4) if decided + review else 0.0,
        "review_reasons": dict(reasons.most_common()),
    }
    if with_expected:
        out.update(
            {
                "with_expected": with_expected,
                "clear": clear,
                "clear_correct": clear_correct,
                "share_clear_correct": round(clear_correct / clear, 4) if clear else 0.0,
                "hedges": hedges,
                "hedges_to_review": hedges_review,
                "auto_expected": expected_auto,
                "auto_correct": auto_correct,
                "wrong_acceptances": wrong_accept,
                "wrong_decisions": wrong_decisions,
                "misses": misses,
            }
        )
    return out
