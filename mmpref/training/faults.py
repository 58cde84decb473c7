"""Deterministic crash points, so tests can SIGKILL a real training process exactly where it hurts.

`MMPREF_CRASH_AT=checkpoint:4` kills the process after checkpoint 4's files are written but before the
folder is renamed into place (the worst moment for atomicity); `step:3` kills it right after step 3's
optimiser update. Unset in normal use; costs one environment lookup per call.
"""

from __future__ import annotations

import os
import signal

ENV = "MMPREF_CRASH_AT"


def maybe_crash(point: str, step: int) -> None:
    """Kill this process with SIGKILL when MMPREF_CRASH_AT names (point, step)."""
    if os.environ.get(ENV) == f"{point}:{step}":
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
