"""The dyad: inter-brain mu coupling separates coupled from uncoupled windows of a simulated pair."""

import numpy as np
from scipy.stats import mannwhitneyu

from neurofeed.dsp.coupling import window_coupling
from neurofeed.dyad import DyadMonitor, SharedMuDrive, alternating_windows
from neurofeed.sources.simulated import MuSimulator


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
