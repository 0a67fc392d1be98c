"""The baseline: mu power at rest and the reward thresholds it implies.

One :class:`BaselineModel` serves the live session, journal replay and file replay, so the three
agree by construction. It collects the estimator's output once per update while the baseline
runs, leaves out updates the artifact gate closed and updates while the estimator is still
settling (its memory not yet filled since it started or was refitted), and gives

- the baseline B per target in the domain the SI lives in, log10 µV²: the protocol's
  ``statistic`` of the clean baseline's log10 power (``mean``: over every sample of the clean
  updates; ``median``: of the clean updates' newest samples); ``baseline_uv2`` = 10 ** B, i.e.
  the geometric mean (or the median) of the clean baseline power, never its arithmetic mean;
- the SI thresholds per direction, calibrated by running the protocol's reward rule (hold,
  hysteresis, refractory, the baseline's gates; :mod:`neurofeed.protocol.reward`) over the
  baseline's combined SI as the rule reads it, so that the rule would have rewarded
  ``baseline_reward_pct`` % of the baseline.

Why the log domain on both sides: the SI of an update is log10(P_now) − B. For a narrow-band
rhythm the instantaneous power is close to exponentially distributed, so E[log10 P] sits
γ / ln 10 ≈ 0.25 below log10 E[P] (Jensen; γ Euler's constant). A baseline taken as the mean
*power* therefore makes the mean SI at rest about −0.25 ("suppression" where nothing changed);
taken as the mean (or median) of the same log power the SI uses, the SI averages 0 at rest
(or sits at 0 half the time, for the median), and block means of the SI (the block tables,
``si_pooled``, reports) are means of the same quantity the participant was shown.

When the estimator is refitted at the end of the baseline (individual band, weighted cFIR),
:meth:`BaselineModel.replace_power` swaps in the refitted estimator's output for the same
updates; the gate flags and the statistic stay as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..dsp.filters import one_pole_alpha

FLOOR_UV2 = 1e-12  # power floor so log10 stays finite on a flat signal

__all__ = ["BaselineModel", "BaselineFit", "FLOOR_UV2", "combine_si", "smooth_series"]


def combine_si(si: np.ndarray, how: str, sides=(0, 1)) -> float:
    """Combine per-target SI: mean, left, right, asymmetry (right − left).

    ``sides`` = (index of the left-hemisphere target, index of the right one), decided by the
    targets' names (``SignalSpec.sides()``: odd number = left, even = right), not their order.
    """
    values = si.tolist()  # a plain-Python mean of 1–4 values is several times faster than ndarray.mean
    if how == "mean":
        return sum(values) / len(values)
    left, right = sides
    if how == "left":
        return values[left]
    if how == "right":
        return values[right]
    return values[right] - values[left]


def smooth_series(values: np.ndarray, sizes: np.ndarray, tau_s: float, sfreq: float) -> np.ndarray:
    """The bar's smoother run over a series of per-update values (``sizes`` samples each)."""
    out = np.empty(len(values))
    acc = math.nan
    for i, (v, n) in enumerate(zip(values.tolist(), sizes.tolist())):
        acc = v if acc != acc else acc + one_pole_alpha(tau_s, sfreq, n) * (v - acc)
        out[i] = acc
    return out


@dataclass
class BaselineFit:
    """What a baseline gives: power per target (µV²), SI threshold per direction, and counts.

    Attributes
    ----------
    baseline_uv2 : ndarray, shape (n_targets,)
        Baseline mu power (µV²): 10 ** B, B the statistic of the clean updates' log10 power
        (the geometric mean of the clean baseline power for ``mean``, the median for ``median``).
    thresholds : dict
        ``{"up": si, "down": si}``; NaN in ``fixed`` mode (the engine keeps its fixed value).
    n_used, n_excluded : int
        Updates used, and updates left out (artifact gate closed, or estimator settling).
    used_s, excluded_s, settling_s : float
        Seconds of signal used, left out because the gate was closed, and left out because the
        estimator was still settling.
    mean_power_uv2 : ndarray, shape (n_targets,)
        Arithmetic mean power of the clean updates (µV²), for percent changes (ERD/ERS).
    clean_s : float
        Seconds of clean signal (gate open, estimator settled); ``used_s`` equals it unless no
        update was clean and the fit fell back on the settled (or all) updates.
    """

    baseline_uv2: np.ndarray
    thresholds: dict
    n_used: int
    n_excluded: int
    used_s: float
    excluded_s: float
    settling_s: float = 0.0
    clean_s: float = 0.0
    mean_power_uv2: np.ndarray | None = None


