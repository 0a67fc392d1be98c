"""Artifacts calibrated to the person on real EEG (S001), bad channels, the estimator-derived hold,
and electrode offsets + drift through Processor."""

import copy

import mne
import numpy as np
import pytest
from scipy import signal

from neurofeed.core.channels import normalize_names
from neurofeed.core.errors import NeurofeedError
from neurofeed.dsp.chain import MuChain
from neurofeed.dsp.quality import QualityConfig
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import load_protocol
from tests.conftest import DATA, PROTOCOLS

CYTON = ["Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2"]


@pytest.fixture(scope="module")
def s001_r03():
    raw = mne.io.read_raw_edf(DATA / "S001R03.edf", preload=True, verbose="error")
    return raw.get_data() * 1e6, normalize_names(raw.ch_names), float(raw.info["sfreq"])


def _run(chain, x, chunk=8):
    gated = np.zeros(x.shape[1], dtype=bool)
    power = np.zeros((len(chain.targets), x.shape[1]))
    for s in range(0, x.shape[1], chunk):
        power[:, s:s + chunk] = chain.process(x[:, s:s + chunk])
        gated[s:s + chunk] = chain.gated
    return power, gated


def test_calibration_on_s001_regresses_blinks_and_keeps_the_gate_mostly_open(s001_r03):
    x, names, fs = s001_r03
    x = x[[names.index(c) for c in CYTON]]
    nb = int(30 * fs)
    caps = QualityConfig(rail_uv=1e6, emg_uv=10.0, blink_uv=80.0)
    fixed = MuChain(fs, CYTON, ["C3", "C4"], "average", (8, 13), "wcfir", 0.05, None, 60.0, caps)
    _, gated_fixed = _run(fixed, x)
    chain = MuChain(fs, CYTON, ["C3", "C4"], "average", (8, 13), "wcfir", 0.05, None, 60.0, caps)
    chain.keep_spatial = True
    _run(chain, x[:, :nb])
    chain.keep_spatial = False
    cal = chain.calibrate(chain.kept_raw)
    assert cal["emg_uv"] <= 10.0 and cal["blink_uv"] <= 80.0  # thresholds never above the caps
    assert set(cal["ocular"]) == {"C3", "C4"} and set(cal["ocular"]["C3"]) == {"Fp1", "Fp2"}
    assert 0.1 <= cal["hold_s"] <= 0.6  # from the estimator's impulse response, not a fixed 0.5 s
    # the baseline judged again by the calibrated gates (for excluding its artifacts)
    assert chain.baseline_gated.shape == (nb,) and cal["baseline_gated_fraction"] <= 0.15
    _, gated = _run(chain, x[:, nb:])
    assert gated.mean() <= 0.15 < gated_fixed[nb:].mean()  # the goal; fixed 80 µV gates most of the run
    # out of sample (after the baseline): the corrected targets no longer follow the frontal channels at 0.5–7 Hz
    lp = signal.butter(4, [0.5, 7.0], btype="bandpass", fs=fs, output="sos")
    cond = chain.conditioned(x[:, nb:])
    fp = signal.sosfiltfilt(lp, cond[:2].mean(axis=0))
    before = signal.sosfiltfilt(lp, chain.base_weights @ cond, axis=1)
    after = signal.sosfiltfilt(lp, chain.weights @ cond, axis=1)
    r_before = [abs(np.corrcoef(fp, t)[0, 1]) for t in before]
    r_after = [abs(np.corrcoef(fp, t)[0, 1]) for t in after]
    assert min(r_before) > 0.3 and all(a < 0.6 * b for a, b in zip(r_after, r_before)), (r_before, r_after)


