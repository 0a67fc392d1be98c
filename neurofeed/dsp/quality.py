"""Signal quality per channel and the artifact gates: non-finite, railed, flat, EMG, blink."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from .filters import design_bandpass
from .kernels import quality_step
from .estimators import smoothing_alpha

NONFINITE, RAILED, FLAT, EMG, BLINK = 1, 2, 4, 8, 16
FLAG_NAMES = {NONFINITE: "nan", RAILED: "railed", FLAT: "flat", EMG: "emg", BLINK: "blink"}


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
        self.emg_alpha = smoothing_alpha(self.sfreq, 0.1)
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
        self.gate_mask = NONFINITE | EMG | BLINK | (RAILED if config.gate_railed else 0) | (FLAT if config.gate_flat else 0)
        self._hold = int(round(config.hold_s * self.sfreq))
        self._hold_nonfinite = self._hold
        self._gate_left = 0
        self.fired = 0  # the gate bits that fired in the last chunk
        self.gate_reasons: tuple[str, ...] = ()
        self._reasons = {m: flag_names(m) for m in range(32)}

    def seed(self, x0: np.ndarray) -> None:
        """Start the hold value and the EMG/blink filter states at the steady state of a
        constant input ``x0`` (n_channels,) µV, so an electrode offset gives no transient."""
        x0 = np.asarray(x0, dtype=float)
        self.last[:] = x0
        self.emg_zi[:] = x0[self.emg_rows, None, None] * self.emg_zi_unit[None]
        self.blink_zi[:] = x0[self.blink_rows, None, None] * self.blink_zi_unit[None]
        self.seeded = True

    def set_hold_s(self, hold_s: float, nonfinite_hold_s: float | None = None) -> None:
        """Keep the gate on ``hold_s`` seconds after the last trigger, and ``nonfinite_hold_s``
        (at least ``hold_s``) after non-finite or gap samples: the signal was held at its last
        value through them and steps back when they end, a broadband step the estimator carries
        for as long as its memory, not just for its impulse response's main lobe."""
        self._hold = int(round(hold_s * self.sfreq))
        if nonfinite_hold_s is not None:
            self._hold_nonfinite = max(self._hold, int(round(nonfinite_hold_s * self.sfreq)))
        else:
            self._hold_nonfinite = max(self._hold, getattr(self, "_hold_nonfinite", 0))

    @property
    def hold_s(self) -> float:
        """Seconds the gate stays on after the last trigger."""
        return self._hold / self.sfreq

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
            self.seed(_first_finite(data))
        cfg = self.cfg
        fired = quality_step(data, raw, self.last, self.rail_uv, self.ptp, self.flat_state, cfg.flat_uv,
                             self.flags, self.gate_rows, self.emg_rows, self.emg_sos, self.emg_zi, self.emg_alpha,
                             self.emg_p, self.emg_rms_uv, self.emg_uv, self.blink_rows, self.blink_sos,
                             self.blink_zi, self.blink_uv, self.blink_peak) & self.gate_mask
        self.fired = fired
        return self.hold_gate(fired, data.shape[1])

    def hold_gate(self, fired: int, n: int) -> bool:
        """Update the held gate with this chunk's fired bitmask (``n`` samples); True while on."""
        if fired:
            hold = self._hold_nonfinite if fired & NONFINITE else self._hold
            self._gate_left = max(self._gate_left, hold)
            self.gate_reasons = self._reasons[fired]
        else:
            self._gate_left = max(0, self._gate_left - n)
            if self._gate_left == 0:
                self.gate_reasons = ()
        return self._gate_left > 0


def _first_finite(data: np.ndarray) -> np.ndarray:
    """First finite sample of each row of ``data`` (0 where a row has none), µV."""
    data = np.asarray(data, dtype=float)
    ok = np.isfinite(data)
    first = np.argmax(ok, axis=1)
    x0 = data[np.arange(data.shape[0]), first]
    return np.where(ok.any(axis=1), x0, 0.0)