class BaselineModel:
    """Collects the baseline updates and fits baseline power and thresholds.

    Parameters
    ----------
    n_targets : int
    sfreq : float
        Sampling rate (Hz), for seconds and the smoother.
    statistic : {"mean", "median"}
        How the baseline power is taken from the clean updates.
    combine : str
        How per-target SI is combined (see :func:`combine_si`).
    sides : (int, int)
        Indices of the left- and right-hemisphere targets (``SignalSpec.sides()``).
    smoothing_s : float
        Time constant of the SI the bar and the reward follow (``[feedback] smoothing_s``); the
        thresholds are percentiles of the baseline SI smoothed the same way.
    capacity : int
        Updates preallocated (grows by doubling if a baseline runs longer, e.g. external markers).
    """

    def __init__(self, n_targets: int, sfreq: float, statistic: str = "mean", combine: str = "mean",
                 smoothing_s: float = 0.0, capacity: int = 4096, sides=(0, 1)):
        if statistic not in ("mean", "median"):
            raise ValueError(f"statistic must be 'mean' or 'median', not {statistic!r}.")
        self.n_t = int(n_targets)
        self.sfreq = float(sfreq)
        self.statistic = statistic
        self.combine = combine
        self.sides = tuple(sides)
        self.smoothing_s = float(smoothing_s)
        cap = max(int(capacity), 16)
        self._sum = np.zeros((cap, self.n_t))  # power summed over each update's samples (µV²)
        self._log_last = np.zeros((cap, self.n_t))  # log10 power of each update's newest sample
        self._log_sum = np.zeros((cap, self.n_t))  # log10 power summed over each update's samples
        self._size = np.zeros(cap, dtype=np.int64)
        self._gated = np.zeros(cap, dtype=bool)
        self._settling = np.zeros(cap, dtype=bool)  # the estimator's start-up transient
        self.n_updates = 0

    def clear(self) -> None:
        """Forget every update."""
        self.n_updates = 0

    def _grow(self) -> None:
        cap = 2 * self._size.size
        for name in ("_sum", "_log_last", "_log_sum", "_size", "_gated", "_settling"):
            old = getattr(self, name)
            new = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def add(self, power: np.ndarray, gated: bool, settling: bool = False) -> None:
        """One update: ``power`` (n_targets × n_samples, µV²), whether the gate was closed, and
        whether the estimator was still settling (its memory not yet filled since it started)."""
        if self.n_updates == self._size.size:
            self._grow()
        i = self.n_updates
        power.sum(axis=1, out=self._sum[i])
        logs = np.log10(np.maximum(power, FLOOR_UV2))
        logs.sum(axis=1, out=self._log_sum[i])
        self._log_last[i] = logs[:, -1]
        self._size[i] = power.shape[1]
        self._gated[i] = bool(gated)
        self._settling[i] = bool(settling)
        self.n_updates += 1

    def replace_power(self, powers, settling=None, gated=None) -> None:
        """The refitted estimator's output for the same updates (a sequence of n_targets × n
        arrays, one per update, same sizes) and, optionally, its own settling flags and the gate
        flags re-judged by the calibrated gates (else the live gate flags are kept)."""
        powers = list(powers)
        if len(powers) != self.n_updates or any(p.shape[1] != s for p, s in zip(powers, self._size.tolist())):
            raise ValueError(f"replace_power needs {self.n_updates} updates of the same sizes as were added, "
                             f"got {len(powers)}.")
        for i, p in enumerate(powers):
            p.sum(axis=1, out=self._sum[i])
            logs = np.log10(np.maximum(p, FLOOR_UV2))
            logs.sum(axis=1, out=self._log_sum[i])
            self._log_last[i] = logs[:, -1]
        if settling is not None:
            self._settling[: self.n_updates] = np.asarray(settling, dtype=bool)
        if gated is not None:
            self._gated[: self.n_updates] = np.asarray(gated, dtype=bool)

    @property
    def clean(self) -> np.ndarray:
        """Boolean mask of the updates used (gate open, estimator settled); if none is, the
        settled ones, and if none is settled, all of them."""
        g, st = self._gated[: self.n_updates], self._settling[: self.n_updates]
        for m in (~(g | st), ~st):
            if m.any():
                return m
        return np.ones_like(g)

    def log_uv2(self) -> np.ndarray:
        """The baseline B per target (log10 µV²): ``mean``, the mean log10 power over every
        sample of the clean updates (what the shown SI samples once per update, so the mean SI
        does not depend on how the stream was chunked); ``median``, the median of the clean
        updates' log10 power (newest sample of each, as the bar shows it)."""
        if self.n_updates == 0:
            raise ValueError("no baseline updates collected")
        m = self.clean
        if self.statistic == "median":
            return np.median(self._log_last[: self.n_updates][m], axis=0)
        return self._log_sum[: self.n_updates][m].sum(axis=0) / self._size[: self.n_updates][m].sum()

    def power_uv2(self) -> np.ndarray:
        """Baseline power per target (µV²): 10 ** :meth:`log_uv2`, the geometric mean (``mean``)
        or the median (``median``) of the clean baseline power."""
        return np.maximum(10.0 ** self.log_uv2(), FLOOR_UV2)

    def mean_power_uv2(self) -> np.ndarray:
        """Arithmetic mean power per target over the clean updates (µV²): the reference of a
        percent change (ERD/ERS), which is relative to mean power; not the SI's baseline."""
        m = self.clean
        return self._sum[: self.n_updates][m].sum(axis=0) / max(int(self._size[: self.n_updates][m].sum()), 1)

    def clean_log_mean(self) -> tuple[np.ndarray, int]:
        """Mean log10 power per target over every sample of the clean updates, and their
        samples: the baseline block's own row of a block table."""
        m = self.clean
        n = int(self._size[: self.n_updates][m].sum())
        if not n:
            return np.zeros(self.n_t), 0
        return self._log_sum[: self.n_updates][m].sum(axis=0) / n, n

    def clean_s(self) -> float:
        """Seconds of clean baseline signal: gate open and estimator settled."""
        g, st = self._gated[: self.n_updates], self._settling[: self.n_updates]
        return float(self._size[: self.n_updates][~(g | st)].sum() / self.sfreq)

    def combined_si(self, baseline_uv2: np.ndarray) -> np.ndarray:
        """The combined SI of every update as the reward rule reads it (n_updates,; NaN before the
        estimator settled): each update's newest sample, relative to ``baseline_uv2``, smoothed
        only if the model was given a ``smoothing_s`` (the engine gives 0: the reward follows the
        raw SI)."""
        k = self.n_updates
        si = self._log_last[:k] - np.log10(baseline_uv2)
        comb = np.array([combine_si(row, self.combine, self.sides) for row in si])
        # the smoother starts where the estimator has settled (as the live bar starts on a settled SI)
        settled = ~self._settling[:k]
        start = int(np.argmax(settled)) if settled.any() else 0
        out = np.full(k, np.nan)
        out[start:] = smooth_series(comb[start:], self._size[start:k], self.smoothing_s, self.sfreq)
        return out

    def thresholds(self, spec, baseline_uv2: np.ndarray) -> dict:
        """SI threshold per direction for ``spec`` (a ``ThresholdSpec``), calibrated by running the
        protocol's reward rule over the baseline.

        ``up`` rewards SI below the threshold, ``down`` above it. For each direction the threshold
        is the one at which the :class:`~neurofeed.protocol.reward.RewardRule` (``hold_s``,
        ``refractory_s``, ``hysteresis_si``, and the baseline's own artifact gates), run over the
        settled baseline updates as if they were feedback, rewards p % of their samples, with
        p = ``baseline_reward_pct`` (percentile mode) or ``target_reward_pct`` (adaptive mode's
        starting point, clipped to ``[min_si, max_si]``). A hold makes rewards rarer than the
        condition (a 0.25-s hold on the raw SI rewards a few % at the 40th percentile), so the
        threshold lies further out than the p-th percentile of the SI; without hold, hysteresis
        and gates it is that percentile. Fixed mode: ``value`` both ways.

        The search is a bisection over the baseline's sorted SI values (about 15 runs of the rule
        over the baseline: ~0.1 s for a minute of one-sample updates).
        """
        from .reward import reward_rate

        if spec.mode == "fixed":
            return {"up": float(spec.value), "down": float(spec.value)}
        k = self.n_updates
        comb = self.combined_si(baseline_uv2)
        use = ~self._settling[:k] & np.isfinite(comb)
        if not use.any():
            use = np.isfinite(comb)
        si, sizes, gated = comb[use], self._size[:k][use], self._gated[:k][use]
        pct = spec.baseline_reward_pct if spec.mode == "percentile" else spec.target_reward_pct
        target = pct / 100.0
        hold = int(round(spec.hold_s * self.sfreq))
        refractory = int(round(spec.refractory_s * self.sfreq))
        hyst = float(getattr(spec, "hysteresis_si", 0.0))
        values = np.unique(si)
        out = {}
        for direction in ("up", "down"):
            # candidates ordered from the strictest to the most permissive threshold
            cand = values if direction == "up" else values[::-1]
            if cand.size == 0:
                out[direction] = float("nan")
                continue

            def rate(i):
                # a threshold just past candidate i (so that value i itself meets the condition)
                thr = float(cand[i]) + (1e-9 if direction == "up" else -1e-9)
                return reward_rate(si, sizes, gated, thr, direction, hold, refractory, hyst), thr

            lo, hi = 0, cand.size - 1  # find the strictest threshold whose rate reaches the target
            if rate(hi)[0] < target:
                lo = hi
            while lo < hi:
                mid = (lo + hi) // 2
                if rate(mid)[0] >= target:
                    hi = mid
                else:
                    lo = mid + 1
            value = rate(lo)[1]
            if spec.mode == "adaptive":
                value = min(max(value, spec.min_si), spec.max_si)
            out[direction] = value
        return out

    def fit(self, spec) -> BaselineFit:
        """Baseline power and thresholds from the updates collected so far."""
        base = self.power_uv2()
        m = self.clean
        k = self.n_updates
        sizes, g, st = self._size[:k], self._gated[:k], self._settling[:k]
        n_used = int(m.sum())
        return BaselineFit(base, self.thresholds(spec, base), n_used, k - n_used, float(sizes[m].sum() / self.sfreq),
                           float(sizes[g & ~st].sum() / self.sfreq), float(sizes[st].sum() / self.sfreq),
                           self.clean_s(), self.mean_power_uv2())
