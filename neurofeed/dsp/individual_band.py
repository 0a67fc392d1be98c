"""The individual mu band: the peak of the baseline's spectrum within the protocol's search band."""

from __future__ import annotations

import numpy as np

from .spectra import welch_psd


def individual_band(x: np.ndarray, sfreq: float, search_hz, width_hz: float) -> tuple[float, float]:
    """Individual mu band: the peak of the mean Welch spectrum of ``x`` (:func:`~.spectra.welch_psd`,
    2-s segments) within ``search_hz``, ± ``width_hz`` (Hz)."""
    f, pxx = welch_psd(x, sfreq)
    sel = (f >= search_hz[0]) & (f <= search_hz[1])
    peak = float(f[sel][np.argmax(pxx.mean(axis=0)[sel])])
    return (max(0.5, peak - width_hz), peak + width_hz)
