"""``psymatch bench webhooks`` at a small size: figures present, nothing lost, rows removed."""

from __future__ import annotations

from db.models import InboundMessage, OutboxItem, WebhookReplayMarker
from tools import bench_webhooks


def test_bench_webhooks_small(clean_db):
    lines = []
    figures = bench_webhooks.run(50, report=lines.append)
    for name in ("requests", "rps", "p50_ms", "p99_ms", "bare_rps", "stored", "lost", "duplicates"):
        assert name in figures
    assert figures["requests"] == 50 and figures["sent"] == 100
    assert (figures["stored"], figures["lost"], figures["duplicates"]) == (50, 0, 0)
    assert (figures["accepted_202"], figures["duplicate_200"]) == (50, 50)
    assert figures["errors"] == {}
    assert figures["rps"] > 0 and figures["bare_rps"] > 0
    assert lines
    assert InboundMessage.select().count() == 0  # cleaned up
    assert WebhookReplayMarker.select().count() == 0  # replay markers included
    assert OutboxItem.select().count() == 0
