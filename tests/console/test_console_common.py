"""The pieces every panel shares: overlapping freezes and one action at a time per panel."""

from __future__ import annotations

import threading

import ipywidgets as widgets

from console.common import StatusLine, frozen, run_action


def test_overlapping_freezes_restore_each_control_once(clean_db):
    """Two clicks handled side by side must not leave a button disabled for good."""
    button, locked = widgets.Button(), widgets.Button(disabled=True)
    first = frozen(button, locked)
    first.__enter__()
    with frozen(button):  # the second click's freeze starts while the first runs
        assert button.disabled
        first.__exit__(None, None, None)  # the first ends before the second
        assert button.disabled  # still frozen by the second
    assert button.disabled is False  # back to its state before the first freeze
    assert locked.disabled is True  # a control disabled before stays disabled


def test_a_second_action_of_a_panel_is_refused_while_the_first_runs(clean_db):
    status = StatusLine()
    started, release, results = threading.Event(), threading.Event(), []

    def slow():
        started.set()
        release.wait(5)
        return "first"

    worker = threading.Thread(
        target=lambda: results.append(run_action(status, (), slow, lambda r: f"done {r}"))
    )
    worker.start()
    started.wait(5)
    calls = []
    second = run_action(status, (), lambda: calls.append(1), lambda r: "second")
    assert second is None and calls == [] and "vorige Aktion läuft noch" in status.value
    release.set()
    worker.join(5)
    assert results == ["first"] and "done first" in status.value
    assert run_action(status, (), lambda: "again", lambda r: r) == "again"  # free again


def test_a_refused_second_click_does_not_hide_the_first_ones_outcome(clean_db):
    """A double-click: the first action has shown what it did and is still finishing (its
    button thawing, which the browser syncs) when the second click is refused."""
    status = StatusLine()
    button = widgets.Button()
    thawing, release, results = threading.Event(), threading.Event(), []

    def slow_thaw(change):
        if not change["new"]:  # enabled again: the first action is ending
            thawing.set()
            release.wait(5)

    button.observe(slow_thaw, "disabled")
    worker = threading.Thread(
        target=lambda: results.append(
            run_action(status, (button,), lambda: "first", lambda r: f"done {r}")
        )
    )
    worker.start()
    thawing.wait(5)
    assert run_action(status, (), lambda: "second", lambda r: r) is None  # refused
    assert "done first" in status.value and "vorige Aktion" not in status.value
    release.set()
    worker.join(5)
    assert results == ["first"] and "done first" in status.value