def test_set_bad_channels_recomputes_the_weights_and_si_continues(s001_r03):
    x, names, fs = s001_r03
    x = x[[names.index(c) for c in CYTON]]
    chain = MuChain(fs, CYTON, ["C3", "C4"], "average", (8, 13), "wcfir", 0.05, None, 60.0,
                    QualityConfig(rail_uv=1e6))
    p0, _ = _run(chain, x[:, :800])
    chain.set_bad_channels(["O1"])
    o1 = CYTON.index("O1")
    assert np.all(chain.weights[:, o1] == 0) and np.allclose(chain.weights.sum(axis=1), 0)
    assert chain.weights[0, CYTON.index("C3")] == pytest.approx(1 - 1 / 7)  # average over the 7 left
    bad = x[:, 800:1600].copy()
    bad[o1] = np.nan  # the electrode fell off: it neither feeds the estimate nor gates
    reasons = set()
    p1 = np.zeros((2, bad.shape[1]))
    for s in range(0, bad.shape[1], 8):
        p1[:, s:s + 8] = chain.process(bad[:, s:s + 8])
        reasons |= set(chain.quality.gate_reasons)
    assert np.all(np.isfinite(p1)) and "nan" not in reasons and chain.quality.flags[o1] & 1  # flagged, not gating
    assert abs(np.log10(p1[:, 400:].mean() / p0[:, 400:].mean())) < 0.5  # the SI continues, same scale
    with pytest.raises(NeurofeedError, match="C3"):
        chain.set_bad_channels(["C3"])
    with pytest.raises(NeurofeedError, match="Cz"):
        chain.set_bad_channels(["Cz"])
    chain.set_bad_channels([])
    assert np.all(chain.weights[:, o1] != 0)


def test_gate_hold_follows_the_estimators_memory():
    holds = {est: MuChain(250, ["C3", "C4"], ["C3", "C4"], "raw", (8, 13), est, 0.05, None, 50.0).hold_s
             for est in ("wcfir", "iir", "window")}
    assert 0.15 <= holds["wcfir"] <= 0.6 and 0.15 <= holds["iir"] <= 0.6
    assert holds["window"] > 1.5 * holds["wcfir"]  # a 1-s window remembers longer, and holds longer


def _session(x, names, fs, proto):
    proc = Processor(copy.deepcopy(proto), fs, names, 187500.0, 1.0)
    for s in range(0, x.shape[1], 8):
        proc.step(x[:, s:s + 8])
        if proc.engine.finished:
            break
    return proc


@pytest.mark.parametrize("montage", ["full-laplacian", "cyton-average"])
def test_offsets_and_drift_do_not_change_si_or_baseline(s001_r03, montage):
    x, names, fs = s001_r03
    proto = load_protocol(PROTOCOLS / "demo.toml")
    if montage == "cyton-average":
        x = x[[names.index(c) for c in CYTON]]
        names = CYTON
        proto.signal.reference = "average"
    rng = np.random.default_rng(7)
    t = np.arange(x.shape[1]) / fs
    offsets = rng.uniform(-50e3, 50e3, x.shape[0])  # ±50 mV per electrode
    drift = rng.uniform(-30, 30, x.shape[0])[:, None] * t + 800 * np.sin(2 * np.pi * 0.02 * t + rng.uniform(0, 6, (x.shape[0], 1)))
    clean = _session(x, names, fs, proto)
    dirty = _session(x + offsets[:, None] + drift, names, fs, proto)
    b0, b1 = (np.array(list(p.engine.summary()["baseline_uv2"].values())) for p in (clean, dirty))
    assert np.all(np.abs(b1 / b0 - 1) <= 0.05), (b0, b1)
    blocks0, blocks1 = clean.engine.summary()["blocks"], dirty.engine.summary()["blocks"]
    assert [b["label"] for b in blocks0] == [b["label"] for b in blocks1] and len(blocks0) >= 3
    fed = 0
    for a, b in zip(blocks0, blocks1):
        if a["si_pooled"] is not None:
            np.testing.assert_allclose(b["si_pooled"], a["si_pooled"], atol=0.02)
        if a["mean_si_combined"] is not None:
            fed += 1
            assert abs(b["mean_si_combined"] - a["mean_si_combined"]) <= 0.02
    assert fed >= 2  # both feedback blocks compared
