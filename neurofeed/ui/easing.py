"""The bar's display easing, in time units: one definition for the participant view and the bench.

The painted bar glides towards the newest feedback value as a one-pole filter in continuous time:
after ``dt_s`` seconds it has covered ``1 - exp(-dt_s / easing_s)`` of the way. Its delay to a slow
change is ``easing_s`` (a one-pole's low-frequency group delay), whatever the frame or packet rate.
``easing_s`` is the protocol's ``[feedback] easing_s`` (0: the bar jumps to each new value).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ease_weight", "eased_series"]


def ease_weight(dt_s: float, easing_s: float) -> float:
    """Share of the remaining distance the bar covers in ``dt_s`` seconds (1 when ``easing_s`` is 0)."""
    if easing_s <= 0:
        return 1.0
    return 1.0 - math.exp(-max(dt_s, 0.0) / easing_s)


def eased_series(t_ns: np.ndarray, values: np.ndarray, easing_s: float, step_ms: float = 2.0):
    """What a bar eased with ``easing_s`` shows, every ``step_ms``, given new values ``values``
    arriving at ``t_ns`` (sorted, ``perf_counter_ns``): ``(grid_ns, shown)``.

    With ``easing_s`` = 0 the bar shows each value from its arrival until the next (held)."""
    t_ns = np.asarray(t_ns, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    if t_ns.size < 2:
        return t_ns, values
    grid = np.arange(t_ns[0], t_ns[-1], int(step_ms * 1_000_000), dtype=np.int64)
    target = values[np.searchsorted(t_ns, grid, side="right") - 1]
    if easing_s <= 0:
        return grid, target
    w = ease_weight(step_ms / 1000.0, easing_s)
    shown = np.empty(grid.size)
    acc = target[0]
    for i, v in enumerate(target.tolist()):  # about 30 000 steps a minute: fast enough for a benchmark
        acc += w * (v - acc)
        shown[i] = acc
    return grid, shown
