"""Fault injection for the crash tests: a process kills itself at a named step."""

from __future__ import annotations

import os
import signal

CRASH_ENV = "EVTRACK_COMPACT_CRASH_AT"  # fault injection for the crash tests: a step name


def checkpoint(step: str) -> None:
    """Kill this process with SIGKILL at ``step`` when the crash-test variable names it."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
