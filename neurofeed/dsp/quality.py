"""Signal quality per channel and the artifact gates: non-finite, railed, flat, EMG, blink."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from .filters import design_bandpass
from .kernels import chunk_quality, sosfilt_inplace, square_smooth_inplace
from .estimators import smoothing_alpha

NONFINITE, RAILED, FLAT, EMG, BLINK = 1, 2, 4, 8, 16
FLAG_NAMES = {NONFINITE: "nan", RAILED: "railed", FLAT: "flat", EMG: "emg", BLINK: "blink"}


def flag_names(flags: int) -> tuple[str, ...]:
    """Names of the bits set in a quality bitmask."""
    return tuple(name for bit, name in FLAG_NAMES.items() if flags & bit)


@dataclass
class QualityConfig:
    """Thresholds of the artifact gates (µV, seconds); a threshold of 0 disables its gate."""

    rail_uv: float = 1000.0
    flat_uv: float = 0.5
    emg_uv: float = 10.0
    blink_uv: float = 120.0
    hold_s: float = 0.5
    gate_railed: bool = True
    gate_flat: bool = True


def emg_band(sfreq: float) -> tuple[float, float]:
    """EMG detection band: 70–100 Hz where the rate allows, else 30–45 Hz (below 50/60 Hz mains)."""
    if sfreq / 2 > 110:
        return (70.0, 100.0)
    return (30.0, min(45.0, 0.45 * sfreq))


class QualityMonitor:
    """Per-chunk quality flags and a held artifact gate.

    Parameters
    ----------
    sfreq : float
    n_channels : int
    emg_rows : list of int
        Channels whose EMG-band RMS is watched (the targets and their neighbours).
    blink_rows : list of int
        Frontal channels watched for blinks (Fp1, Fp2, ...); may be empty.
    gate_rows : list of int
        Channels whose railing, flatness or non-finite samples gate reward (those feeding
        the estimate).
    config : QualityConfig
    line_hz : float
        Mains frequency, for the line-noise readout.
    """

    def __init__(self, sfreq, n_channels, emg_rows, blink_rows, gate_rows, config: QualityConfig, line_hz=50.0):
        self.sfreq = float(sfreq)
        self.cfg = config
        self.n_channels = n_channels
        self.emg_rows = np.asarray(emg_rows, dtype=np.int64)
        self.blink_rows = np.asarray(blink_rows, dtype=np.int64)
        self.gate_rows = np.asarray(gate_rows, dtype=np.int64)
        self.bad = np.zeros(n_channels, dtype=np.uint8)
        self.peak = np.zeros(n_channels)
        self.ptp = np.empty((n_channels, 2))
        self._reset_ptp()
        self.flat = np.zeros(n_channels, dtype=bool)
        self._flat_window = int(round(self.sfreq))  # flatness judged over one second
        self._flat_count = 0
        self.flags = np.zeros(n_channels, dtype=np.int64)
        self.emg_sos = design_bandpass(self.sfreq, emg_band(self.sfreq), order=2)
        self.emg_zi = np.zeros((len(self.emg_rows), self.emg_sos.shape[0], 2))
        self.emg_alpha = smoothing_alpha(self.sfreq, 0.1)
        self.emg_p = np.zeros(len(self.emg_rows))
        self.emg_rms_uv = np.zeros(len(self.emg_rows))
        # a first-order 0.5 Hz high-pass only: removes drift with little delay at blink frequencies
        # (a 0.5–7 Hz band-pass would see a blink ~80 ms late, after reward had already been given)
        self.blink_sos = signal.butter(1, 0.5, btype="highpass", fs=self.sfreq, output="sos")
        self.blink_zi = np.zeros((len(self.blink_rows), self.blink_sos.shape[0], 2))
        self.blink_peak_uv = 0.0
        self.line_sos = design_bandpass(self.sfreq, (line_hz - 2, line_hz + 2), order=2) if line_hz + 3 < self.sfreq / 2 else None
        self.line_zi = np.zeros((n_channels, 2 if self.line_sos is None else self.line_sos.shape[0], 2))
        self.line_p = np.zeros(n_channels)
        self.line_alpha = smoothing_alpha(self.sfreq, 0.5)
        self._hold = int(round(config.hold_s * self.sfreq))
        self._gate_left = 0
        self.gate_reasons: tuple[str, ...] = ()
        self._work = np.zeros((n_channels, 64))

    def _reset_ptp(self):
        self.ptp[:, 0] = np.inf
        self.ptp[:, 1] = -np.inf

    def _scratch(self, rows, n):
        if self._work.shape[1] < n:
            self._work = np.zeros((self.n_channels, n))
        return self._work[: len(rows), :n]

    def process(self, x: np.ndarray) -> bool:
        """Update flags from the chunk ``x`` (replaces non-finite samples by 0 in place).

        Returns True while the artifact gate is on.
        """
        cfg = self.cfg
        n = x.shape[1]
        chunk_quality(x, cfg.rail_uv if cfg.rail_uv > 0 else np.inf, cfg.flat_uv, self.bad, self.peak, self.ptp)
        self._flat_count += n
        if self._flat_count >= self._flat_window:
            self.flat[:] = (self.ptp[:, 1] - self.ptp[:, 0]) < cfg.flat_uv
            self._reset_ptp()
            self._flat_count = 0
        flags = self.flags
        flags[:] = self.bad
        flags[self.flat] |= FLAT
        trigger = []
        gate_flags = np.bitwise_or.reduce(flags[self.gate_rows]) if len(self.gate_rows) else 0
        if gate_flags & NONFINITE:
            trigger.append("nan")
        if cfg.gate_railed and gate_flags & RAILED:
            trigger.append("railed")
        if cfg.gate_flat and gate_flags & FLAT:
            trigger.append("flat")
        if len(self.emg_rows):
            e = self._scratch(self.emg_rows, n)
            e[:] = x[self.emg_rows]
            sosfilt_inplace(self.emg_sos, e, self.emg_zi)
            square_smooth_inplace(e, self.emg_alpha, self.emg_p)
            np.sqrt(self.emg_p, out=self.emg_rms_uv)
            hot = self.emg_rms_uv > cfg.emg_uv
            if cfg.emg_uv > 0 and hot.any():
                flags[self.emg_rows[hot]] |= EMG
                trigger.append("emg")
        if len(self.blink_rows):
            b = self._scratch(self.blink_rows, n)
            b[:] = x[self.blink_rows]
            sosfilt_inplace(self.blink_sos, b, self.blink_zi)
            self.blink_peak_uv = float(np.abs(b).max())
            if cfg.blink_uv > 0 and self.blink_peak_uv > cfg.blink_uv:
                flags[self.blink_rows] |= BLINK
                trigger.append("blink")
        if trigger:
            self._gate_left = self._hold
            self.gate_reasons = tuple(trigger)
        else:
            self._gate_left = max(0, self._gate_left - n)
            if self._gate_left == 0:
                self.gate_reasons = ()
        return self._gate_left > 0

    def line_noise_uv(self, x: np.ndarray) -> np.ndarray:
        """Update and return the per-channel mains RMS (µV) from chunk ``x`` (not modified)."""
        if self.line_sos is None:
            return self.line_p
        w = self._scratch(range(self.n_channels), x.shape[1])
        w[:] = x
        sosfilt_inplace(self.line_sos, w, self.line_zi)
        square_smooth_inplace(w, self.line_alpha, self.line_p)
        return np.sqrt(self.line_p)
