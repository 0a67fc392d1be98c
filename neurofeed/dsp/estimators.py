"""Mu envelope (band power) estimators, each declaring its group delay.

Every estimator turns a spatially filtered signal (n_channels × n_samples, µV) into the
instantaneous mu-band power (µV², the mean power ``A**2 / 2`` of a rhythm of amplitude ``A``),
one value per input sample, causally and with state kept between chunks.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, signal

from .estimator_base import Estimator
from .filters import cascade, design_bandpass, design_notch, one_pole_alpha
from .kernels import band_power_basis, band_power_dft, cfir_power_inplace, sosfilt_inplace, square_smooth_inplace
from .spectra import welch_psd

ESTIMATORS = ("wcfir", "cfir", "iir", "window", "learned")
DEFAULT_ESTIMATOR = "wcfir"


def grid_size(n_taps: int) -> int:
    """Frequency-grid size for a cFIR of ``n_taps``: a power of two, at least 2048 and at least
    twice the taps (so 2-s taps fit at any rate up to 4096 Hz)."""
    return int(max(2048, 1 << int(np.ceil(np.log2(max(2, 2 * int(n_taps)))))))


#: How fast the penalty of a memory-limited cFIR grows past its memory (s): a tap
#: ``MEMORY_RAMP_S`` beyond ``memory_s`` is penalised by the Gram matrix's diagonal, the total
#: weight of the design grid (``sum_f w(f)``; the penalty is thus relative to the whole weighted
#: spectrum, not to the mu band's share of it), and four times that a ramp later.
MEMORY_RAMP_S = 0.1
#: Taps a memory-limited cFIR keeps past its memory (s): beyond ``memory_s + MEMORY_TAIL_S`` the
#: penalty (25x the diagonal) leaves nothing worth computing.
MEMORY_TAIL_S = 0.5


def memory_taps(sfreq: float, memory_s: float | None, taps_s: float) -> int:
    """Filter length (samples) of a cFIR of ``taps_s`` whose memory is limited to ``memory_s``
    (None: no limit): ``min(taps_s, memory_s + MEMORY_TAIL_S)`` seconds."""
    length_s = taps_s if memory_s is None else min(float(taps_s), float(memory_s) + MEMORY_TAIL_S)
    return int(round(length_s * float(sfreq)))


def design_cfir(sfreq: float, band_hz, delay_s: float, n_taps: int | None = None,
                weights=None, n_fft: int | None = None, memory_s: float | None = None) -> np.ndarray:
    """Complex FIR whose output approximates the analytic band signal delayed by ``delay_s``.

    Least-squares design on a dense frequency grid (the cFIR of Smetanin et al. 2020):
    the ideal response is ``exp(-2j*pi*f*delay_s)`` for ``f`` in the band (positive
    frequencies only) and 0 elsewhere, negative frequencies included. One delay of
    :func:`cfir_designer` (which designs many delays for one weighting at the cost of one).

    Parameters
    ----------
    sfreq : float
    band_hz : (float, float)
    delay_s : float
        Designed delay in seconds (the estimator's group delay).
    n_taps : int, optional
        Filter length; default one second of samples.
    weights : ndarray, shape (n_fft,), optional
        Weight of each grid frequency (``np.fft.fftfreq(n_fft, 1/sfreq)`` order) in the
        least-squares fit; uniform by default. Weighting by the signal's power spectrum gives
        the weighted cFIR (wcFIR).
    n_fft : int, optional
        Size of the frequency grid; default :func:`grid_size` of ``n_taps`` (``weights`` must
        have this length).
    memory_s : float, optional
        Limit the filter's memory: taps at lags ``t > memory_s`` are penalised in the fit by
        ``((t - memory_s) / MEMORY_RAMP_S)**2`` times the Gram matrix's diagonal (a Tikhonov
        term on the long lags). The output forgets a disturbance sooner: with 0.3 s, 95 % of
        the taps' energy fitted on EEGMMIDB S001 baselines lies within 0.24 s (the 2-s fit's:
        0.39-0.43 s), and the gate's hold after a filled 12-sample Muse packet is 0.32 s
        instead of 0.72 s; a fit on a short baseline is regularised (benchmarks/RESULTS.md,
        "A cFIR with a memory"). None: plain least squares.

    Returns
    -------
    h : ndarray of complex128, shape (n_taps,)
    """
    return cfir_designer(sfreq, band_hz, n_taps, weights, n_fft, memory_s)(delay_s)


def cfir_designer(sfreq: float, band_hz, n_taps: int | None = None, weights=None, n_fft: int | None = None,
                  memory_s: float | None = None):
    """The least-squares cFIR of :func:`design_cfir` for one weighting, as a function of the
    designed delay: ``design(delay_s) -> taps``. The normal equations' matrix does not depend on
    the delay, so it is factored once and each delay costs one solve (what the participant's
    accuracy/delay curve needs: ten delays per target). Parameters as :func:`design_cfir`."""
    n_taps = int(n_taps or round(sfreq))
    n_fft = int(n_fft or grid_size(n_taps))
    if n_taps > n_fft:
        raise ValueError(f"n_taps ({n_taps}) must not exceed the grid size n_fft ({n_fft}).")
    freqs = np.fft.fftfreq(n_fft, 1.0 / sfreq)
    in_band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    w = np.ones(n_fft) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.mean()
    # Normal equations of min sum_f w(f) |H(f) - D(f)|^2: on a DFT grid the Gram matrix is
    # Hermitian Toeplitz with first column n_fft * ifft(w), and the right-hand side is
    # n_fft * ifft(w * D). Levinson recursion (solve_toeplitz) takes under a millisecond where
    # an SVD least-squares fit takes ~0.3 s, so refitting at the end of a baseline does not
    # stall the acquisition thread; the tiny ridge guards ill-conditioned spectra.
    col = np.fft.ifft(w)[:n_taps] * n_fft
    col[0] += 1e-9 * n_fft
    penalty = np.zeros(n_taps)
    if memory_s is not None:
        penalty = (np.maximum(np.arange(n_taps) / float(sfreq) - float(memory_s), 0.0) / MEMORY_RAMP_S) ** 2
    factor = None
    if penalty.any():
        # the penalty breaks the Toeplitz structure: one Cholesky factor of the (shorter, see
        # memory_taps) positive definite system, ~1 ms for 205 taps at 256 Hz, ~0.1-0.3 s for
        # 1600 at 2 kHz (in the refit worker)
        gram = linalg.toeplitz(col, np.conj(col))
        gram[np.diag_indices(n_taps)] += col[0].real * penalty
        factor = linalg.cho_factor(gram)

    def design(delay_s: float) -> np.ndarray:
        desired = np.where(in_band, np.exp(-2j * np.pi * freqs * float(delay_s)), 0.0)
        rhs = np.fft.ifft(w * desired)[:n_taps] * n_fft
        if factor is None:
            return linalg.solve_toeplitz((col, np.conj(col)), rhs)
        return linalg.cho_solve(factor, rhs)

    return design


#: The fitted wcFIR's stop-band floor: from STOPBAND_FROM_HZ up, no grid frequency weighs less
#: than STOPBAND_WEIGHT times the mean weight in the mu band. A baseline with little power there
#: (a band-filtered recording, a few seconds of Welch estimate) otherwise leaves the least
#: squares free to pass it: on MI-OpenBCI S02 (125 Hz, band-filtered in acquisition) the fit on
#: a 4-s rest gave +43 dB above 55 Hz and -6 dB at 45-55 Hz; with the floor every fit on the
#: S001 and S02 baselines rejects >= 32.7 dB at 45-55 Hz and above, for -0.026 in r at the 50-ms
#: design (EEGMMIDB; 3x: >= 34 dB for -0.031, 1.5x: >= 31.5 dB for -0.023; benchmarks/RESULTS.md).
STOPBAND_FROM_HZ, STOPBAND_WEIGHT = 20.0, 2.0


def stopband_floor(weights: np.ndarray, sfreq: float, band_hz) -> np.ndarray:
    """``weights`` (on the ``design_cfir`` grid, ``np.fft.fftfreq`` order) with the stop-band
    floor applied: ``max(w, STOPBAND_WEIGHT * mean(w in band))`` for ``|f| >= STOPBAND_FROM_HZ``."""
    w = np.asarray(weights, dtype=float)
    f = np.abs(np.fft.fftfreq(w.size, 1.0 / sfreq))
    in_band = (f >= band_hz[0]) & (f <= band_hz[1])
    floor = STOPBAND_WEIGHT * float(w[in_band].mean()) if in_band.any() else 0.0
    return np.where(f >= max(STOPBAND_FROM_HZ, band_hz[1] + 2.0), np.maximum(w, floor), w)


def fit_weights(x: np.ndarray, sfreq: float, band_hz, n_fft: int = 2048) -> np.ndarray:
    """The weighted cFIR's least-squares weights for one baseline row: its spectrum
    (:func:`psd_weights`) with the stop-band floor (:func:`stopband_floor`). The one recipe the
    live fit and the participant's accuracy/delay curve share."""
    return stopband_floor(psd_weights(x, sfreq, n_fft), sfreq, band_hz)


