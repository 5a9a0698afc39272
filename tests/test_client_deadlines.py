"""harness.client.Deadlines: the one thread that bounds every request of the matrix client.

Each test waits on events with a bound (never a sleep): a deadline that fires sets its
event, one that must not fire is checked after a later one has fired.
"""

from __future__ import annotations

import threading

from harness.client import Deadlines

WAIT = 5.0  # bound on every wait


def test_a_deadline_calls_its_function_once_it_has_passed():
    deadlines = Deadlines()
    fired = threading.Event()
    deadlines.add(0.05, fired.set)
    assert fired.wait(WAIT)


def test_a_cancelled_deadline_is_never_called():
    deadlines = Deadlines()
    cancelled, later = threading.Event(), threading.Event()
    key = deadlines.add(0.05, cancelled.set)
    deadlines.cancel(key)
    deadlines.add(0.2, later.set)
    assert later.wait(WAIT)
    assert not cancelled.is_set()


def test_an_earlier_deadline_added_while_the_thread_sleeps_fires_first():
    deadlines = Deadlines()
    order: list[str] = []
    early = threading.Event()
    late_key = deadlines.add(WAIT * 10, lambda: order.append("late"))
    deadlines.add(0.05, lambda: (order.append("early"), early.set()))
    assert early.wait(WAIT), "the sleeping thread was not woken for the earlier deadline"
    deadlines.cancel(late_key)
    assert order == ["early"]


def test_the_thread_ends_when_idle_and_starts_again_for_the_next_deadline():
    deadlines = Deadlines(idle=0.05)
    first, second = threading.Event(), threading.Event()
    deadlines.add(0.01, first.set)
    assert first.wait(WAIT)
    thread = deadlines._thread
    assert thread is not None
    thread.join(WAIT)
    assert not thread.is_alive(), "an idle deadlines thread did not end"
    deadlines.add(0.01, second.set)
    assert second.wait(WAIT)


def test_many_requests_share_one_thread():
    deadlines = Deadlines()
    before = {t.ident for t in threading.enumerate()}
    keys = [deadlines.add(WAIT * 10, lambda: None) for _ in range(50)]
    started = {t.ident for t in threading.enumerate()} - before
    for key in keys:
        deadlines.cancel(key)
    assert len(started) <= 1
