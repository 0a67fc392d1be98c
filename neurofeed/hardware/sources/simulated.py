"""Simulated EEG with ground truth: a mu rhythm whose amplitude follows a scripted envelope.

BrainFlow's synthetic board plays fixed sines and cannot show suppression; this source can,
and it exposes the true mu envelope and the artifact intervals for tests and benchmarks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from ...core.channels import FRONTAL_BLINK_CHANNELS
from ...core.chunk import Chunk
from .base import Source

SYNTHETIC_16 = ["Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8", "F5", "F7", "F3", "F1", "F2", "F4", "F6", "F8"]
# Paul Kellet's economy pink-noise filter (1/f power spectrum within ~1 dB above 10 Hz·fs/44.1k).
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


@dataclass
class SimulationScript:
    """What happens when, in seconds from the start.

    Attributes
    ----------
    mu_factor : list of (start_s, end_s, factor)
        Mu amplitude multiplied by ``factor`` inside each interval (0.6 = 40 % suppression).
    emg : list of (start_s, end_s)
        EMG bursts (broadband muscle activity over the sensorimotor channels).
    blinks : list of float
        Blink peak times (frontal channels).
    """

    mu_factor: list = field(default_factory=list)
    emg: list = field(default_factory=list)
    blinks: list = field(default_factory=list)

    @classmethod
    def alternating(cls, duration_s, period_s=8.0, suppress_s=4.0, factor=0.6, start_s=6.0,
                    emg_every_s=0.0, blink_every_s=0.0):
        """Suppression epochs of ``suppress_s`` every ``period_s`` (optionally EMG and blinks)."""
        mu = [(t, t + suppress_s, factor) for t in np.arange(start_s, duration_s, period_s)]
        emg = [(t, t + 1.0) for t in np.arange(start_s + 2.5, duration_s, emg_every_s)] if emg_every_s else []
        blinks = list(np.arange(start_s + 1.3, duration_s, blink_every_s)) if blink_every_s else []
        return cls([tuple(map(float, m)) for m in mu], [tuple(map(float, e)) for e in emg], [float(b) for b in blinks])

    def factor_at(self, t_s: np.ndarray) -> np.ndarray:
        """The scripted mu factor at times ``t_s``."""
        f = np.ones_like(t_s)
        for start, end, factor in self.mu_factor:
            f[(t_s >= start) & (t_s < end)] = factor
        return f

    def artifact_mask(self, t_s: np.ndarray, blink_halfwidth_s=0.25) -> np.ndarray:
        """True where an EMG burst or a blink is under way."""
        m = np.zeros(t_s.shape, dtype=bool)
        for start, end in self.emg:
            m |= (t_s >= start) & (t_s < end)
        for b in self.blinks:
            m |= np.abs(t_s - b) < blink_halfwidth_s
        return m


class MuSimulator:
    """Deterministic generator of simulated EEG, block by block, with its ground truth.

    Model per channel: 1/f background; at C3 and C4 a mu rhythm (``mu_hz`` with slow frequency
    wander) of amplitude ``mu_amp_uv × script factor × slow modulation`` (spreading at 30 %
    to neighbours); occipital alpha with its own envelope; mains at ``line_hz``; EMG bursts and
    blinks at scripted times.

    Parameters
    ----------
    sfreq : float
    ch_names : list of str
    script : SimulationScript
    seed : int
    mu_amp_uv, mu_hz, alpha_amp_uv, pink_uv, line_uv, line_hz, emg_uv, blink_uv : float
    modulation : float
        Depth of the slow (< 0.5 Hz) random amplitude modulation of mu (0 = none).
    """

    def __init__(self, sfreq=250.0, ch_names=None, script=None, seed=0, mu_amp_uv=10.0, mu_hz=11.0,
                 alpha_amp_uv=8.0, pink_uv=5.0, line_uv=3.0, line_hz=50.0, emg_uv=25.0, blink_uv=180.0,
                 modulation=0.3):
        self.sfreq = float(sfreq)
        self.ch_names = list(ch_names or SYNTHETIC_16)
        self.script = script or SimulationScript()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.mu_amp_uv, self.mu_hz, self.alpha_amp_uv = mu_amp_uv, mu_hz, alpha_amp_uv
        self.pink_uv, self.line_uv, self.line_hz = pink_uv, line_uv, line_hz
        self.emg_uv, self.blink_uv, self.modulation = emg_uv, blink_uv, modulation
        n = len(self.ch_names)
        idx = {c: i for i, c in enumerate(self.ch_names)}
        self.mu_rows = [idx[c] for c in ("C3", "C4") if c in idx]
        self.mu_names = [c for c in ("C3", "C4") if c in idx]
        # mu spreads weakly to the neighbours of each source
        self.mu_mix = np.zeros((n, len(self.mu_rows)))
        spread = {"C3": ("FC3", "C5", "C1", "CP3", "Cz"), "C4": ("FC4", "C6", "C2", "CP4", "Cz")}
        for j, c in enumerate(self.mu_names):
            self.mu_mix[idx[c], j] = 1.0
            for nb in spread[c]:
                if nb in idx:
                    self.mu_mix[idx[nb], j] = 0.3
        self.occ_rows = [i for c, i in idx.items() if c.startswith(("O", "PO")) or c == "Iz"]
        self.emg_rows = [i for c, i in idx.items() if c[:1] in ("C", "T") or c.startswith(("FC", "CP", "FT", "TP"))]
        frontal = [idx[c] for c in FRONTAL_BLINK_CHANNELS if c in idx]
        self.blink_gain = np.zeros(n)
        self.blink_gain[frontal] = 1.0
        for c, i in idx.items():
            if c.startswith("F") and not c.startswith(("FC", "FT", "Fp")):
                self.blink_gain[i] = 0.8
        self.pink_zi = np.zeros((n, 3))
        self.pink_gain = pink_uv / 0.12  # Kellet filter output RMS ~0.12 for unit white noise
        self.mod_sos = signal.butter(2, 0.4, fs=self.sfreq, output="sos")
        self.mod_zi = np.zeros((self.mod_sos.shape[0], len(self.mu_rows) + 2, 2))
        self.emg_sos = signal.butter(4, [20.0, min(100.0, 0.45 * self.sfreq)], btype="bandpass", fs=self.sfreq, output="sos")
        self.emg_zi = np.zeros((self.emg_sos.shape[0], len(self.emg_rows), 2))
        self.phase = self.rng.uniform(0, 2 * np.pi, len(self.mu_rows) + 1)
        self.n_done = 0
        self.last_truth = np.zeros((len(self.mu_rows), 0))
        self.drive = None  # see neurofeed.dyad.monitor.SharedMuDrive

    def generate(self, n: int):
        """Next ``n`` samples.

        Returns
        -------
        data : ndarray, shape (n_channels, n), µV
        truth : ndarray, shape (n_mu_channels, n)
            True mu amplitude (µV) at C3 and C4 (rows in ``mu_names`` order).
        """
        t = (self.n_done + np.arange(n)) / self.sfreq
        n_mu = len(self.mu_rows)
        white = self.rng.standard_normal((len(self.ch_names), n))
        data, self.pink_zi = signal.lfilter(_PINK_B, _PINK_A, white, axis=1, zi=self.pink_zi)
        data *= self.pink_gain
        slow, self.mod_zi = signal.sosfilt(self.mod_sos, self.rng.standard_normal((n_mu + 2, n)) * 8.0,
                                           axis=1, zi=self.mod_zi)
        factor = self.script.factor_at(t)
        truth = self.mu_amp_uv * factor * np.clip(1.0 + self.modulation * slow[:n_mu], 0.2, None)
        # frequency wander of +-0.3 Hz, integrated into the phase
        inst_hz = self.mu_hz + 0.3 * np.tanh(slow[n_mu])
        phase = self.phase[:n_mu, None] + np.cumsum(np.broadcast_to(2 * np.pi * inst_hz / self.sfreq, (n_mu, n)), axis=1)
        self.phase[:n_mu] = phase[:, -1] % (2 * np.pi)
        if self.drive is not None:  # a dyad partner: envelope and phase shared in coupled windows
            truth, phase = self.drive.apply(self, t, factor, truth, phase)
        data += self.mu_mix @ (truth * np.cos(phase))
        if self.occ_rows:
            a_phase = self.phase[n_mu] + np.cumsum(np.full(n, 2 * np.pi * 10.0 / self.sfreq))
            self.phase[n_mu] = a_phase[-1] % (2 * np.pi)
            alpha = self.alpha_amp_uv * np.clip(1.0 + 0.5 * slow[n_mu + 1], 0.1, None) * np.cos(a_phase)
            data[self.occ_rows] += alpha
        if self.line_uv and self.line_hz < self.sfreq / 2:
            data += self.line_uv * np.sin(2 * np.pi * self.line_hz * t)
        if self.script.emg and self.emg_rows:
            burst, self.emg_zi = signal.sosfilt(self.emg_sos, self.rng.standard_normal((len(self.emg_rows), n)),
                                                axis=1, zi=self.emg_zi)
            on = np.zeros(n)
            for start, end in self.script.emg:
                on[(t >= start) & (t < end)] = 1.0
            data[self.emg_rows] += self.emg_uv * 2.0 * burst * on
        for b in self.script.blinks:
            near = np.abs(t - b) < 0.2
            if near.any():
                shape = np.where(near, np.cos(np.pi * (t - b) / 0.4) ** 2, 0.0)
                data += np.outer(self.blink_gain, self.blink_uv * shape)
        self.n_done += n
        self.last_truth = truth
        return data, truth


class SimulatedSource(Source):
    """A live source backed by :class:`MuSimulator`, paced at real time or as fast as possible.

    Parameters
    ----------
    simulator : MuSimulator
    chunk_size : int
        Samples per chunk (default 10: 40 ms at 250 Hz).
    realtime : bool
        Sleep so that each chunk arrives when its last sample would have been acquired.
    duration_s : float or None
        Stop (``finished``) after this many seconds of data.
    range_uv : float
    """

    def __init__(self, simulator: MuSimulator | None = None, chunk_size: int = 10, realtime: bool = True,
                 duration_s: float | None = None, range_uv: float = 4000.0):
        self.sim = simulator or MuSimulator()
        self.sfreq = self.sim.sfreq
        self.ch_names = list(self.sim.ch_names)
        self.line_hz = self.sim.line_hz
        self.chunk_size = int(chunk_size)
        self.realtime = realtime
        self.duration_s = duration_s
        self.range_uv = range_uv
        self.name = "simulated"
        self._t0_ns = None
        self._t0_wall = 0.0
        self.finished = False

    def start(self):
        self._t0_ns = time.perf_counter_ns()
        self._t0_wall = time.time()

    def read(self) -> Chunk | None:
        if self._t0_ns is None:
            self.start()
        if self.finished:
            self.nap(0.001)
            return None
        n0 = self.sim.n_done
        n = self.chunk_size
        if self.duration_s is not None:
            n = min(n, int(round(self.duration_s * self.sfreq)) - n0)
            if n <= 0:
                self.finished = True
                return None
        if self.realtime:
            due_ns = self._t0_ns + int((n0 + n) * 1e9 / self.sfreq)
            wait = (due_ns - time.perf_counter_ns()) / 1e9
            if wait > 0.002:
                self.nap(wait - 0.001)
                return None
            while time.perf_counter_ns() < due_ns:  # the last millisecond: spin for accuracy
                pass
        data, _ = self.sim.generate(n)
        ts = self._t0_wall + (n0 + np.arange(n)) / self.sfreq
        arrival = time.perf_counter_ns()
        age = (arrival - self._t0_ns) / 1e9 - (n0 + n - 1) / self.sfreq if self.realtime else float("nan")
        return Chunk(data, ts, arrival, n0, age)

    def describe(self):
        d = super().describe()
        d["seed"] = self.sim.seed
        d["script"] = {"mu_factor": self.sim.script.mu_factor, "emg": self.sim.script.emg,
                       "blinks": self.sim.script.blinks}
        return d
