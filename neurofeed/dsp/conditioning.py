"""Signal conditioning before the spatial filter: electrode offset and drift removal, line notch.

The ADS1299 of a Cyton is DC-coupled: every electrode carries its own offset (tens of mV) and a
slow drift. A common-average or Laplacian reference subtracts channels whose offsets differ by
millivolts, so offsets must go per channel before the spatial filter, and causally.
"""

from __future__ import annotations

import copy

import numpy as np
from scipy import signal

from ..core.errors import NeurofeedError
from .filters import SOSFilter, cascade, design_notch
from .responses import sos_group_delay_s, sos_response

__all__ = ["HIGHPASS_HZ", "design_conditioning", "Conditioner"]

#: Corner of the offset/drift high-pass (Hz). Low enough that blinks (0.5–7 Hz) stay visible to
#: the ocular regression and the mu band is untouched; its delay at 8–13 Hz is about 1 ms.
HIGHPASS_HZ = 0.5


def design_conditioning(sfreq: float, line_hz: float | None, highpass_hz: float = HIGHPASS_HZ,
                        highpass_order: int = 2, notch_q: float = 30.0) -> np.ndarray:
    """Offset/drift high-pass and line notch as one SOS cascade.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    line_hz : float or None
        Mains frequency (50 or 60 Hz). No notch is designed at or above Nyquist (the mains is
        then outside the recorded band, and the estimator's own rejection is checked instead).
    highpass_hz : float
        Corner of the Butterworth high-pass in Hz. Order 2 puts a double zero at DC, so both a
        constant offset and a linear drift give zero output in steady state.
    highpass_order : int
    notch_q : float
        Quality factor of the notch (``scipy.signal.iirnotch``); 30 gives a -3 dB width of
        line_hz / 30 (1.7 Hz at 50 Hz).

    Returns
    -------
    sos : ndarray, shape (n_sections, 6)
    """
    nyq = sfreq / 2.0
    if not 0 < highpass_hz < nyq:
        raise NeurofeedError(f"Conditioning high-pass corner {highpass_hz} Hz must lie in (0, {nyq:g}) Hz.")
    if line_hz and line_hz not in (50, 60, 50.0, 60.0):
        raise NeurofeedError(f"line_hz {line_hz!r} is invalid; the mains frequency is 50 or 60 Hz.")
    hp = signal.butter(highpass_order, highpass_hz, btype="highpass", fs=sfreq, output="sos")
    notch = design_notch(sfreq, line_hz, notch_q) if line_hz else None
    if line_hz and abs(line_hz - nyq) < 1e-9:
        # mains exactly at Nyquist (50 Hz at 100 Hz): iirnotch cannot place it there, so a
        # biquad with a double zero at z = -1 and poles at -r, unit gain at DC, same width
        r = float(np.exp(-np.pi * (line_hz / notch_q) / sfreq))
        g = (1.0 + r) ** 2 / 4.0
        notch = np.array([[g, 2 * g, g, 1.0, 2 * r, r * r]])
    return cascade(hp, notch)


class Conditioner:
    """Causal per-channel offset/drift high-pass + line notch, state seeded from the first sample.

    Delay: the cascade's group delay averaged over the mu band, about 1 ms at 8–13 Hz
    (:meth:`group_delay_s`); declared in ``MuChain.group_delay_s``.

    Parameters
    ----------
    sfreq : float
    n_channels : int
    line_hz : float or None
    highpass_hz : float

    Notes
    -----
    As in MNE-LSL, the state starts at the steady state for a constant input equal to each
    channel's first sample (``scipy.signal.sosfilt_zi`` × x0), so a 50-mV offset gives no
    start-up transient: the output is ≈0 from sample 0.
    """

    def __init__(self, sfreq: float, n_channels: int, line_hz: float | None, highpass_hz: float = HIGHPASS_HZ):
        self.sfreq = float(sfreq)
        self.line_hz = line_hz
        self.highpass_hz = float(highpass_hz)
        self.filter = SOSFilter(design_conditioning(self.sfreq, line_hz, self.highpass_hz), n_channels,
                                seed_first=True)

    def like(self, n_channels: int | None = None) -> "Conditioner":
        """A conditioner of this one's design (rate, line frequency, high-pass, the cascade in
        use) for ``n_channels`` (default: as many as this one), its state fresh: seeded from the
        first chunk it filters."""
        new = copy.copy(self)
        n = self.filter.zi.shape[0] if n_channels is None else int(n_channels)
        new.filter = SOSFilter(self.sos.copy(), n, seed_first=True)
        return new

    @property
    def sos(self) -> np.ndarray:
        """The cascade (n_sections × 6): high-pass sections, then the notch."""
        return self.filter.sos

    @sos.setter
    def sos(self, sos) -> None:
        self.filter = SOSFilter(sos, self.filter.zi.shape[0], seed_first=True)

    @property
    def zi(self) -> np.ndarray:
        """State per channel (n_channels × n_sections × 2)."""
        return self.filter.zi

    def seed(self, x0: np.ndarray) -> None:
        """Start the state at the steady state of a constant input ``x0`` (n_channels,) µV."""
        self.filter.seed(x0)

    def reset(self) -> None:
        """Forget the state; the next chunk seeds it again from its first sample."""
        self.filter.reset()

    def process_inplace(self, x: np.ndarray) -> np.ndarray:
        """Condition ``x`` (n_channels × n_samples µV, finite) in place and return it."""
        return self.filter.process_inplace(x)

    def response(self, freqs_hz) -> np.ndarray:
        """Complex response at ``freqs_hz`` (see :func:`neurofeed.dsp.responses.sos_response`)."""
        return sos_response(self.sos, freqs_hz, self.sfreq)

    def group_delay_s(self, band_hz) -> float:
        """Mean group delay (s) over the band edges and centre."""
        lo, hi = band_hz
        return float(np.mean(sos_group_delay_s(self.sos, [lo, 0.5 * (lo + hi), hi], self.sfreq)))
