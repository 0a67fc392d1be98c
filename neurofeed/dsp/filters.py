"""Filter design (scipy.signal) and stateful causal application (numba kernel)."""

from __future__ import annotations

import numpy as np
from scipy import signal

from .kernels import sosfilt_inplace


def one_pole_alpha(tau_s: float, sfreq: float, n_samples: int = 1) -> float:
    """Weight of a new value in a one-pole (exponential) smoother with time constant ``tau_s``,
    applied once per ``n_samples`` samples: ``1 - exp(-n / (tau_s * sfreq))`` (1 when ``tau_s`` <= 0).

    The one definition of the smoothing coefficient in neurofeed: estimators' power smoothing
    (one sample at a time), the bar's smoothing and the adaptive rate (once per update with the
    update's sample count, so the time constant is ``tau_s`` whatever the chunk size) and the display's
    easing (once per painted frame, ``n_samples = frame interval * sfreq``). Delay: the smoother's
    low-frequency group delay is ``tau_s`` (exactly ``(1 - alpha) / alpha`` samples per step).
    """
    if tau_s <= 0:
        return 1.0
    return float(1.0 - np.exp(-n_samples / (tau_s * sfreq)))


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
    seed_first : bool
        Start the state at the steady state of a constant input equal to each channel's first
        sample (``scipy.signal.sosfilt_zi`` × x0, as MNE-LSL does), so an offset makes no
        start-up transient; False starts from zero state (``scipy.signal.sosfilt`` default).
    """

    def __init__(self, sos: np.ndarray, n_channels: int, seed_first: bool = False):
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.zi = np.zeros((n_channels, self.sos.shape[0], 2))
        self.zi_unit = signal.sosfilt_zi(self.sos)  # (n_sections, 2): steady state for a unit step
        self.seed_first = seed_first
        self.seeded = not seed_first

    def seed(self, x0: np.ndarray) -> None:
        """Set the state to the steady state of a constant input ``x0`` (n_channels,)."""
        self.zi[:] = np.asarray(x0, dtype=float)[:, None, None] * self.zi_unit[None]
        self.seeded = True

    def reset(self) -> None:
        """Zero the state (or, with ``seed_first``, seed it again from the next chunk)."""
        self.zi[:] = 0.0
        self.seeded = not self.seed_first

    def process_inplace(self, x: np.ndarray) -> np.ndarray:
        """Filter ``x`` (n_channels × n_samples, C-contiguous float64) in place."""
        if not self.seeded:
            self.seed(x[:, 0])
        return sosfilt_inplace(self.sos, x, self.zi)
