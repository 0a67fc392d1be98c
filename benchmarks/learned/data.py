"""Training and test signals for the learned mu estimator (``neurofeed.dsp.learned``).

Every signal is what the estimator sees at run time: a conditioned (0.5-Hz high-pass + line
notch, causal, :class:`neurofeed.dsp.chain.MuChain`), referenced single channel at the chain's
rate. The truth is the non-causal analytic signal of that same channel
(:func:`neurofeed.dsp.learned.analytic_truth`, 8–13 Hz brick-wall, whole record).

Training data (``training_records``)
    * simulated bursty rhythms (:func:`simulate`): 1/f^β background, bursts of 8–13 Hz (and some
      out-of-band 5–8 / 13–20 Hz distractor bursts) of 0.15–3 s with a wandering frequency and
      a harmonic, EMG-like bursts (white noise above 20 Hz, 2–20 µV, 0.2–3 s: they teach the
      network to reject what the 1/f background barely has), white noise;
    * EEGMMIDB S001 **R01 and R02 only** (eyes open / closed baselines): every channel that has a
      small-Laplacian ring (7 central channels), and all 64 channels with a common average. R03–R06 and MI-OpenBCI S02 are the test
      records and never enter training or early stopping.

Rates: one network per sampling rate. The 160-Hz EEG is resampled (``scipy.signal.resample_poly``,
offline, before conditioning) to the other rates; simulated data are generated at each rate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import signal

_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(_ROOT))

from neurofeed.core.channels import LAPLACIAN_NEIGHBOURS  # noqa: E402
from neurofeed.dsp.chain import MuChain  # noqa: E402
from neurofeed.dsp.learned import analytic_truth  # noqa: E402
from neurofeed.hardware.sources.edf import read_raw  # noqa: E402

BAND = (8.0, 13.0)
SHARED = next((p / "shared" / "data" for p in (_ROOT.parent, _ROOT.parent.parent, Path("/work"))
               if (p / "shared" / "data" / "eegmmidb-S001").is_dir()), Path("/work/shared/data"))
S001 = SHARED / "eegmmidb-S001"
S02 = SHARED / "mi-openbci-S02" / "S02_R0.edf"
TRAIN_RUNS = ("R01", "R02")  # the only real EEG used for training
TEST_RUNS = ("R03", "R04", "R05", "R06")
S001_LINE_HZ, S02_LINE_HZ = 60.0, 50.0  # PhysioNet (US) and MI-OpenBCI (Argentina) mains


def pink(n, beta, rng):
    """Gaussian noise with a 1/f^beta power spectrum, unit variance."""
    f = np.fft.rfftfreq(n)
    spec = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) / np.maximum(f, 1.0 / n) ** (beta / 2)
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return x / x.std()


def simulate(sfreq, seconds, rng):
    """One simulated channel (µV): 1/f background + bursty rhythms + EMG-like bursts + white noise."""
    n = int(seconds * sfreq)
    t = np.arange(n) / sfreq
    x = rng.uniform(5, 15) * pink(n, rng.uniform(0.8, 2.0), rng)
    x += rng.uniform(0.5, 3) * rng.standard_normal(n)
    rate = rng.uniform(0.2, 0.8)  # bursts per second
    k = 0.0
    while True:
        k += rng.exponential(1 / rate)
        if k >= seconds:
            break
        dur = float(np.exp(rng.uniform(np.log(0.15), np.log(3.0))))
        in_band = rng.random() < 0.8
        f0 = rng.uniform(8.0, 13.0) if in_band else (rng.uniform(5.0, 7.8) if rng.random() < 0.5 else rng.uniform(13.2, 20))
        amp = rng.uniform(3, 30) if in_band else rng.uniform(3, 15)
        i0, i1 = int(k * sfreq), min(n, int((k + dur) * sfreq))
        m = i1 - i0
        if m < 4:
            continue
        env = signal.windows.tukey(m, rng.uniform(0.2, 1.0))
        freq = f0 + np.cumsum(rng.standard_normal(m)) * 0.3 / np.sqrt(sfreq)  # wandering frequency
        phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(freq) / sfreq
        burst = np.cos(phase)
        if rng.random() < 0.5:  # the mu arc's harmonic
            burst += rng.uniform(0.1, 0.4) * np.cos(2 * phase + rng.uniform(0, 2 * np.pi))
        x[i0:i1] += amp * env * burst
    for _ in range(rng.poisson(0.05 * seconds)):  # EMG-like bursts: broadband above 20 Hz
        i0 = int(rng.uniform(0, seconds) * sfreq)
        m = min(n - i0, int(rng.uniform(0.2, 3.0) * sfreq))
        if m < 8:
            continue
        emg = signal.sosfilt(signal.butter(4, min(20.0, 0.4 * sfreq), "highpass", fs=sfreq, output="sos"),
                             rng.standard_normal(m))
        x[i0:i0 + m] += rng.uniform(2, 20) * signal.windows.tukey(m, 0.3) * emg / (emg.std() + 1e-12)
    if rng.random() < 0.5:  # a continuous, slowly modulated rhythm under the bursts
        f0 = rng.uniform(8.0, 13.0)
        am = 1 + 0.8 * pink(n, 2.0, rng).clip(-1.2, 1.2)
        x += rng.uniform(1, 8) * am * np.cos(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi))
    return x


def condition(raw_uv, sfreq, ch_names, targets, reference, line_hz):
    """The chain's referenced, conditioned target signals (n_targets × n), as run time sees them."""
    chain = MuChain(sfreq, ch_names, targets, reference, BAND, "iir", 0.05, None, line_hz)
    return chain.spatial(raw_uv)


