"""Signal quality per channel and the artifact gates: non-finite, railed, flat, EMG, blink."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from .filters import design_bandpass, one_pole_alpha
from .kernels import ar_interpolate, fill_errors, hold_last_finite, quality_step

NONFINITE, RAILED, FLAT, EMG, BLINK, FILLED = 1, 2, 4, 8, 16, 32
FLAG_NAMES = {NONFINITE: "nan", RAILED: "railed", FLAT: "flat", EMG: "emg", BLINK: "blink", FILLED: "filled"}

#: The longest gap filled instead of held (s): one lost Muse notification (12 samples at 256 Hz,
#: 46.9 ms; 13 gap samples once a drifting LSL stream is resampled), a few lost Cyton, Daisy or
#: Ganglion packets. ``max_fill_samples``: 13 at 250 and 256 Hz, 7 at 125 Hz, 10 at 200 Hz. Why
#: half a 10-Hz cycle: up to it the two-sided AR fill spans the gap with at most a quarter cycle
#: from each side, and its in-band error on real EEG stays below the straight line's and the
#: held value's (S001R03 C3–TP9, 12 samples at 256 Hz: median 0.20 of the mu-band RMS against the
#: line's 0.28; benchmarks/RESULTS.md); beyond it the gap holds most of a cycle the model would be
#: guessing, and two lost packets in a row (24 samples) are held and gated as before.
MAX_FILL_S = 0.05

#: The fill's AR model: order ``sfreq / 16`` (16 at 250–256 Hz, 62.5 ms of lags: more than half
#: a cycle of the slowest mu rhythm, so the model holds the rhythm's phase), fitted by Burg's
#: method on the channel's last :data:`AR_FIT_S` seconds (enough cycles of 8–13 Hz for a stable
#: spectral peak; longer windows blur a rhythm that waxes and wanes within seconds).
AR_ORDER_PER_S = 1.0 / 16.0
AR_FIT_S = 2.0


def max_fill_samples(sfreq: float) -> int:
    """The longest run of gap samples filled at ``sfreq`` (:data:`MAX_FILL_S`, rounded up)."""
    return max(1, int(np.ceil(MAX_FILL_S * float(sfreq) - 1e-9)))


def ar_order(sfreq: float) -> int:
    """The fill's AR model order at ``sfreq`` (:data:`AR_ORDER_PER_S`; at least 4)."""
    return max(4, int(round(AR_ORDER_PER_S * float(sfreq))))


def fill_r_set(order: int) -> np.ndarray:
    """How many samples after a gap the fill hold is measured for: 1, 2, 4, 8, ... up to the
    model order (beyond it later samples add nothing); a fill with ``r`` following samples
    takes the hold of the largest entry <= ``r``."""
    r = [1]
    while r[-1] * 2 < order:
        r.append(r[-1] * 2)
    if r[-1] != order:
        r.append(order)
    return np.asarray(r, dtype=np.int64)


def flag_names(flags: int) -> tuple[str, ...]:
    """Names of the bits set in a quality bitmask."""
    return tuple(name for bit, name in FLAG_NAMES.items() if flags & bit)


@dataclass
class QualityConfig:
    """Thresholds of the artifact gates (µV, seconds); a threshold of 0 disables its gate.

    ``emg_uv`` and ``blink_uv`` are the fixed absolute caps: they are the thresholds until the
    chain is calibrated on the person's baseline (:meth:`QualityMonitor.calibrate`), and the
    calibrated thresholds never exceed them. ``hold_s`` is used only until the chain sets the
    hold from its estimator's own impulse response (``MuChain`` does at construction).
    """

    rail_uv: float = 1000.0
    flat_uv: float = 0.5
    emg_uv: float = 10.0
    blink_uv: float = 120.0
    hold_s: float = 0.5
    gate_railed: bool = True
    gate_flat: bool = True


#: k in median + k·MAD (MAD scaled to σ, 1.4826·MAD) for the calibrated thresholds. Chosen on
#: S001 R03–R06 (benchmarks/artifacts.py): high enough that a clean baseline's own fluctuations
#: (EMG-band RMS, frontal EEG) stay below, low enough that blinks and jaw clenches exceed it.
EMG_K, BLINK_K = 6.0, 6.0


