"""Inter-brain mu coupling of two people, live: amplitude-envelope correlation and phase locking.

The dyad ("resonant field") protocol feeds back how two people's sensorimotor mu rhythms move
together. Two standard measures of hyperscanning studies are computed causally over a sliding
window of the last ``window_s`` seconds:

- **AEC**, amplitude-envelope correlation: Pearson correlation of the two log mu envelopes
  (Hipp et al. 2012; Bruns et al. 2000). Slow co-modulation of mu power; insensitive to phase.
- **PLV**, phase-locking value: ``|mean(exp(i(φa − φb)))|`` of the two mu-band phases (Lachaux et
  al. 1999; Dumas et al. 2010 for inter-brain use). 0 for unrelated phases, 1 for a constant lag.

The analytic mu signal comes from a complex FIR (the cFIR design of
:func:`neurofeed.dsp.estimators.design_cfir`, a causal analytic band-pass with a designed delay),
applied with scipy's ``lfilter`` and its state (the dyad runs at the update rate of both
people's pipelines, far off the per-sample hot path, so scipy is fast enough here).

Delay: the measures describe the window ending ``delay_s`` (the cFIR's designed delay) before
the newest sample, and they average over ``window_s``: as feedback they change over seconds, which
is what a shared "resonance" display wants.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ..dsp.estimators import design_cfir


class AnalyticMu:
    """Causal analytic mu-band signal of one person's referenced target channels (mean of targets).

    Parameters
    ----------
    sfreq : float
        Sampling rate (Hz).
    band_hz : (float, float)
        Mu band (Hz).
    delay_s : float
        Designed delay of the complex FIR (s).
    """

    def __init__(self, sfreq: float, band_hz=(8.0, 13.0), delay_s: float = 0.1):
        self.sfreq = float(sfreq)
        self.delay_s = float(delay_s)
        self.taps = design_cfir(self.sfreq, band_hz, delay_s, n_taps=int(round(self.sfreq)),
                                n_fft=max(2048, 1 << int(np.ceil(np.log2(4 * self.sfreq)))))
        self.zi = None

    def process(self, x: np.ndarray) -> np.ndarray:
        """Complex mu signal (µV) of ``x`` (n_samples,), continuing from the previous call."""
        x = np.asarray(x, dtype=np.float64)
        if self.zi is None:
            # start from the first value as a constant history: no start-up transient from an offset
            self.zi = signal.lfiltic(self.taps, [1.0], np.full(len(self.taps) - 1, x[0] if x.size else 0.0))
            self.zi = self.zi.astype(np.complex128)
        y, self.zi = signal.lfilter(self.taps, [1.0], x, zi=self.zi)
        return y


class DyadCoupling:
    """Sliding-window AEC and PLV of two people's mu, fed sample-aligned chunks.

    Parameters
    ----------
    sfreq : float
        Common sampling rate (Hz) of both people's sources.
    band_hz : (float, float)
        Mu band (Hz).
    window_s : float
        Sliding window (s) of both measures.
    delay_s : float
        Designed delay of the analytic filter (s).

    Notes
    -----
    ``update(xa, xb)`` takes the same samples of both people (the caller aligns them on their
    source timestamps) and returns ``(aec, plv)`` for the window ending at the newest sample
    (NaN until a window is full). ``coupling_index`` combines them as their mean, 0..1 (AEC
    below 0 counts as 0): what the shared participant view shows.
    """

    def __init__(self, sfreq: float, band_hz=(8.0, 13.0), window_s: float = 10.0, delay_s: float = 0.1):
        self.sfreq = float(sfreq)
        self.window = int(round(window_s * self.sfreq))
        self.a, self.b = AnalyticMu(sfreq, band_hz, delay_s), AnalyticMu(sfreq, band_hz, delay_s)
        self.za = np.zeros(self.window, dtype=np.complex128)
        self.zb = np.zeros(self.window, dtype=np.complex128)
        self.n = 0
        self.aec = float("nan")
        self.plv = float("nan")

    def update(self, xa: np.ndarray, xb: np.ndarray) -> tuple[float, float]:
        """Add the next samples of both people (same length, µV); returns (aec, plv)."""
        if len(xa) != len(xb):
            raise ValueError(f"The two people's chunks must be aligned: {len(xa)} and {len(xb)} samples.")
        ya, yb = self.a.process(xa), self.b.process(xb)
        k = len(ya)
        if k >= self.window:
            self.za[:], self.zb[:] = ya[-self.window:], yb[-self.window:]
        elif k:
            self.za[:-k], self.zb[:-k] = self.za[k:].copy(), self.zb[k:].copy()
            self.za[-k:], self.zb[-k:] = ya, yb
        self.n += k
        if self.n >= self.window + len(self.a.taps):
            self.aec, self.plv = window_coupling(self.za, self.zb)
        return self.aec, self.plv

    @property
    def coupling_index(self) -> float:
        """Mean of max(AEC, 0) and PLV (0..1), NaN until the first full window."""
        return 0.5 * (max(self.aec, 0.0) + self.plv) if self.plv == self.plv else float("nan")


def window_coupling(za: np.ndarray, zb: np.ndarray) -> tuple[float, float]:
    """AEC (correlation of log envelopes) and PLV of two complex mu signals over one window.

    Parameters
    ----------
    za, zb : ndarray of complex, shape (n_samples,)
        Analytic mu signals of the two people (µV), the same samples.

    Returns
    -------
    aec : float
        Pearson correlation of ``log(|za|)`` and ``log(|zb|)`` (−1..1).
    plv : float
        ``|mean(exp(i(angle(za) − angle(zb))))|`` (0..1).
    """
    ea, eb = np.log(np.abs(za) + 1e-9), np.log(np.abs(zb) + 1e-9)
    ea, eb = ea - ea.mean(), eb - eb.mean()
    den = np.sqrt((ea * ea).sum() * (eb * eb).sum())
    aec = float((ea * eb).sum() / den) if den > 0 else float("nan")
    rel = za * np.conj(zb)
    plv = float(np.abs(np.mean(rel / (np.abs(rel) + 1e-12))))
    return aec, plv
