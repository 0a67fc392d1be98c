"""The therapist–client dyad ("resonant field"): two people, two sources, one clock, their coupling.

Each person's source runs through its own :class:`~neurofeed.pipeline.Pipeline` (own chain,
baseline and SI, own recording). A :class:`DyadMonitor` is a sink of both pipelines: it takes
each person's referenced mu-target signal per chunk, aligns the two on their source timestamps
(one host clock) and feeds :class:`~neurofeed.dsp.coupling.DyadCoupling`, which gives the
amplitude-envelope correlation (AEC) and the mu phase-locking value (PLV) over a sliding window.
The shared participant view shows the coupling index; the console shows both people.

The simulated headset has a partner mode (:class:`SharedMuDrive`): in scripted windows both
simulated people's mu rhythms follow one shared envelope and phase (ground truth for tests).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from .dsp.coupling import DyadCoupling


class SharedMuDrive:
    """Ground truth of a simulated dyad: in ``windows`` both people's mu follows one envelope and phase.

    Parameters
    ----------
    sfreq : float
        Sampling rate (Hz) of both simulators.
    duration_s : float
        Length of the shared process (s).
    windows : list of (start_s, end_s)
        Coupled intervals.
    mu_hz : float
        Frequency of the shared rhythm (Hz).
    depth : float
        Depth of the shared slow envelope modulation.
    seed : int
    lag_rad : dict, optional
        Phase lag per simulator (keyed by ``id``-free role names ``"a"``/``"b"``), default 0 and 0.5 rad.
    """

    def __init__(self, sfreq: float, duration_s: float, windows, mu_hz: float = 10.8, depth: float = 0.6,
                 seed: int = 0):
        self.sfreq = float(sfreq)
        self.windows = [(float(a), float(b)) for a, b in windows]
        n = int(np.ceil(duration_s * self.sfreq)) + 1
        rng = np.random.default_rng(seed)
        sos = signal.butter(2, 0.4, fs=self.sfreq, output="sos")
        slow = signal.sosfilt(sos, rng.standard_normal(n) * 8.0)
        self.envelope = np.clip(1.0 + depth * slow, 0.2, None)
        wander = signal.sosfilt(sos, rng.standard_normal(n) * 8.0)
        self.phase = np.cumsum(2 * np.pi * (mu_hz + 0.3 * np.tanh(wander)) / self.sfreq)
        self.lags: dict[int, float] = {}

    def attach(self, simulator, lag_rad: float = 0.0) -> None:
        """Make ``simulator`` follow the shared rhythm (with a phase lag) in the coupled windows."""
        self.lags[id(simulator)] = float(lag_rad)
        simulator.drive = self

    def coupled(self, t_s: np.ndarray) -> np.ndarray:
        """True where the script couples the two people."""
        on = np.zeros(t_s.shape, dtype=bool)
        for a, b in self.windows:
            on |= (t_s >= a) & (t_s < b)
        return on

    def apply(self, sim, t_s, factor, truth, phase):
        """Called by the simulator for each block: shared envelope and phase where coupled."""
        on = self.coupled(t_s)
        if not on.any():
            return truth, phase
        idx = np.minimum(np.round(t_s * self.sfreq).astype(np.int64), self.envelope.size - 1)
        truth = truth.copy()
        phase = phase.copy()
        truth[:, on] = sim.mu_amp_uv * factor[on] * self.envelope[idx[on]]
        phase[:, on] = self.phase[idx[on]] + self.lags.get(id(sim), 0.0)
        return truth, phase


def alternating_windows(duration_s: float, period_s: float = 20.0, first_on: bool = False):
    """Coupled windows alternating with uncoupled ones, each ``period_s`` long."""
    starts = np.arange(period_s if not first_on else 0.0, duration_s, 2 * period_s)
    return [(float(s), float(s + period_s)) for s in starts]


@dataclass
class DyadState:
    """The latest coupling of the two people (published by :class:`DyadMonitor`)."""

    t_s: float = 0.0
    aec: float = float("nan")
    plv: float = float("nan")
    coupling: float = float("nan")
    si_a: float = float("nan")
    si_b: float = float("nan")


class DyadMonitor:
    """Aligns two people's referenced mu-target signals and computes their coupling.

    Use :meth:`sink` for each person's pipeline (``sink("a", chain)``, ``sink("b", chain)``); each
    sink's ``on_chunk`` hands that person's referenced targets (mean over targets) to the
    monitor, which consumes the samples both people have and publishes :attr:`latest`.

    Parameters
    ----------
    sfreq : float
        The common sampling rate (Hz); both sources must have it.
    band_hz : (float, float)
    window_s : float
        Coupling window (s).
    out : Path, optional
        Session folder: ``dyad.tsv`` (time s, AEC, PLV, coupling index, SI a, SI b) is appended there.
    """

    COLUMNS = ("t_s", "aec", "plv", "coupling", "si_a", "si_b")

    def __init__(self, sfreq: float, band_hz=(8.0, 13.0), window_s: float = 10.0, out=None,
                 update_every_s: float = 0.1):
        self.sfreq = float(sfreq)
        self.coupling = DyadCoupling(sfreq, band_hz, window_s)
        self.pending = {"a": [], "b": []}
        self.t0 = {"a": None, "b": None}
        self.si = {"a": float("nan"), "b": float("nan")}
        self.lock = threading.Lock()
        self.latest = DyadState()
        self.n = 0
        self.every = max(1, int(round(update_every_s * self.sfreq)))
        self._since = 0
        self.rows: list[tuple] = []
        self.path = Path(out) / "dyad.tsv" if out is not None else None
        if self.path is not None:
            self.path.write_text("\t".join(self.COLUMNS) + "\n")

    def sink(self, role: str, chain):
        """A pipeline sink feeding person ``role`` ("a" or "b") through its own chain's spatial filter."""
        monitor = self

        class _Sink:
            def on_chunk(self, chunk):
                x = chain.spatial(chunk.data).mean(axis=0)
                monitor.add(role, x, float(chunk.timestamps[0]) if len(chunk.timestamps) else 0.0)

            def on_state(self, st):
                monitor.si[role] = st.si_combined

        return _Sink()

    def add(self, role: str, x: np.ndarray, t_first: float) -> None:
        """Queue person ``role``'s next samples; process whatever both people now have."""
        with self.lock:
            if self.t0[role] is None:
                self.t0[role] = t_first
                if all(v is not None for v in self.t0.values()):
                    # align on the source clock: drop the earlier starter's lead once both have started
                    lead = int(round((self.t0["b"] - self.t0["a"]) * self.sfreq))
                    drop_role, k = ("a", lead) if lead > 0 else ("b", -lead)
                    buf = np.concatenate(self.pending[drop_role]) if self.pending[drop_role] else np.zeros(0)
                    self.pending[drop_role] = [buf[k:]]
            self.pending[role].append(np.asarray(x, dtype=np.float64))
            if any(v is None for v in self.t0.values()):
                return
            a = np.concatenate(self.pending["a"]) if self.pending["a"] else np.zeros(0)
            b = np.concatenate(self.pending["b"]) if self.pending["b"] else np.zeros(0)
            k = min(a.size, b.size)
            if k == 0:
                return
            self.pending = {"a": [a[k:]], "b": [b[k:]]}
            aec, plv = self.coupling.update(a[:k], b[:k])
            self.n += k
            self._since += k
            if self._since >= self.every:
                self._since = 0
                st = DyadState(self.n / self.sfreq, aec, plv, self.coupling.coupling_index, self.si["a"], self.si["b"])
                self.latest = st
                row = (st.t_s, st.aec, st.plv, st.coupling, st.si_a, st.si_b)
                self.rows.append(row)
                if self.path is not None:
                    with self.path.open("a") as f:
                        f.write("\t".join(f"{v:.6g}" for v in row) + "\n")

    def summary(self) -> dict:
        """Mean coupling over the session (for the dyad sidecar)."""
        arr = np.array(self.rows, dtype=float) if self.rows else np.zeros((0, len(self.COLUMNS)))
        mean = lambda c: float(np.nanmean(arr[:, c])) if arr.size and np.isfinite(arr[:, c]).any() else None  # noqa: E731
        return {"updates": len(self.rows), "mean_aec": mean(1), "mean_plv": mean(2), "mean_coupling": mean(3)}


def write_dyad_sidecar(folder, info: dict) -> Path:
    """``dyad.json``: both participant codes, their recordings, the clock alignment and the coupling summary."""
    path = Path(folder) / "dyad.json"
    path.write_text(json.dumps(info, indent=1, default=str))
    return path
