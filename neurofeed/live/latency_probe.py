"""Per-update timing of the live loop (compute and sample age), kept in preallocated arrays."""

from __future__ import annotations

import numpy as np


class LatencyProbe:
    """Per-update timing, preallocated so an hour-long session keeps memory flat.

    Keeps the most recent ``capacity`` updates.

    Attributes
    ----------
    compute_to_publish_ms : ndarray
        Chunk arrival → FeedbackState published (ms): neurofeed's compute time per update (the
        step plus the bookkeeping around it), not the electrode-to-feedback delay.
    compute_us : ndarray
        The processing step alone (µs).
    age_ms : ndarray
        How old the chunk's newest sample was when it arrived (ms; NaN where the source cannot say).
    t_s : ndarray
        Arrival time since the session started (s), for the drift fit.
    """

    def __init__(self, capacity: int = 1 << 18):
        self.capacity = capacity
        self.compute_to_publish_ms = np.zeros(capacity)
        self.compute_us = np.zeros(capacity)
        self.age_ms = np.full(capacity, np.nan)
        self.t_s = np.zeros(capacity)
        self.n = 0

    def add(self, arrival_ns, published_ns, compute_ns, age_s, t0_ns):
        i = self.n % self.capacity
        self.compute_to_publish_ms[i] = (published_ns - arrival_ns) / 1e6
        self.compute_us[i] = compute_ns / 1e3
        self.age_ms[i] = age_s * 1e3
        self.t_s[i] = (arrival_ns - t0_ns) / 1e9
        self.n += 1

    def _view(self, a):
        return a[: min(self.n, self.capacity)]

    def summary(self) -> dict:
        """Percentiles of each measure, the update cadence and the drift of the lag."""
        if self.n == 0:
            return {"updates": 0}
        lag, comp, age, t = (self._view(a) for a in (self.compute_to_publish_ms, self.compute_us, self.age_ms,
                                                     self.t_s))
        pct = lambda a, qs: {f"p{q}": float(np.percentile(a, q)) for q in qs}  # noqa: E731
        out = {"updates": int(self.n),
               # chunk arrival -> FeedbackState published: neurofeed's compute, not what the participant
               # waits for (electrode -> feedback is `neurofeed bench latency`'s)
               "compute_to_publish_ms": {**pct(lag, (50, 95, 99)), "max": float(lag.max())},
               "compute_us": pct(comp, (50, 99))}
        age = age[np.isfinite(age)]
        if age.size:
            out["sample_age_ms"] = pct(age, (50, 99))
        if t.size > 20 and t.max() > t.min():
            out["update_hz"] = float((t.size - 1) / (t.max() - t.min()))
            # slope of the lag over the run, fitted to the medians of ten stretches so that a
            # single slow update (a refit, a GC pause) does not pose as drift
            order = np.argsort(t)
            parts = np.array_split(order, 10)
            tm = np.array([np.median(t[p]) for p in parts])
            lm = np.array([np.median(lag[p]) for p in parts])
            out["drift_ms_per_hour"] = float(np.polyfit(tm - tm.min(), lm, 1)[0] * 3600.0)
        return out
