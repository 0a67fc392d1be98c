"""The one Welch convention of the package (spectra for fits, checks, views and reports)."""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["welch_psd"]


def welch_psd(x: np.ndarray, sfreq: float, segment_s: float = 2.0,
              onesided: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Power spectral density of ``x`` by Welch's method, as every spectrum of neurofeed is taken.

    Hann segments of ``segment_s`` seconds (``round(segment_s · sfreq)`` samples, fewer when
    ``x`` is shorter: then one segment of all of it), overlapping by half, each segment's mean
    removed, averaged (``scipy.signal.welch`` with its defaults otherwise).

    Parameters
    ----------
    x : ndarray, shape (..., n_samples)
        µV, finite; the spectrum is taken along the last axis.
    sfreq : float
        Sampling rate (Hz).
    segment_s : float
        Segment length (s): 2 s resolves 0.5 Hz (the mu peak, the line frequency); 1 s where a
        view wants a smoother curve sooner.
    onesided : bool
        One-sided spectrum (0 .. sfreq/2, power folded in); False gives both sides in FFT order.

    Returns
    -------
    freqs : ndarray
        Hz.
    psd : ndarray, shape (..., n_freqs)
        µV²/Hz.
    """
    nper = int(min(np.shape(x)[-1], round(segment_s * sfreq)))
    return signal.welch(x, fs=sfreq, nperseg=nper, return_onesided=onesided)