def robust_threshold(values: np.ndarray, k: float, cap: float) -> float:
    """``min(cap, median + k · 1.4826 · MAD)`` of ``values`` (µV); ``cap`` <= 0 disables (returns 0).

    Parameters
    ----------
    values : ndarray
        Baseline samples of the detector (e.g. EMG-band RMS, |high-passed frontal|), µV.
    k : float
    cap : float
        Fixed absolute cap from the protocol (µV).

    Returns
    -------
    threshold : float
        µV.
    """
    if cap <= 0:
        return 0.0
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float(cap)
    med = float(np.median(v))
    mad = 1.4826 * float(np.median(np.abs(v - med)))
    return float(min(cap, med + k * mad))


#: When a filled gap counts as measurably disturbing the output: its expected (RMS) effect on
#: the instantaneous SI (log10 power, against the baseline's median amplitude) exceeds this
#: fraction of the SI's own spread over the baseline (its standard deviation, ~0.6 on S001's
#: Cyton montage). Below it the disturbance is lost in the estimate's own fluctuation.
FILL_SI_FRACTION = 0.1


def fill_gaps(x: np.ndarray, sfreq: float, max_fill: int | None = None) -> np.ndarray:
    """``x`` (n_channels × n_samples) with its non-finite samples filled as the live quality
    stage fills them in one chunk (see :func:`neurofeed.dsp.kernels.quality_step`): a run of at
    most ``max_fill`` (default :func:`max_fill_samples`) between two finite samples filled by
    :func:`~neurofeed.dsp.kernels.ar_interpolate` from the row's clean past and the samples
    after it (linearly while the past is too short for a model), any other run held at the last
    finite value (the first finite value before any, 0 for an all-NaN row). A new array."""
    x = np.array(x, dtype=float)
    max_fill = max_fill_samples(sfreq) if max_fill is None else int(max_fill)
    p, n_fit = ar_order(sfreq), int(round(AR_FIT_S * sfreq))
    out = np.empty(max_fill + 1)
    for row in x:
        bad = ~np.isfinite(row)
        if not bad.any():
            continue
        if bad.all():
            row[:] = 0.0
            continue
        first = int(np.argmax(~bad))
        row[:first] = row[first]
        edges = np.flatnonzero(np.diff(np.concatenate(([0], bad.view(np.int8), [0]))))
        clean = 0  # samples since the last held run, as the live stage counts them
        prev_end = 0
        for a, b in zip(edges[::2], edges[1::2]):  # runs [a, b)
            clean += a - prev_end
            prev_end = b
            if a == 0:
                clean = 0
                continue
            g = b - a
            if b < row.size and g <= max_fill:
                r = 1
                while r < p and b + r < row.size and np.isfinite(row[b + r]):
                    r += 1
                n_past = min(n_fit, clean)
                done = n_past >= 2 * p + 1 and ar_interpolate(row[a - n_past:a].copy(), row[b:b + r].copy(), g, p, out)
                if not done:
                    out[:g] = row[a - 1] + (row[b] - row[a - 1]) * np.arange(1, g + 1) / (g + 1)
                row[a:b] = out[:g]
                clean += g
            else:
                row[a:b] = row[a - 1]
                clean = 0
    return x


