"""Run a server's command line as this very process, tied to the harness that started it.

    python -m harness.apps.launch --watch-fd FD [--death-signal] -- MODULE [ARG ...]

runs ``python -m MODULE ARG ...`` in this process (``runpy``, no second
interpreter), after arranging that the server cannot outlive the harness:

- ``--watch-fd FD`` is the read end of a pipe whose write end only the harness
  holds. A daemon thread blocks reading it; nothing is ever written, so the
  read returns only at end-of-file, which happens when the harness closes it or
  dies in any way (even SIGKILL). The thread then SIGKILLs this process group:
  the server and any worker processes it forked or spawned.
- ``--death-signal`` asks the Linux kernel to send this process SIGTERM when
  the thread that started it exits (``prctl(PR_SET_PDEATHSIG)``). It is a second
  line of defence for the rare case where the watch thread cannot run, and is
  only requested by a harness that starts servers from its main thread (the
  kernel ties the signal to the creating *thread*, not the process).

The harness starts this in a new session, so the process group is the server
and its workers alone.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import runpy
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` when our parent (thread) dies; Linux only."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(fd: int) -> threading.Thread:
    """SIGKILL our whole process group once the harness's end of the pipe is closed."""

    def run() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os.killpg(os.getpgrp(), signal.SIGKILL)

    thread = threading.Thread(target=run, name="harness-parent-watch", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.launch")
    parser.add_argument("--watch-fd", type=int, default=None)
    parser.add_argument("--death-signal", action="store_true")
    parser.add_argument("--parent", type=int, default=None, help="the harness's pid")
    parser.add_argument("module")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    if options.death_signal:
        set_parent_death_signal(signal.SIGTERM)
        # The harness may have died before prctl took effect: then nobody signals us.
        if options.parent is not None and os.getppid() != options.parent:
            sys.exit("harness.apps.launch: the harness is already gone")
    if options.watch_fd is not None:
        watch_parent(options.watch_fd)
    sys.argv = [options.module, *options.args]
    runpy.run_module(options.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
