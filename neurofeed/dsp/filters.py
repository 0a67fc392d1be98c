"""Filter design (scipy.signal) and stateful causal application (numba kernel)."""

from __future__ import annotations

import numpy as np
from scipy import signal

from .kernels import sosfilt_inplace


def design_bandpass(sfreq: float, band_hz: tuple[float, float], order: int = 2) -> np.ndarray:
    """Butterworth band-pass as second-order sections.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    band_hz : (float, float)
        Pass band edges in Hz, ``0 < lo < hi < sfreq / 2``.
    order : int
        Order of the low-pass prototype (the band-pass has ``2 * order`` poles).
    """
    lo, hi = band_hz
    nyq = sfreq / 2.0
    if not 0 < lo < hi < nyq:
        raise ValueError(f"The band {band_hz} Hz must satisfy 0 < low < high < Nyquist ({nyq:g} Hz).")
    return signal.butter(order, [lo, hi], btype="bandpass", fs=sfreq, output="sos")


def design_notch(sfreq: float, line_hz: float, quality: float = 30.0) -> np.ndarray | None:
    """IIR notch at the mains frequency (50 or 60 Hz) as SOS, or None above Nyquist."""
    if line_hz <= 0 or line_hz >= sfreq / 2:
        return None
    b, a = signal.iirnotch(line_hz, quality, fs=sfreq)
    return signal.tf2sos(b, a)


def cascade(*sos_list) -> np.ndarray:
    """Concatenate SOS arrays (None entries are skipped) into one cascade."""
    parts = [np.atleast_2d(s) for s in sos_list if s is not None]
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float64)


class SOSFilter:
    """A causal SOS filter over ``n_channels`` that keeps its state between chunks.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
    n_channels : int
    """

    def __init__(self, sos: np.ndarray, n_channels: int):
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.zi = np.zeros((n_channels, self.sos.shape[0], 2))

    def reset(self) -> None:
        """Zero the state."""
        self.zi[:] = 0.0

    def process_inplace(self, x: np.ndarray) -> np.ndarray:
        """Filter ``x`` (n_channels × n_samples, C-contiguous float64) in place."""
        return sosfilt_inplace(self.sos, x, self.zi)
