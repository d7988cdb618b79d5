"""The soak run's synthetic replies mean what the soak counts them as."""

from __future__ import annotations

import random

from psymatch.domain.reply_parse import decide, identify_anfrage, message_from_bytes
from tools import soak

PATIENTS = [101, 202, 303, 404]


def test_form_replies_are_decided_and_free_text_goes_to_review():
    rng = random.Random(3)
    kinds = set()
    for _ in range(60):
        raw, kind = soak.reply_message(77, PATIENTS, rng)
        message = message_from_bytes(raw)
        assert identify_anfrage(message) == 77
        decision = decide(message.text, PATIENTS)
        kinds.add(kind)
        if kind == "review":
            assert decision.review
            continue
        assert not decision.review, decision.reason
        assert set(decision.decisions) == set(PATIENTS)
        accepted = [p for p, d in decision.decisions.items() if d == "angenommen"]
        assert len(accepted) <= 1
        assert all(d in ("angenommen", "abgelehnt_Kapazitaet") for d in decision.decisions.values())
    assert kinds == {"form", "review"}
