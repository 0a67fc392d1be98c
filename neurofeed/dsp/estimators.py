"""Mu envelope (band power) estimators, each declaring its group delay.

Every estimator turns a spatially filtered signal (n_channels × n_samples, µV) into the
instantaneous mu-band power (µV², the mean power ``A**2 / 2`` of a rhythm of amplitude ``A``),
one value per input sample, causally and with state kept between chunks.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .filters import cascade, design_bandpass, design_notch, sos_group_delay_s
from .kernels import cfir_power_inplace, goertzel_band_power, sosfilt_inplace, square_smooth_inplace

ESTIMATORS = ("cfir", "iir", "window")


def smoothing_alpha(sfreq: float, smoothing_s: float) -> float:
    """One-pole smoothing factor for a time constant ``smoothing_s`` (0 means none)."""
    if smoothing_s <= 0:
        return 1.0
    return float(1.0 - np.exp(-1.0 / (smoothing_s * sfreq)))


def smoothing_delay_s(sfreq: float, alpha: float) -> float:
    """Low-frequency group delay of the one-pole smoother, ``(1 - alpha) / alpha`` samples."""
    return (1.0 - alpha) / alpha / sfreq


def design_cfir(sfreq: float, band_hz, delay_s: float, n_taps: int | None = None,
                weights=None, n_fft: int = 2048) -> np.ndarray:
    """Complex FIR whose output approximates the analytic band signal delayed by ``delay_s``.

    Least-squares design on a dense frequency grid (the cFIR of Smetanin et al. 2020):
    the ideal response is ``exp(-2j*pi*f*delay_s)`` for ``f`` in the band (positive
    frequencies only) and 0 elsewhere, negative frequencies included.

    Parameters
    ----------
    sfreq : float
    band_hz : (float, float)
    delay_s : float
        Designed delay in seconds (the estimator's group delay), >= 0.
    n_taps : int, optional
        Filter length; default one second of samples.
    weights : ndarray, shape (n_fft,), optional
        Weight of each grid frequency (``np.fft.fftfreq(n_fft, 1/sfreq)`` order) in the
        least-squares fit; uniform by default. Weighting by the signal's power spectrum gives
        the weighted cFIR (wcFIR).
    n_fft : int
        Size of the frequency grid.

    Returns
    -------
    h : ndarray of complex128, shape (n_taps,)
    """
    n_taps = int(n_taps or round(sfreq))
    freqs = np.fft.fftfreq(n_fft, 1.0 / sfreq)
    desired = np.where((freqs >= band_hz[0]) & (freqs <= band_hz[1]),
                       np.exp(-2j * np.pi * freqs * delay_s), 0.0)
    basis = np.exp(-2j * np.pi * np.outer(freqs, np.arange(n_taps)) / sfreq)
    w = np.ones(n_fft) if weights is None else np.asarray(weights, dtype=float)
    sw = np.sqrt(w / w.mean())
    h, *_ = np.linalg.lstsq(basis * sw[:, None], desired * sw, rcond=None)
    return h


def psd_weights(x: np.ndarray, sfreq: float, n_fft: int = 2048) -> np.ndarray:
    """Welch power spectrum of ``x`` on the ``design_cfir`` grid, for the weighted cFIR."""
    nper = int(min(len(x), 2 * round(sfreq)))
    f, pxx = signal.welch(x, fs=sfreq, nperseg=nper, return_onesided=False)
    grid = np.fft.fftfreq(n_fft, 1.0 / sfreq)
    order = np.argsort(f)
    return np.interp(grid, f[order], pxx[order]) + 1e-12


class Estimator:
    """Base class. Subclasses set ``name`` and ``group_delay_s`` and implement ``process``."""

    name = "base"
    group_delay_s = 0.0

    def __init__(self, sfreq: float, band_hz, n_channels: int):
        self.sfreq = float(sfreq)
        self.band_hz = (float(band_hz[0]), float(band_hz[1]))
        self.n_channels = int(n_channels)

    def process_inplace(self, x: np.ndarray) -> np.ndarray:
        """Replace ``x`` (n_channels × n_samples, µV) by the mu power (µV²) per sample."""
        raise NotImplementedError

    def describe(self) -> dict:
        """Name, band and declared group delay, for sidecars and reports."""
        return {"estimator": self.name, "band_hz": list(self.band_hz), "group_delay_s": self.group_delay_s}


class IIREnvelope(Estimator):
    """Butterworth band-pass (+ optional notch) → square → one-pole smoothing.

    The NFBLab-style estimator. Group delay: the band-pass group delay at the band centre
    plus the smoother's low-frequency delay ``(1 - alpha) / alpha`` samples.

    Parameters
    ----------
    sfreq, band_hz, n_channels
    order : int
        Butterworth order (band-pass has ``2 * order`` poles).
    smoothing_s : float
        Time constant of the power smoother in seconds.
    notch_hz : float or None
        Mains frequency to notch (50 or 60), or None.
    """

    name = "iir"

    def __init__(self, sfreq, band_hz, n_channels, order=2, smoothing_s=0.05, notch_hz=None):
        super().__init__(sfreq, band_hz, n_channels)
        band_sos = design_bandpass(self.sfreq, self.band_hz, order)
        self.sos = cascade(design_notch(self.sfreq, notch_hz) if notch_hz else None, band_sos)
        self.zi = np.zeros((self.n_channels, self.sos.shape[0], 2))
        self.alpha = smoothing_alpha(self.sfreq, smoothing_s)
        self.pstate = np.zeros(self.n_channels)
        centre = float(np.sqrt(self.band_hz[0] * self.band_hz[1]))
        self.group_delay_s = sos_group_delay_s(self.sos, centre, self.sfreq) + smoothing_delay_s(self.sfreq, self.alpha)

    def process_inplace(self, x):
        sosfilt_inplace(self.sos, x, self.zi)
        return square_smooth_inplace(x, self.alpha, self.pstate)


class CFIREnvelope(Estimator):
    """Complex FIR analytic-signal estimator → |y|²/2 → optional one-pole smoothing.

    Group delay: the designed ``delay_s`` plus the smoother's delay.

    Parameters
    ----------
    sfreq, band_hz, n_channels
    delay_s : float
        Designed delay of the complex filter in seconds.
    n_taps : int, optional
        Filter length (default: one second).
    smoothing_s : float
        Time constant of the power smoother (0: none).
    taps : ndarray of complex, optional
        Precomputed taps (e.g. a weighted cFIR fitted on baseline data); ``delay_s`` must be
        the delay they were designed for.
    """

    name = "cfir"

    def __init__(self, sfreq, band_hz, n_channels, delay_s=0.05, n_taps=None, smoothing_s=0.0, taps=None):
        super().__init__(sfreq, band_hz, n_channels)
        h = design_cfir(self.sfreq, self.band_hz, delay_s, n_taps) if taps is None else np.asarray(taps)
        # |y|^2 / 2 so that a rhythm of amplitude A reads A^2/2, like the mean of x^2.
        self.h_re = np.ascontiguousarray(h.real / np.sqrt(2.0))
        self.h_im = np.ascontiguousarray(h.imag / np.sqrt(2.0))
        self.hist = np.zeros((self.n_channels, 2 * len(h)))
        self.pos = np.zeros(1, dtype=np.int64)
        self.alpha = smoothing_alpha(self.sfreq, smoothing_s)
        self.pstate = np.zeros(self.n_channels)
        self.delay_s = float(delay_s)
        self.group_delay_s = self.delay_s + smoothing_delay_s(self.sfreq, self.alpha)

    def process_inplace(self, x):
        return cfir_power_inplace(x, self.h_re, self.h_im, self.hist, self.pos, self.alpha, self.pstate)


class WindowBandPower(Estimator):
    """Sliding-window band power (Hann-tapered periodogram via Goertzel), for reports.

    Recomputed at each chunk over the last ``window_s`` seconds and held for the chunk's
    samples. Group delay: ``window_s / 2`` (0.5 s for a 1-s window): never the default
    feedback path.
    """

    name = "window"

    def __init__(self, sfreq, band_hz, n_channels, window_s=1.0):
        super().__init__(sfreq, band_hz, n_channels)
        self.n = int(round(window_s * self.sfreq))
        self.window = signal.get_window("hann", self.n)
        self.hist = np.zeros((self.n_channels, self.n))
        self.bandwidth = self.band_hz[1] - self.band_hz[0]
        self.group_delay_s = window_s / 2.0

    def process_inplace(self, x):
        n = x.shape[1]
        if n >= self.n:
            self.hist[:] = x[:, n - self.n:]
        else:
            self.hist[:, :-n] = self.hist[:, n:]
            self.hist[:, -n:] = x
        p = goertzel_band_power(self.hist, self.sfreq, self.band_hz[0], self.band_hz[1], self.window)
        x[:] = (p * self.bandwidth)[:, None]
        return x


def make_estimator(name: str, sfreq: float, band_hz, n_channels: int, delay_s: float = 0.05,
                   smoothing_s: float | None = None, notch_hz: float | None = None, taps=None) -> Estimator:
    """Build an estimator by name: ``"cfir"`` (default), ``"iir"`` or ``"window"``."""
    if name == "cfir":
        return CFIREnvelope(sfreq, band_hz, n_channels, delay_s=delay_s,
                            smoothing_s=0.0 if smoothing_s is None else smoothing_s, taps=taps)
    if name == "iir":
        return IIREnvelope(sfreq, band_hz, n_channels, smoothing_s=0.05 if smoothing_s is None else smoothing_s,
                           notch_hz=notch_hz)
    if name == "window":
        return WindowBandPower(sfreq, band_hz, n_channels)
    raise ValueError(f"Unknown estimator {name!r}; expected one of {', '.join(ESTIMATORS)}.")
