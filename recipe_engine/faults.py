"""Fault injection for the kill-anywhere tests: ``RECIPE_ENGINE_FAULT=<site>:<n>`` makes the
process SIGKILL itself the n-th time it reaches ``site`` (counted per process).

Sites: ``step`` (after an optimizer step), ``checkpoint`` (a checkpoint written to its temp
file, not yet renamed), ``write`` (an atomic file write, not yet renamed), ``append`` (half of
a metrics line written), ``seed`` (a seed finished, the next not started).  Unset, a site
costs one environment lookup.
"""
from __future__ import annotations

import os
import signal

ENV = "RECIPE_ENGINE_FAULT"
_reached: dict[str, int] = {}


def due(site: str) -> bool:
    """Is this the visit of ``site`` at which the configured fault fires?"""
    spec = os.environ.get(ENV)
    if not spec or not spec.startswith(site + ":"):
        return False
    _reached[site] = _reached.get(site, 0) + 1
    return _reached[site] == int(spec.split(":", 1)[1])


def die() -> None:
    """What a power cut or ``kill -9`` does: no cleanup, no flush, no handler."""
    os.kill(os.getpid(), signal.SIGKILL)


def point(site: str) -> None:
    if due(site):
        die()
