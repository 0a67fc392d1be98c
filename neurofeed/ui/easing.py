"""The bar's display easing, in time units: one definition for the participant view, the dyad view and
the bench.

The painted bar glides towards the newest feedback value as a one-pole filter in continuous time, the
one-pole of every other smoother in neurofeed (:func:`~neurofeed.dsp.filters.one_pole_alpha`): after
``dt_s`` seconds it has covered ``1 - exp(-dt_s / easing_s)`` of the way, whatever the frame or packet
rate. Delay: the glide's low-frequency group delay is ``easing_s`` seconds (a one-pole's time
constant), on top of the delay of the value it glides to. ``easing_s`` is the protocol's
``[feedback] easing_s`` (0: the bar jumps to each new value, no delay).
"""

from __future__ import annotations

import numpy as np

from ..dsp.filters import one_pole_alpha

__all__ = ["EasingClock", "ease_weight", "eased", "eased_series"]

# the easing counts time in seconds: one_pole_alpha's "samples" are seconds (a 1-Hz rate), n = dt_s
SECONDS_HZ = 1.0


def ease_weight(dt_s: float, easing_s: float) -> float:
    """Share of the remaining distance the bar covers in ``dt_s`` seconds: the one-pole weight of
    :func:`~neurofeed.dsp.filters.one_pole_alpha` with time constant ``easing_s`` (s) applied once
    after ``dt_s`` seconds (1 when ``easing_s`` is 0; 0 for ``dt_s`` <= 0)."""
    return one_pole_alpha(easing_s, SECONDS_HZ, max(dt_s, 0.0))


def eased(value: float, target: float, dt_s: float, easing_s: float) -> float:
    """``value`` after gliding towards ``target`` for ``dt_s`` seconds with time constant ``easing_s`` (s)."""
    return value + ease_weight(dt_s, easing_s) * (target - value)


class EasingClock:
    """Seconds between a view's easing steps (``time.monotonic()`` values): 0 at the first step."""

    def __init__(self):
        self.last_s = None  # the time of the last step (s), None before the first

    def step(self, now_s: float) -> float:
        """Seconds since the previous step (0 at the first); ``now_s`` becomes the previous step."""
        dt = 0.0 if self.last_s is None else now_s - self.last_s
        self.last_s = now_s
        return dt


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
