"""The dyad: inter-brain mu coupling separates coupled from uncoupled windows of a simulated pair."""

import numpy as np
from scipy.stats import mannwhitneyu

from neurofeed.dyad.coupling import window_coupling
from neurofeed.dyad.monitor import DyadMonitor, SharedMuDrive, alternating_windows
from neurofeed.hardware.sources.simulated import MuSimulator


def test_window_coupling_limits(rng):
    n = 2500
    ph = np.cumsum(np.full(n, 2 * np.pi * 10 / 250))
    env = 1 + 0.5 * np.sin(np.arange(n) / 200)
    za = env * np.exp(1j * ph)
    aec, plv = window_coupling(za, 0.7 * env * np.exp(1j * (ph + 0.8)))
    assert aec > 0.99 and plv > 0.99
    zb = (1 + 0.5 * rng.random(n)) * np.exp(1j * rng.uniform(0, 2 * np.pi, n))
    aec, plv = window_coupling(za, zb)
    assert abs(aec) < 0.1 and plv < 0.1


def test_simulated_dyad_coupling_separates_on_from_off_windows():
    fs, dur = 250.0, 120.0
    drive = SharedMuDrive(fs, dur + 5, alternating_windows(dur, 20.0), seed=4)
    a, b = MuSimulator(fs, seed=11, mu_hz=11.0), MuSimulator(fs, seed=12, mu_hz=10.3)
    drive.attach(a, 0.0)
    drive.attach(b, 0.5)
    rows = [a.ch_names.index(c) for c in ("C3", "C4")]
    mon = DyadMonitor(fs, window_s=10.0)
    for k in range(0, int(dur * fs), 25):
        xa, _ = a.generate(25)
        xb, _ = b.generate(25)
        mon.add("a", xa[rows].mean(axis=0), k / fs)
        mon.add("b", xb[rows].mean(axis=0), k / fs)
    res = np.array(mon.rows)
    t, idx = res[:, 0], res[:, 3]
    # windows whose 10-s lookback lies wholly inside a coupled / an uncoupled stretch
    look = np.linspace(-9.9, -0.1, 25)
    on = np.array([drive.coupled(tt + look).all() for tt in t]) & np.isfinite(idx)
    off = np.array([not drive.coupled(tt + look).any() for tt in t]) & np.isfinite(idx)
    assert on.sum() > 50 and off.sum() > 50
    auc = mannwhitneyu(idx[on], idx[off]).statistic / (on.sum() * off.sum())
    assert auc >= 0.9, auc
    assert np.median(idx[on]) > np.median(idx[off]) + 0.3


def test_monitor_aligns_sources_on_their_clock():
    fs = 250.0
    mon = DyadMonitor(fs, window_s=2.0)
    t = np.arange(3000) / fs
    x = np.sin(2 * np.pi * 10 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * t))
    # b starts 0.2 s (50 samples) later than a on the shared clock: the monitor must drop a's lead
    for k in range(0, 2900, 10):
        mon.add("a", x[k:k + 10], k / fs)
    for k in range(50, 3000, 10):
        mon.add("b", x[k:k + 10], k / fs)
    assert mon.latest.plv > 0.99 and mon.latest.aec > 0.95


class _Chain:
    """The part of a MuChain that PersonInput reads: the spatial weights (targets × channels)."""

    def __init__(self, n_ch, rows):
        self.weights = np.zeros((len(rows), n_ch))
        for i, r in enumerate(rows):
            self.weights[i, r] = 1.0


def test_coupling_survives_offsets_drift_mains_and_dropped_packets():
    """What hardware sends: tens of mV of electrode offset with drift, 60 Hz mains, NaN gap columns."""
    from neurofeed.dyad.monitor import PersonInput

    fs, dur = 250.0, 100.0
    drive = SharedMuDrive(fs, dur + 5, alternating_windows(dur, 20.0), seed=5)
    sims = [MuSimulator(fs, seed=21, line_hz=60.0, line_uv=20.0), MuSimulator(fs, seed=22, line_hz=60.0, line_uv=20.0)]
    drive.attach(sims[0], 0.0)
    drive.attach(sims[1], 0.5)
    rows = [sims[0].ch_names.index(c) for c in ("C3", "C4")]
    people = [PersonInput(_Chain(len(sims[0].ch_names), rows), fs) for _ in sims]
    offset = np.linspace(-40e3, 40e3, len(sims[0].ch_names))[:, None]  # µV
    mon = DyadMonitor(fs, window_s=10.0)
    rng = np.random.default_rng(0)
    for k in range(0, int(dur * fs), 10):
        t = (k + np.arange(10)) / fs
        for role, sim, person in zip("ab", sims, people):
            x, _ = sim.generate(10)
            x = x + offset + 30.0 * t  # offsets and a 30 µV/s drift
            if rng.random() < 0.02:
                x[:, rng.integers(0, 10):] = np.nan  # a dropped packet: gap columns
            y = person(x)
            assert np.isfinite(y).all()
            mon.add(role, y, t[0])
    res = np.array(mon.rows)
    tt, idx = res[:, 0], res[:, 3]
    look = np.linspace(-9.9, -0.1, 25)
    on = np.array([drive.coupled(v + look).all() for v in tt]) & np.isfinite(idx)
    off = np.array([not drive.coupled(v + look).any() for v in tt]) & np.isfinite(idx)
    assert on.sum() > 50 and off.sum() > 50
    auc = mannwhitneyu(idx[on], idx[off]).statistic / (on.sum() * off.sum())
    assert auc >= 0.9, auc


def test_monitor_rows_do_not_depend_on_how_the_two_threads_interleave():
    """Rows at fixed aligned samples, each with the SI of the update covering it: any order, same rows."""
    fs = 250.0
    rng = np.random.default_rng(3)
    xa, xb = rng.standard_normal(5000), rng.standard_normal(5000)

    def run(order):
        mon = DyadMonitor(fs, window_s=2.0)
        pos = {"a": 0, "b": 0}
        data = {"a": xa, "b": xb}
        for role in order:
            k = pos[role]
            mon.add(role, data[role][k:k + 10], k / fs)
            mon.state(role, k + 10, float(k))  # the SI of an update = its first sample, to check which one a row took
            pos[role] += 10
        return np.array(mon.rows)

    alternating = run(["a", "b"] * 500)
    a_first = run(["a"] * 500 + ["b"] * 500)
    assert len(alternating) == len(a_first) > 150
    np.testing.assert_array_equal(alternating, a_first)
    # every row's SI is the update whose samples end at or before the row's point
    assert np.all(alternating[:, 4] <= alternating[:, 0] * fs - 10 + 1e-9)
