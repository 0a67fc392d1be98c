"""The base every mu envelope estimator shares: its interface and how it declares its delay.

Kept apart from :mod:`neurofeed.dsp.estimators` (the classic designs and the factory that builds any
estimator by name) so that an estimator living in its own module (the learned one,
:mod:`neurofeed.dsp.learned`) imports the base without importing the factory that imports it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Estimator"]


class Estimator:
    """Base class. Subclasses set ``name`` and ``group_delay_s`` and implement ``process``."""

    name = "base"

    @property
    def group_delay_s(self) -> float:
        """Declared delay in seconds (see :meth:`measure_step_delay_s`), computed on first use."""
        if getattr(self, "_delay_s", None) is None:
            self._delay_s = self.measure_step_delay_s()
        return self._delay_s

    def __init__(self, sfreq: float, band_hz, n_channels: int):
        self.sfreq = float(sfreq)
        self.band_hz = (float(band_hz[0]), float(band_hz[1]))
        self.n_channels = int(n_channels)

    def process_inplace(self, x: np.ndarray) -> np.ndarray:
        """Replace ``x`` (n_channels × n_samples, µV) by the mu power (µV²) per sample."""
        raise NotImplementedError

    def reset(self) -> None:
        """Clear the state (history, smoother) as if no sample had been seen; the next chunk
        seeds it again from its first sample."""
        for name in ("zi", "hist", "pstate", "pos"):
            if hasattr(self, name):
                getattr(self, name)[...] = 0
        self.seeded = False

    def seed(self, x0: np.ndarray) -> None:
        """Start the filter state at the steady state of a constant input ``x0`` (n_channels,)."""
        self.seeded = True

    def power_response(self, freqs_hz) -> np.ndarray:
        """Power gain of the estimator's linear part for a steady sinusoid at each of
        ``freqs_hz`` (unitless, any common scale): what the chain's response check uses."""
        raise NotImplementedError

    def memory_s(self) -> float:
        """How long (s) the output depends on past input: after a (re)start or a step, this long
        until the output holds only new input. A recursive estimator has no end to its memory:
        four declared delays. FIR-like estimators override it with their length."""
        return 4.0 * self.group_delay_s

    def impulse_hold_s(self, fraction: float = 0.95) -> float:
        """How long (s) the output stays measurably disturbed by a brief artifact: the time by
        which ``fraction`` of the power output's response to a unit impulse has been delivered
        (run on a fresh copy, from zero state). The artifact gate holds this long."""
        import copy

        from .responses import impulse_settle_s

        est = copy.deepcopy(self)
        est.reset()
        n = int(round(4.0 * self.sfreq))
        x = np.zeros((self.n_channels, n))
        x[:, 0] = 1.0
        est.seeded = True  # from zero state: the response to the impulse alone
        step = max(1, int(round(0.01 * self.sfreq)))  # live-sized chunks (the window estimator is per chunk)
        out = np.concatenate([est.process_inplace(np.ascontiguousarray(x[:, i:i + step]))[0]
                              for i in range(0, n, step)])
        return impulse_settle_s(out, self.sfreq, fraction)

    def measure_step_delay_s(self) -> float:
        """The estimator's delay, as declared: the time its amplitude output takes to cross
        half of a 1 → 0.4 step in the amplitude of a rhythm, averaged over rhythms at the band
        centre and ±1 Hz (the delay of every causal band filter varies across its band).

        Runs a fresh copy sample by sample on clean sinusoids; the output is smoothed by a
        centred (zero-delay) moving average of one period to remove the 2f ripple.
        """
        import copy

        centre = 0.5 * (self.band_hz[0] + self.band_hz[1])
        n_step = int(4 * self.sfreq)
        t = np.arange(2 * n_step) / self.sfreq
        amp = np.where(t < n_step / self.sfreq, 1.0, 0.4)
        delays = []
        for freq in (centre - 1.0, centre, centre + 1.0):
            est = copy.deepcopy(self)
            est.reset()
            est.seeded = True  # from zero state, as the step's own start
            x = np.repeat((amp * np.cos(2 * np.pi * freq * t))[None], self.n_channels, axis=0)
            out = np.concatenate([est.process_inplace(x[:, i:i + 1].copy()) for i in range(x.shape[1])], axis=1)[0]
            out = np.sqrt(2 * np.maximum(out, 0))
            width = max(1, int(round(self.sfreq / freq)))
            out = np.convolve(out, np.ones(width) / width, mode="same")
            half = 0.5 * (out[n_step - int(0.5 * self.sfreq)] + out[-int(0.5 * self.sfreq)])
            delays.append(np.nonzero(out[n_step:] < half)[0][0] / self.sfreq)
        return float(np.mean(delays))


    def describe(self) -> dict:
        """Name, band and declared group delay, for sidecars and reports."""
        return {"estimator": self.name, "band_hz": list(self.band_hz), "group_delay_s": self.group_delay_s}