def fill_hold_samples(x: np.ndarray, weights: np.ndarray, taps: np.ndarray, sfreq: float,
                      max_fill: int | None = None, si_fraction: float = FILL_SI_FRACTION,
                      n_positions: int = 240) -> np.ndarray:
    """How long a filled gap measurably disturbs an FIR estimator's output, per gap length and
    per number of samples that arrived after the gap.

    The fill's error ``e`` (the true samples minus the fill) reaches the output through the
    spatial weights and the estimator's impulse response ``h``: ``δy[k] = Σ_j e_j h[k - j]``, so
    it lasts about as long as ``h`` holds energy, and its size scales with ``e``. Both are
    measured on the person's baseline: at ``n_positions`` evenly spaced places of ``x`` every
    channel feeding a target is filled as the live stage fills it (the same AR model fitted on
    the same length of past, :func:`~neurofeed.dsp.kernels.ar_interpolate`) for every gap length
    g and every ``r`` of :func:`fill_r_set`; the errors, combined by ``weights``, give their
    covariance ``R`` per target, the expected disturbance ``d[k] = sqrt(c_kᴴ R c_k)`` with
    ``c_k[j] = h[k - j]``, against the median amplitude ``a`` of ``y = h * (weights · x)`` and the
    spread ``σ`` (standard deviation) of ``log10 |y|²``, the SI's own. The output counts as
    disturbed while the disturbance of log10 power, ``(2 / ln 10) · d[k] / a``, exceeds
    ``si_fraction · σ``.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples), µV
        The conditioned baseline channels (settling left out).
    weights : ndarray, shape (n_targets, n_channels)
        The spatial weights forming the targets.
    taps : ndarray of complex, shape (n_targets, n_taps)
        The estimator's complex taps (``CFIREnvelope.taps``); ``|y|²`` is its power scale.
    sfreq : float
    max_fill : int, optional
        Default :func:`max_fill_samples`.
    si_fraction : float
    n_positions : int
        Places the fill is tried at (deterministic: evenly spaced).

    Returns
    -------
    hold : ndarray of int, shape (max_fill + 1, len(fill_r_set(order)))
        ``hold[g, b]``: samples the gate stays on after the chunk holding a filled g-sample gap
        followed by at least ``fill_r_set(order)[b]`` samples (0: the fill never disturbs the
        output measurably; 1: only that chunk); ``hold[0] = 0``. The worst over targets.
    """
    from scipy.signal import fftconvolve

    x = np.asarray(x, dtype=float)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    taps = np.atleast_2d(np.asarray(taps, dtype=complex))
    max_fill = max_fill_samples(sfreq) if max_fill is None else int(max_fill)
    p, n_fit = ar_order(sfreq), int(round(AR_FIT_S * sfreq))
    r_set = fill_r_set(p)
    out = np.zeros((max_fill + 1, r_set.size), dtype=np.int64)
    n = x.shape[1]
    rows = np.flatnonzero(np.abs(w).sum(axis=0) > 0)
    lo, hi = n_fit, n - max_fill - p - 1
    if hi - lo < n_positions // 4 or max_fill == 0:
        out[1:] = max(taps.shape[1], 1)  # too little baseline to tell: the estimator's length
        return out
    pos = np.unique(np.linspace(lo, hi, n_positions).astype(np.int64))
    err = fill_errors(np.ascontiguousarray(x[rows]), pos, n_fit, p, max_fill, r_set)  # pos, row, g, b, j
    e_t = np.einsum("tc,pcgbj->tpgbj", w[:, rows], err)
    for ti, h in enumerate(taps):
        m = h.size
        y = fftconvolve(w[ti] @ x, h)[m - 1:n]
        p2 = np.maximum(np.abs(y) ** 2, 1e-300)
        a = float(np.sqrt(np.median(p2)))
        r_tol = si_fraction * float(np.std(np.log10(p2))) * np.log(10.0) / 2.0
        for g in range(1, max_fill + 1):
            hk = np.zeros((m + g - 1, g), dtype=complex)
            for jj in range(g):
                hk[jj:jj + m, jj] = h
            for b in range(r_set.size):
                e = e_t[ti, :, g, b, :g]
                cov = e.T @ e / e.shape[0]
                d = np.sqrt(np.maximum(np.einsum("kj,jl,kl->k", hk.conj(), cov, hk).real, 0.0))
                over = np.flatnonzero(d > r_tol * a)
                if over.size:
                    out[g, b] = max(out[g, b], max(1, int(over[-1]) - g + 1))
    return out


def emg_band(sfreq: float) -> tuple[float, float]:
    """EMG detection band: 70–100 Hz where the rate allows, else 30–45 Hz (below 50/60 Hz mains)."""
    if sfreq / 2 > 110:
        return (70.0, 100.0)
    return (30.0, min(45.0, 0.45 * sfreq))


