"""The reply corpus (tests/domain/fixtures/replies): how well ``understand`` reads real replies.

``expected.json`` maps a file name to the patients of the Anfrage (bundle order) and
the expected reading: ``{"patient id": outcome}``, ``"review"`` or ``"auto"``.
Accuracy is per patient: a review where a decision was expected is wrong but safe, a
decision where review was expected is wrong. Wrong acceptances (angenommen where the
therapist did not accept that patient) must never happen.
"""

from __future__ import annotations

import json
from pathlib import Path

from psymatch.domain.reply_parse import (
    ANGENOMMEN,
    message_from_bytes,
    message_from_parts,
    understand,
)

CORPUS = Path(__file__).parent / "fixtures" / "replies"


def _message(path: Path):
    if path.suffix == ".eml":
        return message_from_bytes(path.read_bytes())
    return message_from_parts(
        subject="AW: Suche Psychotherapieplätze",
        sender="praxis@example.de",
        recipients=["antwort@example.org"],
        text=path.read_text(encoding="utf-8"),
    )


def run_corpus():
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    total = correct = wrong_accept = 0
    failures = []
    for name, case in expected.items():
        ids = case["patients"]
        want = case["expected"]
        decision = understand(_message(CORPUS / name), ids)
        auto = not decision.review and not decision.decisions
        got = {str(k): v for k, v in decision.decisions.items()}
        if want == "auto":
            total += 1
            ok = auto
            correct += ok
            wrong_accept += sum(outcome == ANGENOMMEN for outcome in got.values())
            if not ok:
                failures.append((name, want, decision))
            continue
        if want == "review":
            total += len(ids)
            ok = decision.review
            correct += len(ids) if ok else 0
            if not ok:
                wrong_accept += sum(v == ANGENOMMEN for v in got.values())
                failures.append((name, want, decision))
            continue
        total += len(ids)
        case_ok = True
        for pid in map(str, ids):
            value = None if decision.review else got.get(pid)
            if value == want[pid]:
                correct += 1
            else:
                case_ok = False
                if value == ANGENOMMEN:
                    wrong_accept += 1
        if not case_ok:
            failures.append((name, want, decision))
    return len(expected), total, correct, wrong_accept, failures


def test_reply_corpus_accuracy():
    files, total, correct, wrong_accept, failures = run_corpus()
    accuracy = correct / total
    print(f"\nreply corpus: {files} replies, {total} patient decisions")
    print(f"per-patient accuracy: {correct}/{total} = {accuracy:.3f}")
    print(f"wrong acceptances: {wrong_accept}")
    for name, want, decision in failures:
        print(f"  MISS {name}: expected {want}, got {decision}")
    assert files >= 90
    assert wrong_accept == 0
    assert accuracy >= 0.95


def test_every_fixture_is_listed():
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix in (".txt", ".eml")}
    assert on_disk == set(expected)
