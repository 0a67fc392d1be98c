"""The therapist–client dyad ("resonant field"): two people, two sources, one clock, their coupling.

Each person's source runs through its own :class:`~neurofeed.live.pipeline.Pipeline` (own chain,
baseline and SI, own recording). A :class:`DyadMonitor` is a sink of both pipelines: it takes
each person's referenced mu-target signal per chunk, aligns the two on their source timestamps
(one host clock) and feeds :class:`~neurofeed.dyad.coupling.DyadCoupling`, which gives the
amplitude-envelope correlation (AEC) and the mu phase-locking value (PLV) over a sliding window.
The shared participant view shows the coupling index; the console shows both people.

The simulated headset has a partner mode (:class:`SharedMuDrive`): in scripted windows both
simulated people's mu rhythms follow one shared envelope and phase (ground truth for tests).
"""

from __future__ import annotations

import bisect
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from .coupling import DyadCoupling


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


class _Fifo:
    """Samples queued for one person: a list of arrays taken from the front (no re-copying)."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.n = 0

    def put(self, x: np.ndarray) -> None:
        if x.size:
            self.parts.append(x)
            self.n += x.size

    def take(self, k: int) -> np.ndarray:
        """The first ``k`` samples (``k`` <= ``n``), removed."""
        out, need = [], k
        while need:
            p = self.parts[0]
            if p.size <= need:
                out.append(self.parts.pop(0))
                need -= p.size
            else:
                out.append(p[:need])
                self.parts[0] = p[need:]
                need = 0
        self.n -= k
        return np.concatenate(out) if len(out) != 1 else out[0]


class PersonInput:
    """One person's signal for the coupling: the mean of the referenced targets, held and high-passed.

    Non-finite samples (gaps, NaN from the device) are held at the channel's last finite value,
    as the DSP chain holds them (docs/ARCHITECTURE.md, "Contracts"); the chain's current spatial weights (reference,
    ocular regression) give the targets; a 1-Hz 2nd-order Butterworth high-pass (state seeded at
    the first sample) removes electrode offsets and drift, which the analytic band-pass of
    :class:`~neurofeed.dyad.coupling.AnalyticMu` would otherwise leak. Its phase shift at 8–13 Hz
    is a few degrees and the same for both people, so PLV and AEC are unaffected.

    Parameters
    ----------
    chain : MuChain
        The person's own DSP chain (its ``weights`` are read per chunk, after the chain's step).
    sfreq : float
    """

    HIGHPASS_HZ = 1.0

    def __init__(self, chain, sfreq: float):
        self.chain = chain
        self.sos = signal.butter(2, self.HIGHPASS_HZ, btype="highpass", fs=float(sfreq), output="sos")
        self.zi = None
        self.last = None

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """(n_samples,) µV of one raw chunk (n_channels × n_samples, µV)."""
        x = np.array(data, dtype=np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            last = self.last if self.last is not None else np.zeros(x.shape[0])
            for i in np.flatnonzero(bad.any(axis=1)):
                row = x[i]
                ok = np.flatnonzero(~bad[i])
                idx = np.searchsorted(ok, np.arange(row.size), side="right") - 1
                row[:] = np.where(idx >= 0, row[ok[np.maximum(idx, 0)]] if ok.size else 0.0, last[i])
        if x.shape[1]:
            self.last = x[:, -1].copy()
        y = (self.chain.weights @ x).mean(axis=0)
        if self.zi is None and y.size:
            self.zi = signal.sosfilt_zi(self.sos) * y[0]
        if y.size:
            y, self.zi = signal.sosfilt(self.sos, y, zi=self.zi)
        return y


class DyadMonitor:
    """Aligns two people's referenced mu-target signals and computes their coupling.

    Use :meth:`sink` for each person's pipeline (``sink("a", chain)``, ``sink("b", chain)``); each
    sink's ``on_chunk`` hands that person's referenced targets (mean over targets,
    :class:`PersonInput`) to the monitor and its ``on_state`` that person's SI. The monitor
    consumes the samples both people have and publishes :attr:`latest`.

    The result does not depend on how the two acquisition threads interleave, so a replay of
    the two journals gives the same ``dyad.tsv``: the coupling is computed at fixed points of
    the aligned sample timeline (every ``update_every_s``), each row's SI is that of the last
    update at or before that point, and a row is written only once both people's states cover
    it (when states are fed; :meth:`add` alone, as in tests, processes at once).

    Alignment (one clock): the first timestamp of each source's first chunk; the earlier
    starter's lead (in samples) is dropped, after which both are taken sample by sample (both
    sources must have the same rate). :meth:`alignment` reports the lead and each source's clock
    drift against its sample count.

    Parameters
    ----------
    sfreq : float
        The common sampling rate (Hz); both sources must have it.
    band_hz : (float, float)
    window_s : float
        Coupling window (s).
    out : Path, optional
        Folder: ``dyad.tsv`` (time s, AEC, PLV, coupling index, SI a, SI b) is appended there.
    update_every_s : float
        One coupling value per this much aligned signal (s).
    """

    COLUMNS = ("t_s", "aec", "plv", "coupling", "si_a", "si_b")
    ROLES = ("a", "b")

    def __init__(self, sfreq: float, band_hz=(8.0, 13.0), window_s: float = 10.0, out=None,
                 update_every_s: float = 0.1):
        self.sfreq = float(sfreq)
        self.band_hz = tuple(band_hz)
        self.window_s = float(window_s)
        self.coupling = DyadCoupling(sfreq, band_hz, window_s)
        self.fifo = {r: _Fifo() for r in self.ROLES}
        self.t0 = {r: None for r in self.ROLES}
        self.t_last = {r: None for r in self.ROLES}
        self.received = {r: 0 for r in self.ROLES}  # own samples handed over
        self.drop = {r: 0 for r in self.ROLES}  # own samples still to drop (the lead)
        self.dropped = {r: 0 for r in self.ROLES}
        self.consumed = {r: 0 for r in self.ROLES}  # own samples taken (dropped included)
        self.covered = {r: None for r in self.ROLES}  # own samples with a published state (None: not fed)
        self.si_samples = {r: [] for r in self.ROLES}
        self.si_values = {r: [] for r in self.ROLES}
        self.lock = threading.Lock()
        self.latest = DyadState()
        self.n = 0
        self.every = max(1, int(round(update_every_s * self.sfreq)))
        self.rows: list[tuple] = []
        self.path = Path(out) / "dyad.tsv" if out is not None else None
        if self.path is not None:
            self.path.write_text("\t".join(self.COLUMNS) + "\n")

    def sink(self, role: str, chain):
        """A pipeline sink feeding person ``role`` ("a" or "b") through its own chain's spatial weights."""
        monitor, person = self, PersonInput(chain, self.sfreq)

        class _Sink:
            def on_chunk(self, chunk):
                ts = chunk.timestamps
                first = float(ts[0]) if ts is not None and len(ts) else float("nan")
                last = float(ts[-1]) if ts is not None and len(ts) else float("nan")
                monitor.add(role, person(chunk.data), first, last)

            def on_state(self, st):
                monitor.state(role, st.sample_index, st.si_combined)

        return _Sink()

    def state(self, role: str, sample_index: int, si: float) -> None:
        """Person ``role``'s update covering its samples up to ``sample_index`` (own count), SI ``si``."""
        with self.lock:
            if self.si_samples[role] and sample_index == self.si_samples[role][-1]:
                return  # a re-published state (signal lost) at the same sample: the chunk's update stands
            self.si_samples[role].append(int(sample_index))
            self.si_values[role].append(float(si))
            self.covered[role] = int(sample_index)
            self._process()

    def add(self, role: str, x: np.ndarray, t_first: float, t_last: float | None = None) -> None:
        """Queue person ``role``'s next samples (µV) whose first sample has source time ``t_first`` (s)."""
        x = np.asarray(x, dtype=np.float64)
        with self.lock:
            if self.t0[role] is None:
                self.t0[role] = float(t_first)
                if all(self.t0[r] is not None for r in self.ROLES):
                    lead = self.t0["b"] - self.t0["a"]
                    lead = int(round(lead * self.sfreq)) if lead == lead else 0  # no timestamps: no lead
                    self.drop["a" if lead > 0 else "b"] = abs(lead)
            self.t_last[role] = t_last if t_last is not None else t_first + (x.size - 1) / self.sfreq
            self.received[role] += x.size
            self.fifo[role].put(x)
            self._process()

    def _si_at(self, role: str) -> float:
        """SI of the person's last update at or before its consumed samples."""
        k = bisect.bisect_right(self.si_samples[role], self.consumed[role]) - 1
        return self.si_values[role][k] if k >= 0 else float("nan")

    def _process(self) -> None:
        if any(self.t0[r] is None for r in self.ROLES):
            return
        for r in self.ROLES:  # drop the earlier starter's lead
            k = min(self.drop[r], self.fifo[r].n)
            if k:
                self.fifo[r].take(k)
                self.drop[r] -= k
                self.dropped[r] += k
                self.consumed[r] += k
        while True:
            need = self.every - self.n % self.every
            avail = min(self.fifo[r].n if self.drop[r] == 0 else 0 for r in self.ROLES)
            if any(self.covered[r] is not None for r in self.ROLES):  # states fed: rows wait for both SIs
                avail = min([avail] + [(self.covered[r] or 0) - self.consumed[r] for r in self.ROLES])
            if avail < need:
                return
            xa, xb = self.fifo["a"].take(need), self.fifo["b"].take(need)
            for r in self.ROLES:
                self.consumed[r] += need
            aec, plv = self.coupling.update(xa, xb)
            self.n += need
            st = DyadState(self.n / self.sfreq, aec, plv, self.coupling.coupling_index, self._si_at("a"),
                           self._si_at("b"))
            self.latest = st
            row = (st.t_s, st.aec, st.plv, st.coupling, st.si_a, st.si_b)
            self.rows.append(row)
            if self.path is not None:
                with self.path.open("a") as f:
                    f.write(format_row(row))
            for r in self.ROLES:  # forget SI updates no row can need any more
                k = bisect.bisect_right(self.si_samples[r], self.consumed[r]) - 1
                if k > 64:
                    del self.si_samples[r][:k - 1], self.si_values[r][:k - 1]

    def alignment(self) -> dict:
        """How the two sources were put on one clock (for ``dyad.json``).

        ``t0_s``: each source's first timestamp; ``lead_dropped_samples``: samples of the earlier
        starter dropped; ``clock_drift_s``: per source, its last timestamp minus where its sample
        count puts it (a source losing samples or a clock running off shows here);
        ``relative_drift_s``: b's drift minus a's (how far the pair slid apart by the end).
        """
        drift = {}
        for r in self.ROLES:
            if self.t0[r] is None or self.t_last[r] is None:
                drift[r] = None
            else:
                drift[r] = float(self.t_last[r] - self.t0[r] - (self.received[r] - 1) / self.sfreq)
        rel = drift["b"] - drift["a"] if None not in drift.values() else None
        return {"clock": "source timestamps (first sample of each source's first chunk)", "t0_s": dict(self.t0),
                "lead_dropped_samples": dict(self.dropped), "samples": dict(self.received),
                "clock_drift_s": drift, "relative_drift_s": rel}

    def summary(self) -> dict:
        """Mean coupling over the session (for the dyad sidecar)."""
        arr = np.array(self.rows, dtype=float) if self.rows else np.zeros((0, len(self.COLUMNS)))
        mean = lambda c: float(np.nanmean(arr[:, c])) if arr.size and np.isfinite(arr[:, c]).any() else None  # noqa: E731
        return {"updates": len(self.rows), "mean_aec": mean(1), "mean_plv": mean(2), "mean_coupling": mean(3)}


def format_row(row) -> str:
    """One ``dyad.tsv`` line (6 significant digits, ``nan`` for missing)."""
    return "\t".join("nan" if v != v else f"{v:.6g}" for v in row) + "\n"


def read_dyad_tsv(path) -> np.ndarray:
    """``dyad.tsv`` as an array (n_rows × 6: t_s, aec, plv, coupling, si_a, si_b)."""
    arr = np.loadtxt(path, delimiter="\t", skiprows=1, ndmin=2)
    return arr.reshape(-1, len(DyadMonitor.COLUMNS))


def write_dyad_sidecar(folder, info: dict) -> Path:
    """``dyad.json``: both participant codes, their recordings, the clock alignment and the coupling summary."""
    path = Path(folder) / "dyad.json"
    path.write_text(json.dumps(info, indent=1, default=str))
    return path
