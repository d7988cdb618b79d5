"""The reply corpus (tests/domain/fixtures/replies): how well ``understand`` reads real replies.

``expected.json`` maps a file name to the patients of the Anfrage (bundle order) and the
expected reading: ``{"patient id": outcome}`` (a reply a person reads as clear),
``"review"`` (a hedge: staff must decide) or ``"auto"`` (out-of-office, bounce). Newer
entries name their ``category`` (conditional offers, compact lists, logistics, ...), an
out-of-office its ``return_date`` and a bounce whether it is ``bounce_permanent``.
Acceptance of issue 17: at least 95 % of the clear replies decided automatically and
correctly, no wrong acceptance, every hedge to review. The same counts are what
``psymatch replies stats`` prints (``psymatch.domain.reply_stats``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cli.replies import load_cases, read_reply
from psymatch.domain import auto_replies, reply_stats

CORPUS = Path(__file__).parent / "fixtures" / "replies"


def _expected() -> dict:
    return json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def _message(path: Path):
    return read_reply(path)


def test_reply_corpus_meets_the_acceptance_of_issue_17():
    files = sorted(str(CORPUS / name) for name in _expected())
    stats = reply_stats.evaluate(load_cases(files))
    print("\n" + json.dumps(stats, ensure_ascii=False, indent=1))
    assert stats["files"] >= 250
    assert stats["wrong_acceptances"] == 0
    assert stats["share_clear_correct"] >= 0.95
    assert stats["hedges_to_review"] == stats["hedges"] > 0
    assert stats["auto_correct"] == stats["auto_expected"]


def test_corpus_covers_every_kind_the_issue_lists():
    categories = {case.get("category") for case in _expected().values()}
    wanted = {
        "conditional", "compact", "ordinal", "logistics", "partial", "implicit", "reason",
        "hedge", "html", "form", "form_conflict", "out_of_office", "bounce",
    }  # fmt: skip
    assert wanted <= categories


def test_out_of_office_return_dates_and_bounces_of_the_corpus():
    written = dt.date(2026, 12, 14)  # the Date header of the corpus' automatic replies
    for name, case in _expected().items():
        message = _message(CORPUS / name)
        if case.get("category") == "out_of_office":
            absence = auto_replies.absence_of(message, written)
            assert absence is not None, name
            day = absence.return_date.isoformat() if absence.return_date else None
            assert day == case["return_date"], name
            assert auto_replies.bounce_of(message) is None, name
        if case.get("category") == "bounce":
            bounce = auto_replies.bounce_of(message)
            assert bounce is not None and bounce.permanent is case["bounce_permanent"], name


def test_every_fixture_is_listed():
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix in (".txt", ".eml")}
    assert on_disk == set(_expected())
