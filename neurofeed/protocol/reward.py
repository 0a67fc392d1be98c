"""The reward rule: when a reward starts and stops, on the SI's own signal (not the bar's).

One definition, run by the live :class:`~neurofeed.protocol.engine.Engine` per update and by the
baseline calibration (:meth:`~neurofeed.protocol.baseline.BaselineModel.thresholds`) over the
baseline's updates, so that a percentile threshold gives the realised rate it promises with the
protocol's hold, hysteresis, refractory and artifact gates.

The rule, per update of ``n`` samples (counted in samples, never wall-clock time):

- the **condition**: the SI is beyond the threshold (below it for ``up``, above for ``down``);
- a reward **starts** when the condition has held for ``hold`` samples, the gate is open and at
  least ``refractory`` samples have passed since the last reward ended;
- a running reward **stays on** while the gate is open and the SI has not crossed back past the
  threshold by more than ``hysteresis_si`` (log10 units).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RewardRule", "reward_rate"]

NEVER = 10 ** 12  # samples "since the last reward" before any reward


class RewardRule:
    """Hold, hysteresis and refractory over a stream of SI updates.

    Parameters
    ----------
    hold : int
        Samples the condition must hold before a reward starts (``[threshold] hold_s`` × sfreq).
    refractory : int
        Samples after a reward ends before another may start (``[threshold] refractory_s`` × sfreq).
    hysteresis_si : float
        How far (log10 units) past the threshold the SI must come back to end a running reward.
    """

    def __init__(self, hold: int, refractory: int, hysteresis_si: float = 0.0):
        self.hold = int(hold)
        self.refractory = int(refractory)
        self.hysteresis_si = float(hysteresis_si)
        self.on = False
        self.cond_run = 0
        self.since_reward = NEVER

    def reset(self) -> None:
        """Feedback stopped (block end, pause): no reward, the hold starts again."""
        self.cond_run = 0

    def ended(self) -> None:
        """A reward was switched off from outside (block end, pause, signal lost)."""
        if self.on:
            self.on = False
            self.since_reward = 0

    def condition(self, si: float, threshold: float, direction: str) -> bool:
        """The SI is beyond the threshold (False while either is NaN)."""
        return si < threshold if direction == "up" else si > threshold

    def step(self, si: float, threshold: float, direction: str, gated: bool, n: int) -> tuple[bool, bool]:
        """One update of ``n`` samples; returns ``(reward on, condition met)``."""
        cond = self.condition(si, threshold, direction)
        self.cond_run = self.cond_run + n if cond else 0
        self.since_reward += n
        if self.on:
            keep = si < threshold + self.hysteresis_si if direction == "up" else si > threshold - self.hysteresis_si
            on = keep and not gated
        else:
            on = cond and not gated and self.cond_run >= self.hold and self.since_reward >= self.refractory
        if self.on and not on:
            self.since_reward = 0
        self.on = on
        return on, cond


def reward_rate(si: np.ndarray, sizes: np.ndarray, gated: np.ndarray, threshold: float, direction: str,
                hold: int, refractory: int, hysteresis_si: float = 0.0) -> float:
    """Share of samples the :class:`RewardRule` would reward over a series of updates (SI, samples
    per update, gate per update), as during feedback. NaN SI updates count as not met."""
    rule = RewardRule(hold, refractory, hysteresis_si)
    rewarded = total = 0
    for v, n, g in zip(si.tolist(), sizes.tolist(), gated.tolist()):
        on, _ = rule.step(v, threshold, direction, g, n)
        total += n
        if on:
            rewarded += n
    return rewarded / total if total else float("nan")
