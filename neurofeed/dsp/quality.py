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
    """Per-chunk quality flags and a held artifact gate (one numba pass per chunk).

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
        self.emg_sos = design_bandpass(self.sfreq, emg_band(self.sfreq), order=2)
        self.emg_zi = np.zeros((len(self.emg_rows), self.emg_sos.shape[0], 2))
        self.emg_alpha = smoothing_alpha(self.sfreq, 0.1)
        self.emg_p = np.zeros(len(self.emg_rows))
        self.emg_rms_uv = np.zeros(len(self.emg_rows))
        # a first-order 0.5 Hz high-pass only: removes drift with little delay at blink frequencies
        # (a 0.5–7 Hz band-pass would see a blink ~80 ms late, after reward had already been given)
        self.blink_sos = signal.butter(1, 0.5, btype="highpass", fs=self.sfreq, output="sos")
        self.blink_zi = np.zeros((len(self.blink_rows), self.blink_sos.shape[0], 2))
        self.blink_peak = np.zeros(1)
        self.rail_uv = config.rail_uv if config.rail_uv > 0 else np.inf
        self.gate_mask = NONFINITE | EMG | BLINK | (RAILED if config.gate_railed else 0) | (FLAT if config.gate_flat else 0)
        self._hold = int(round(config.hold_s * self.sfreq))
        self._gate_left = 0
        self.gate_reasons: tuple[str, ...] = ()
        self._reasons = {m: flag_names(m) for m in range(32)}

    @property
    def blink_peak_uv(self) -> float:
        """Largest high-passed frontal amplitude in the last chunk (µV)."""
        return float(self.blink_peak[0])

    def process(self, data: np.ndarray, raw: np.ndarray) -> bool:
        """Check chunk ``data``; write it to ``raw`` with non-finite samples set to 0.

        Returns True while the artifact gate is on (held ``hold_s`` after the last trigger).
        """
        cfg = self.cfg
        fired = quality_step(data, raw, self.rail_uv, self.ptp, self.flat_state, cfg.flat_uv, self.flags,
                             self.gate_rows, self.emg_rows, self.emg_sos, self.emg_zi, self.emg_alpha, self.emg_p,
                             self.emg_rms_uv, cfg.emg_uv, self.blink_rows, self.blink_sos, self.blink_zi,
                             cfg.blink_uv, self.blink_peak) & self.gate_mask
        if fired:
            self._gate_left = self._hold
            self.gate_reasons = self._reasons[fired]
        else:
            self._gate_left = max(0, self._gate_left - data.shape[1])
            if self._gate_left == 0:
                self.gate_reasons = ()
        return self._gate_left > 0
