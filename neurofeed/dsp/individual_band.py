"""The individual mu band: the peak of the baseline's spectrum within the protocol's search band."""

from __future__ import annotations

import numpy as np
from scipy import signal as sps


# TODO(issue 25): use dsp's one Welch convention here once it is on main.
def individual_band(x: np.ndarray, sfreq: float, search_hz, width_hz: float) -> tuple[float, float]:
    """Individual mu band: the peak of the mean Welch spectrum of ``x`` within ``search_hz``, ± ``width_hz``."""
    nper = int(min(x.shape[1], 2 * sfreq))
    f, pxx = sps.welch(x, fs=sfreq, nperseg=nper)
    sel = (f >= search_hz[0]) & (f <= search_hz[1])
    peak = float(f[sel][np.argmax(pxx.mean(axis=0)[sel])])
    return (max(0.5, peak - width_hz), peak + width_hz)
