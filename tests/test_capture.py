"""harness/capture.py: log records and stderr lines of in-process code, counted once each."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.capture import Counts, OutputCapture, counting


def _raise_and_log(logger: logging.Logger) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("handling a request failed")


def test_a_record_with_exc_info_is_a_traceback_and_a_line():
    logger = logging.getLogger("capture-test.plain")
    with counting() as window:
        _raise_and_log(logger)
        logger.warning("one warning")
    assert window.counts.tracebacks == 1
    assert window.counts.log_lines == 2


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_uncaught_thread_exception_is_one_line_and_one_traceback():
    def worker():
        raise RuntimeError("uncaught in a server thread")

    with counting() as window:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)
    assert window.counts == Counts(1, 1)


def test_a_stream_handler_echo_to_stderr_is_not_counted_twice():
    logger = logging.getLogger("capture-test.echo")
    logger.propagate = True
    with counting() as window:
        handler = logging.StreamHandler(sys.stderr)  # bound to the capture's stream
        logger.addHandler(handler)  # runs before the root's handlers: echo first
        try:
            _raise_and_log(logger)
            logger.error("plain error")
        finally:
            logger.removeHandler(handler)
    assert window.counts.tracebacks == 1
    assert window.counts.log_lines == 2


def test_a_root_handler_added_after_the_capture_is_not_counted_twice():
    root = logging.getLogger()
    with counting() as window:
        handler = logging.StreamHandler(sys.stderr)
        root.addHandler(handler)  # after ours: the echo follows the record
        try:
            _raise_and_log(logging.getLogger("capture-test.late"))
        finally:
            root.removeHandler(handler)
    assert window.counts == Counts(1, 1)


SCRIPT = """
import logging, sys, threading
from harness.capture import counting
with counting() as window:
    logging.getLogger("server").warning("visible to the user")
    thread = threading.Thread(target=lambda: 1 / 0)
    thread.start()
    thread.join(10)
print(window.counts.tracebacks, window.counts.log_lines)
"""


def test_outside_pytest_what_the_user_sees_is_unchanged_and_counted_once():
    # no handler on the root logger (pytest adds its own): logging's lastResort would
    # print the warning, and the default excepthook the thread's traceback
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "visible to the user" in proc.stderr
    assert "ZeroDivisionError" in proc.stderr
    assert proc.stdout.split() == ["1", "2"]


def test_windows_count_only_their_block_and_the_stream_is_restored():
    original = sys.stderr
    capture = OutputCapture()
    with capture:
        print("before", file=sys.stderr)
        with capture.window() as window:
            print("inside\nTraceback (most recent call last):", file=sys.stderr)
        print("after", file=sys.stderr)
    assert window.counts.log_lines == 2 and window.counts.tracebacks == 1
    assert capture.counts().log_lines == 4
    assert sys.stderr is original


def test_the_harness_client_libraries_and_its_own_lines_are_not_counted():
    with counting() as window:
        logging.getLogger("urllib3.connectionpool").warning("retrying")
        print("mtls-matrix: a line of the harness", file=sys.stderr)
    assert window.counts.log_lines == 0


def test_listeners_see_each_event_with_its_thread():
    capture = OutputCapture()
    seen = []
    capture.listeners.append(seen.append)
    with capture:
        logging.getLogger("capture-test.listen").error("x")
    assert [(e.source, e.thread, e.lines) for e in seen] == [("log", threading.get_ident(), 1)]