class QualityMonitor:
    """Per-chunk quality flags and a held artifact gate (one numba pass per chunk).

    Delays of the detectors (how late an artifact is seen): railed, flat and non-finite samples
    at once (flatness over 1-s windows); EMG through a 2nd-order Butterworth band-pass
    (:func:`emg_band`, a few ms) and a 0.1-s one-pole power smoother (its RMS crosses a threshold
    twice its baseline within ~30 ms of a burst's onset); blinks through a first-order 0.5-Hz
    high-pass (phase lead: no delay at blink frequencies). The gate then holds ``hold_s`` (set
    by ``MuChain`` from the estimator's impulse response).

    Parameters
    ----------
    sfreq : float
    n_channels : int
    emg_rows : list of int
        Channels whose EMG-band RMS is watched (the targets and their neighbours).
    blink_rows : list of int
        Frontal channels watched for blinks (Fp1, Fp2, ... or the frontal row); may be empty.
    gate_rows : list of int
        Channels whose railing, flatness or non-finite samples gate reward (those feeding
        the estimate).
    config : QualityConfig
    """

    def __init__(self, sfreq, n_channels, emg_rows, blink_rows, gate_rows, config: QualityConfig):
        self.sfreq = float(sfreq)
        self.cfg = config
        self.n_channels = n_channels
        self.emg_rows = np.asarray(emg_rows, dtype=np.int64)
        self.blink_rows = np.asarray(blink_rows, dtype=np.int64)
        self.gate_rows = np.asarray(gate_rows, dtype=np.int64)
        self.flags = np.zeros(n_channels, dtype=np.int64)
        self.ptp = np.empty((n_channels, 2))
        self.ptp[:, 0], self.ptp[:, 1] = np.inf, -np.inf
        self.flat_state = np.array([0, int(round(self.sfreq))], dtype=np.int64)  # flatness over one second
        self.last = np.zeros(n_channels)  # last finite sample per channel (sample-and-hold)
        self.seeded = False
        self.emg_uv = float(config.emg_uv)  # thresholds in use: the caps until calibrate()
        self.blink_uv = float(config.blink_uv)
        self.emg_sos = design_bandpass(self.sfreq, emg_band(self.sfreq), order=2)
        self.emg_zi = np.zeros((len(self.emg_rows), self.emg_sos.shape[0], 2))
        self.emg_alpha = one_pole_alpha(0.1, self.sfreq)
        self.emg_p = np.zeros(len(self.emg_rows))
        self.emg_rms_uv = np.zeros(len(self.emg_rows))
        # a first-order 0.5 Hz high-pass only: removes drift with little delay at blink frequencies
        # (a 0.5–7 Hz band-pass would see a blink ~80 ms late, after reward had already been given)
        self.blink_sos = signal.butter(1, 0.5, btype="highpass", fs=self.sfreq, output="sos")
        self.blink_zi = np.zeros((len(self.blink_rows), self.blink_sos.shape[0], 2))
        self.emg_zi_unit = signal.sosfilt_zi(self.emg_sos)
        self.blink_zi_unit = signal.sosfilt_zi(self.blink_sos)
        self.blink_peak = np.zeros(1)
        self.rail_uv = config.rail_uv if config.rail_uv > 0 else np.inf
        self.gate_mask = (NONFINITE | FILLED | EMG | BLINK | (RAILED if config.gate_railed else 0)
                          | (FLAT if config.gate_flat else 0))
        self._hold = int(round(config.hold_s * self.sfreq))
        self._nonfinite_hold_samples = self._hold
        # gate hold after a filled short gap, per run length (0..max_fill samples) and samples
        # after it (fill_r_set); until MuChain derives it from its estimator and the person's
        # baseline, the artifact hold
        self.max_fill = max_fill_samples(self.sfreq)
        self.ar_order = ar_order(self.sfreq)
        self.r_set = fill_r_set(self.ar_order)
        self._hold_fill = np.full((self.max_fill + 1, self.r_set.size), self._hold, dtype=np.int64)
        self.open_run = np.zeros(n_channels, dtype=np.int64)  # a run of gap samples open at the chunk's end
        # the longest run filled in the last chunk, and the largest gate hold among its fills
        self.filled_run = np.zeros(2, dtype=np.int64)
        # the fill's model reads the last AR_FIT_S of each channel (a ring) since its last held run
        self.hist = np.zeros((n_channels, max(1, int(round(AR_FIT_S * self.sfreq)))))
        self.hist_n = np.zeros(1, dtype=np.int64)
        self.clean = np.zeros(n_channels, dtype=np.int64)
        self._gate_left = 0
        self.fired = 0  # the gate bits that fired in the last chunk
        self.gate_reasons: tuple[str, ...] = ()
        self._reasons = {m: flag_names(m) for m in range(64)}

    def seed(self, x0: np.ndarray) -> None:
        """Start the hold value and the EMG/blink filter states at the steady state of a
        constant input ``x0`` (n_channels,) µV, so an electrode offset gives no transient."""
        x0 = np.asarray(x0, dtype=float)
        self.last[:] = x0
        self.emg_zi[:] = x0[self.emg_rows, None, None] * self.emg_zi_unit[None]
        self.blink_zi[:] = x0[self.blink_rows, None, None] * self.blink_zi_unit[None]
        self.clean[:] = 0  # a new stream: no past for the fill's model yet
        self.seeded = True

    def set_hold_s(self, hold_s: float, nonfinite_hold_s: float | None = None) -> None:
        """Keep the gate on ``hold_s`` seconds after the last trigger, and ``nonfinite_hold_s``
        (at least ``hold_s``) after non-finite or gap samples: the signal was held at its last
        value through them and steps back when they end, a broadband step the estimator carries
        for as long as its memory, not just for its impulse response's main lobe."""
        self._hold = int(round(hold_s * self.sfreq))
        if nonfinite_hold_s is not None:
            self._nonfinite_hold_samples = max(self._hold, int(round(nonfinite_hold_s * self.sfreq)))
        else:
            self._nonfinite_hold_samples = max(self._hold, getattr(self, "_nonfinite_hold_samples", 0))

    def set_fill_hold(self, hold_samples) -> None:
        """Keep the gate on ``hold_samples[g, b]`` samples (0: not at all) after a run of ``g``
        gap samples filled with at least ``r_set[b]`` samples after it (g = 1 ..
        ``max_fill``; one value for all, one per length, or the full table). ``MuChain``
        derives them from how long its estimator's output stays measurably disturbed by the
        fill's error (:func:`fill_hold_samples`)."""
        h = np.asarray(hold_samples, dtype=np.int64)
        if h.ndim == 1 and h.size == self.max_fill + 1:
            h = h[:, None]
        h = np.broadcast_to(h, (self.max_fill + 1, self.r_set.size))
        self._hold_fill = np.ascontiguousarray(np.maximum(h, 0))

    @property
    def hold_s(self) -> float:
        """Seconds the gate stays on after the last trigger."""
        return self._hold / self.sfreq

    @property
    def fill_hold_s(self) -> list[float]:
        """Seconds the gate stays on after a filled gap of 1 .. ``max_fill`` samples with the
        model order's samples (or more) after it (a Muse packet's 12 at 256 Hz); with fewer
        after it see ``_hold_fill``."""
        return [float(h) / self.sfreq for h in self._hold_fill[1:, -1]]

    def set_blink_gates(self, gates: bool) -> None:
        """Whether a frontal blink gates reward (False once the ocular signal is regressed out
        of the targets: blinks are still flagged, and what remains is gated by the chain)."""
        self.gate_mask = (self.gate_mask | BLINK) if gates else (self.gate_mask & ~BLINK)

    def detectors(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offline detector traces of ``raw`` (n_channels × n_samples µV, finite), for calibration.

        Returns
        -------
        emg_rms_uv : ndarray, shape (n_emg_rows, n_samples)
            Smoothed EMG-band RMS per watched channel, as the live detector computes it.
        blink_abs_uv : ndarray, shape (n_blink_rows, n_samples)
            |0.5-Hz high-passed| frontal channels.
        """
        x0 = raw[:, 0]
        e = signal.sosfilt(self.emg_sos, raw[self.emg_rows], axis=1,
                           zi=self.emg_zi_unit[:, None, :] * x0[self.emg_rows][None, :, None])[0]
        p = signal.lfilter([self.emg_alpha], [1.0, self.emg_alpha - 1.0], e * e, axis=1)
        b = signal.sosfilt(self.blink_sos, raw[self.blink_rows], axis=1,
                           zi=self.blink_zi_unit[:, None, :] * x0[self.blink_rows][None, :, None])[0]
        return np.sqrt(np.maximum(p, 0.0)), np.abs(b)

    def calibrate(self, raw: np.ndarray, emg_k: float = EMG_K, blink_k: float = BLINK_K) -> dict:
        """Thresholds from the person's baseline ``raw`` (n_channels × n_samples µV, finite):
        median + k·MAD of each detector over all its channels, under the configured caps.

        Returns
        -------
        thresholds : dict
            ``{"emg_uv": float, "blink_uv": float}`` now in use.
        """
        skip = int(round(2.0 * self.sfreq))  # the detectors' settling at the start (a drifting electrode)
        emg, blink = self.detectors(raw)
        if self.emg_rows.size:
            self.emg_uv = robust_threshold(emg[:, skip:], emg_k, self.cfg.emg_uv)
        if self.blink_rows.size:
            self.blink_uv = robust_threshold(blink[:, skip:], blink_k, self.cfg.blink_uv)
        return {"emg_uv": self.emg_uv, "blink_uv": self.blink_uv}

    @property
    def blink_peak_uv(self) -> float:
        """Largest high-passed frontal amplitude in the last chunk (µV)."""
        return float(self.blink_peak[0])

    def process(self, data: np.ndarray, raw: np.ndarray) -> bool:
        """Check chunk ``data``; write it to ``raw`` with each non-finite sample replaced by the
        last finite value of its channel.

        Returns True while the artifact gate is on (held ``hold_s`` after the last trigger).
        """
        if not self.seeded:
            self.seed(first_finite(data))
        cfg = self.cfg
        fired = quality_step(data, raw, self.last, self.rail_uv, self.ptp, self.flat_state, cfg.flat_uv,
                             self.flags, self.gate_rows, self.emg_rows, self.emg_sos, self.emg_zi, self.emg_alpha,
                             self.emg_p, self.emg_rms_uv, self.emg_uv, self.blink_rows, self.blink_sos,
                             self.blink_zi, self.blink_uv, self.blink_peak, self.max_fill,
                             self.open_run, self.filled_run, self.hist, self.hist_n, self.clean,
                             self.ar_order, self._hold_fill, self.r_set) & self.gate_mask
        self.fired = fired
        return self.hold_gate(fired, data.shape[1])

    def hold_gate(self, fired: int, n: int) -> bool:
        """Update the held gate with this chunk's fired bitmask (``n`` samples); True while on."""
        fill_hold = int(self.filled_run[1])  # the largest hold among this chunk's fills
        if fired == FILLED and fill_hold == 0:
            fired = 0  # a filled short gap that does not measurably disturb the output: no gate
        if fired:
            if fired & NONFINITE:
                hold = self._nonfinite_hold_samples
            elif fired & ~FILLED:
                hold = self._hold
            else:  # only a filled short gap: gated while its fill measurably disturbs the output
                hold = fill_hold
            self._gate_left = max(self._gate_left, hold)
            self.gate_reasons = self._reasons[fired]
        else:
            self._gate_left = max(0, self._gate_left - n)
            if self._gate_left == 0:
                self.gate_reasons = ()
        return self._gate_left > 0


def first_finite(data: np.ndarray) -> np.ndarray:
    """First finite sample of each row of ``data`` (0 where a row has none), µV."""
    data = np.asarray(data, dtype=float)
    ok = np.isfinite(data)
    first = np.argmax(ok, axis=1)
    x0 = data[np.arange(data.shape[0]), first]
    return np.where(ok.any(axis=1), x0, 0.0)


def hold_finite(x: np.ndarray) -> np.ndarray:
    """``x`` (n_channels × n_samples, µV) with every non-finite sample replaced by the channel's
    last finite value before it (its first finite value at the start, 0 for a channel with none),
    by :func:`~neurofeed.dsp.kernels.hold_last_finite`; ``x`` itself when all are finite."""
    x = np.asarray(x, dtype=float)
    if np.isfinite(x).all():
        return x
    out = np.empty(x.shape)
    for row, out_row, last in zip(x, out, first_finite(x)):
        hold_last_finite(row, out_row, last)
    return out
