"""Progress is drawn for a person at a terminal only: counts, failures, elapsed and time
left when drawn; nothing at all when the output is not a terminal or under --quiet."""

from __future__ import annotations

import io

from matrix.progress import CommandProgress


def test_nothing_is_drawn_when_the_output_is_not_a_terminal():
    out = io.StringIO()
    with CommandProgress(10, "cases", file=out) as progress:
        progress.advance(3, failed=True)
    assert not progress.enabled
    assert out.getvalue() == ""
    assert progress.failures == 1


def test_quiet_wins_over_a_terminal():
    out = io.StringIO()
    with CommandProgress(10, "cases", file=out, force=True, quiet=True) as progress:
        progress.advance()
    assert not progress.enabled and out.getvalue() == ""


def test_on_a_terminal_it_shows_done_of_total_failures_and_times():
    out = io.StringIO()
    progress = CommandProgress(10, "compat", file=out, force=True)
    with progress:
        progress.advance(3, failed=True)
        progress.advance(1)
        progress._progress.refresh()  # what the display shows at this moment
        shown = out.getvalue()
    assert "compat" in shown and "4/10" in shown and "1 failing" in shown
    assert "0:00:0" in shown and "left" in shown  # elapsed, and the estimate