def read_uv(path):
    """(data in µV, sfreq, channel names) of an EDF."""
    raw = read_raw(path)
    return raw.get_data() * 1e6, float(raw.info["sfreq"]), list(raw.ch_names)


def resample(x, sfreq_in, sfreq_out):
    if abs(sfreq_in - sfreq_out) < 1e-9:
        return x
    from fractions import Fraction

    fr = Fraction(sfreq_out / sfreq_in).limit_denominator(1000)
    return signal.resample_poly(x, fr.numerator, fr.denominator, axis=-1)


def s001_targets(ch_names, min_neighbours=3):
    """Channels with at least ``min_neighbours`` of their small-Laplacian ring in the montage."""
    have = set(ch_names)
    out = []
    for c in ch_names:
        rings = LAPLACIAN_NEIGHBOURS.get(c)
        if rings and sum(n in have for n in rings[0]) >= min_neighbours:
            out.append(c)
    return out


def s001_run(run, sfreq, targets=None, reference="laplacian"):
    """Conditioned, referenced targets of S001 ``run`` at ``sfreq`` (resampled from 160 Hz)."""
    x, fs, names = read_uv(S001 / f"S001{run}.edf")
    x = resample(x, fs, sfreq)
    targets = targets or s001_targets(names)
    return condition(x, sfreq, names, targets, reference, S001_LINE_HZ), targets


def training_records(sfreq, sim_seconds=1200.0, seed=0):
    """``[(name, x, analytic truth)]`` at ``sfreq``: simulated channels and S001 R01/R02."""
    rng = np.random.default_rng(seed)
    recs = []
    for k in range(int(sim_seconds // 60)):
        raw = simulate(sfreq, 60.0, rng)[None]
        x = condition(raw, sfreq, ["C3"], ["C3"], "raw", None)[0]
        recs.append((f"sim{k}", x, analytic_truth(x, sfreq, BAND)))
    for run in TRAIN_RUNS:
        xs, names = s001_run(run, sfreq)  # small Laplacian where the montage has a ring
        for name, x in zip(names, xs):
            recs.append((f"S001{run} {name} laplacian", x, analytic_truth(x, sfreq, BAND)))
        raw, fs, all_names = read_uv(S001 / f"S001{run}.edf")  # common average on every channel
        xs = condition(resample(raw, fs, sfreq), sfreq, all_names, all_names, "average", S001_LINE_HZ)
        for name, x in zip(all_names, xs):
            recs.append((f"S001{run} {name} average", x, analytic_truth(x, sfreq, BAND)))
    return recs


def test_records():
    """The test records, each at its own rate: S001 R03–R06 (small Laplacian) and S02 (common
    average), C3 and C4: ``[(name, sfreq, x)]``."""
    out = []
    for run in TEST_RUNS:
        xs, _ = s001_run(run, 160.0, ["C3", "C4"])
        out += [(f"S001{run} {c}", 160.0, x) for c, x in zip(("C3", "C4"), xs)]
    x, fs, names = read_uv(S02)
    xs = condition(x, fs, names, ["C3", "C4"], "average", S02_LINE_HZ)
    out += [(f"S02 {c}", fs, r) for c, r in zip(("C3", "C4"), xs)]
    return out