def psd_weights(x: np.ndarray, sfreq: float, n_fft: int = 2048) -> np.ndarray:
    # n_fft must equal the design grid (grid_size(n_taps) in WCFIREnvelope.fit)
    """Welch power spectrum of ``x`` on the ``design_cfir`` grid, for the weighted cFIR."""
    f, pxx = welch_psd(x, sfreq, onesided=False)
    grid = np.fft.fftfreq(n_fft, 1.0 / sfreq)
    order = np.argsort(f)
    return np.interp(grid, f[order], pxx[order]) + 1e-12


class IIREnvelope(Estimator):
    """Butterworth band-pass (+ optional notch) → square → one-pole smoothing.

    The NFBLab-style estimator. Group delay: the time its amplitude output takes to cross half
    of a step in the amplitude of a rhythm at the band centre (computed at construction). It
    is close to the band-pass group delay at the centre plus the smoother's ``(1 - alpha) /
    alpha`` samples, but the band-pass transient adds a few ms that the sum leaves out.

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
        self.zi_unit = signal.sosfilt_zi(self.sos)
        self.alpha = one_pole_alpha(smoothing_s, self.sfreq)
        self.pstate = np.zeros(self.n_channels)
        self.seeded = False
        self._delay_s = None

    def seed(self, x0):
        self.zi[:] = np.asarray(x0, dtype=float)[:, None, None] * self.zi_unit[None]
        self.seeded = True

    def power_response(self, freqs_hz):
        from .responses import sos_response

        return np.abs(sos_response(self.sos, freqs_hz, self.sfreq)) ** 2

    def process_inplace(self, x):
        if not self.seeded:
            self.seed(x[:, 0])
        sosfilt_inplace(self.sos, x, self.zi)
        return square_smooth_inplace(x, self.alpha, self.pstate)


class CFIREnvelope(Estimator):
    """Complex FIR analytic-signal estimator → |y|²/2 → optional one-pole smoothing.

    Group delay: measured (:meth:`measure_step_delay_s`); a little longer than the designed
    ``delay_s`` because a causal filter with a short delay cannot have a symmetric step
    response (about +25 ms at 50 ms, +10 ms at 100 ms for an 8–13 Hz band).

    Parameters
    ----------
    sfreq, band_hz, n_channels
    delay_s : float
        Designed delay of the complex filter in seconds.
    taps_s : float
        Filter length in seconds (1 s as in Smetanin et al. 2020).
    smoothing_s : float
        Time constant of the power smoother (0: none).
    taps : ndarray of complex, shape (n_taps,) or (n_channels, n_taps), optional
        Precomputed taps (e.g. fitted elsewhere); ``delay_s`` must be their designed delay.
    memory_s : float, optional
        Limit the filter's memory (:func:`design_cfir`); the taps then last
        :func:`memory_taps` (at most ``taps_s``). None: the plain least-squares design.
    """

    name = "cfir"

    def __init__(self, sfreq, band_hz, n_channels, delay_s=0.05, taps_s=1.0, smoothing_s=0.0, taps=None,
                 memory_s=None):
        super().__init__(sfreq, band_hz, n_channels)
        self.delay_s = float(delay_s)
        self.memory_limit_s = None if memory_s is None else float(memory_s)
        self.n_taps = memory_taps(self.sfreq, self.memory_limit_s, taps_s) if taps is None else np.shape(taps)[-1]
        if taps is None:
            taps = design_cfir(self.sfreq, self.band_hz, self.delay_s, self.n_taps, memory_s=self.memory_limit_s)
        self.set_taps(taps)
        self.alpha = one_pole_alpha(smoothing_s, self.sfreq)
        self.pstate = np.zeros(self.n_channels)
        self._delay_s = None

    def memory_s(self) -> float:
        """The whole length of the taps (s): a memory-limited design's output still depends,
        faintly, on all of them (not only on ``memory_limit_s``)."""
        return self.n_taps / self.sfreq

    def describe(self) -> dict:
        """As :meth:`Estimator.describe`, with the memory limit where one is set."""
        d = super().describe()
        if self.memory_limit_s is not None:
            d["memory_limit_s"] = self.memory_limit_s
        return d

    def set_taps(self, taps) -> None:
        """Install new taps (one set for all channels, or one per channel) and clear the history."""
        h = np.broadcast_to(np.asarray(taps, dtype=complex), (self.n_channels, self.n_taps))
        # |y|^2 / 2 so that a rhythm of amplitude A reads A^2/2, like the mean of x^2.
        self.h_re = np.ascontiguousarray(h.real / np.sqrt(2.0))
        self.h_im = np.ascontiguousarray(h.imag / np.sqrt(2.0))
        self.hist = np.zeros((self.n_channels, 2 * self.n_taps))
        self.pos = np.zeros(1, dtype=np.int64)
        self.pstate = np.zeros(self.n_channels)
        self.seeded = False

    def seed(self, x0):
        """Prefill the history with ``x0`` (n_channels,), as if it had been constant for ``n_taps``."""
        self.hist[:] = np.asarray(x0, dtype=float)[:, None]
        self.seeded = True

    def take_history(self, other: "CFIREnvelope") -> bool:
        """Continue from ``other``'s input history (same channels and length): the new taps'
        output is valid at once, with no start-up transient — what a mid-session change of the
        designed delay needs. Returns False (nothing taken) if the shapes differ."""
        if not isinstance(other, CFIREnvelope) or other.hist.shape != self.hist.shape or not other.seeded:
            return False
        self.hist[:] = other.hist
        self.pos[:] = other.pos
        self.pstate[:] = other.pstate
        self.seeded = True
        return True

    def taps(self) -> np.ndarray:
        """The complex taps per channel (n_channels × n_taps) as designed or fitted."""
        return (self.h_re + 1j * self.h_im) * np.sqrt(2.0)

    def power_response(self, freqs_hz):
        """|H(f)|² per channel, the worst (largest) over channels (an output magnitude
        ``|y|`` of a real sinusoid at f is about ``|H(f)|`` times its amplitude; the mirror
        frequency -f also leaks, so the larger of ``|H(f)|`` and ``|H(-f)|`` counts)."""
        from .responses import fir_response

        f = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
        if f.size > 16:  # a band scan: one FFT per channel on a 0.05-Hz grid, interpolated
            return self._power_response_fft(f)
        out = np.zeros(f.shape)
        for h in self.taps():
            out = np.maximum(out, np.maximum(np.abs(fir_response(h, f, self.sfreq)),
                                             np.abs(fir_response(h, -f, self.sfreq))) ** 2)
        return out

    def _power_response_fft(self, f: np.ndarray) -> np.ndarray:
        """:meth:`power_response` at many frequencies: |FFT(h)|² on a grid of at most 0.05 Hz
        (the 1–2-s taps' response varies over ~0.5 Hz), linearly interpolated, worst of ±f and
        of the channels. A few ms where the exact sum takes seconds at 2–4 kHz."""
        n = int(2 ** np.ceil(np.log2(max(self.sfreq / 0.05, 2 * self.n_taps))))
        grid = np.fft.fftshift(np.fft.fftfreq(n, 1.0 / self.sfreq))
        out = np.zeros(f.shape)
        for h in self.taps():
            p = np.fft.fftshift(np.abs(np.fft.fft(h, n)) ** 2)
            out = np.maximum(out, np.maximum(np.interp(f, grid, p), np.interp(-f, grid, p)))
        return out

    def process_inplace(self, x):
        if not self.seeded:
            self.seed(x[:, 0])
        return cfir_power_inplace(x, self.h_re, self.h_im, self.hist, self.pos, self.alpha, self.pstate)


class WCFIREnvelope(CFIREnvelope):
    """Weighted cFIR fitted to the participant: least squares weighted by each channel's own
    baseline spectrum (Smetanin et al. 2020), 2-s taps.

    Until :meth:`fit` is called (at the end of the baseline) it runs as a uniform-weight cFIR of
    the same length and delay. The fit's weights keep a stop-band floor (:func:`stopband_floor`),
    so that it keeps at least the uniform design's rejection from 20 Hz up wherever the baseline
    happens to hold little power. Group delay: measured after the fit (:meth:`measure_step_delay_s`).
    """

    name = "wcfir"
    needs_fit = True

    def __init__(self, sfreq, band_hz, n_channels, delay_s=0.05, taps_s=2.0, smoothing_s=0.0, memory_s=None):
        super().__init__(sfreq, band_hz, n_channels, delay_s=delay_s, taps_s=taps_s, smoothing_s=smoothing_s,
                         memory_s=memory_s)
        self.fitted = False

    def fit(self, x: np.ndarray) -> None:
        """Fit the taps to ``x`` (n_channels × n_samples, the spatially filtered baseline)."""
        n_fft = grid_size(self.n_taps)
        taps = np.array([design_cfir(self.sfreq, self.band_hz, self.delay_s, self.n_taps,
                                     weights=fit_weights(row, self.sfreq, self.band_hz, n_fft), n_fft=n_fft,
                                     memory_s=self.memory_limit_s)
                         for row in x])
        self.set_taps(taps)
        self.fitted = True
        self._delay_s = None


class WindowBandPower(Estimator):
    """Sliding-window band power (Hann-tapered periodogram at the band's DFT bins), for reports.

    Recomputed at each chunk over the last ``window_s`` seconds and held for the chunk's
    samples. Group delay: about ``window_s / 2`` (0.5 s for a 1-s window), measured: never
    the default feedback path.
    """

    name = "window"

    def __init__(self, sfreq, band_hz, n_channels, window_s=1.0):
        super().__init__(sfreq, band_hz, n_channels)
        self.n = int(round(window_s * self.sfreq))
        self.window = signal.get_window("hann", self.n)
        self.hist = np.zeros((self.n_channels, self.n))
        self.basis = band_power_basis(self.n, self.sfreq, self.band_hz[0], self.band_hz[1], self.window)
        self._p = np.zeros(self.n_channels)
        self.bandwidth = self.band_hz[1] - self.band_hz[0]
        self.seeded = False
        self._delay_s = None  # about window_s / 2

    def seed(self, x0):
        self.hist[:] = np.asarray(x0, dtype=float)[:, None]
        self.seeded = True

    def power_response(self, freqs_hz):
        """Sum over the band's bins of |tapered DFT row at f|² (the periodogram of a tone at f)."""
        from .responses import fir_response

        re, im = self.basis[0], self.basis[1]
        f = np.atleast_1d(np.asarray(freqs_hz, dtype=float))
        out = np.zeros(f.shape)
        if f.size > 16:  # a band scan: FFTs on a 0.05-Hz grid, interpolated (as CFIREnvelope)
            n = int(2 ** np.ceil(np.log2(max(self.sfreq / 0.05, 2 * self.n))))
            grid = np.fft.fftshift(np.fft.fftfreq(n, 1.0 / self.sfreq))
            for row in re + 1j * im:
                out += np.interp(f, grid, np.fft.fftshift(np.abs(np.fft.fft(row[::-1], n)) ** 2))
            return out
        for row in re + 1j * im:  # the mean removal in band_power_dft only lowers DC further
            out += np.abs(fir_response(row[::-1], f, self.sfreq)) ** 2
        return out

    def memory_s(self) -> float:
        """The window's length (s)."""
        return self.n / self.sfreq

    def process_inplace(self, x):
        if not self.seeded:
            self.seed(x[:, 0])
        n = x.shape[1]
        if n >= self.n:
            self.hist[:] = x[:, n - self.n:]
        else:
            self.hist[:, :-n] = self.hist[:, n:]
            self.hist[:, -n:] = x
        p = band_power_dft(self.hist, *self.basis, self._p)
        x[:] = (p * self.bandwidth)[:, None]
        return x


def make_estimator(name: str, sfreq: float, band_hz, n_channels: int, delay_s: float = 0.05,
                   smoothing_s: float | None = None, notch_hz: float | None = None,
                   memory_s: float | None = None) -> Estimator:
    """Build an estimator by name: ``"wcfir"`` (default), ``"cfir"``, ``"iir"``, ``"window"`` or ``"learned"``.
    ``memory_s`` limits a (weighted) cFIR's memory (:func:`design_cfir`); the others have none to limit."""
    if memory_s is not None and name not in ("wcfir", "cfir"):
        raise ValueError(f"memory_s limits a (weighted) cFIR's taps; the {name!r} estimator has none.")
    if name == "wcfir":
        return WCFIREnvelope(sfreq, band_hz, n_channels, delay_s=delay_s, smoothing_s=smoothing_s or 0.0,
                             memory_s=memory_s)
    if name == "cfir":
        return CFIREnvelope(sfreq, band_hz, n_channels, delay_s=delay_s, smoothing_s=smoothing_s or 0.0,
                            memory_s=memory_s)
    if name == "iir":
        return IIREnvelope(sfreq, band_hz, n_channels, smoothing_s=0.05 if smoothing_s is None else smoothing_s,
                           notch_hz=notch_hz)
    if name == "window":
        return WindowBandPower(sfreq, band_hz, n_channels)
    if name == "learned":  # the TCN of neurofeed.dsp.learned (shipped design nearest delay_s)
        from .learned import LearnedEnvelope

        return LearnedEnvelope(sfreq, band_hz, n_channels, delay_s=delay_s, smoothing_s=smoothing_s or 0.0)
    raise ValueError(f"Unknown estimator {name!r}; expected one of {', '.join(ESTIMATORS)}.")
