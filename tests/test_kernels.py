"""Kernels against scipy, and each estimator's declared group delay against a measurement."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from neurofeed.dsp.estimators import CFIREnvelope, IIREnvelope, WCFIREnvelope, WindowBandPower, design_cfir, psd_weights
from neurofeed.dsp.filters import SOSFilter, cascade, design_bandpass, design_notch
from neurofeed.dsp.kernels import cfir_power_inplace, goertzel_band_power, spatial_apply
from neurofeed.dsp.spatial import spatial_weights
from neurofeed.hardware.sources.simulated import MuSimulator, SimulationScript

SOS = cascade(design_notch(250, 50), design_bandpass(250, (8, 13), 2))
X = np.random.default_rng(0).standard_normal((3, 3000)) * 20


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 97), min_size=1, max_size=80))
def test_chunked_sosfilt_equals_scipy_whole_signal(sizes):
    f = SOSFilter(SOS, 3)
    out, pos = [], 0
    for n in sizes:
        if pos >= X.shape[1]:
            break
        c = X[:, pos:pos + n].copy()
        out.append(f.process_inplace(c))
        pos += c.shape[1]
    got = np.concatenate(out, axis=1)
    want = signal.sosfilt(SOS, X[:, :pos], axis=1)
    assert np.max(np.abs(got - want)) <= 1e-9


def test_spatial_apply_and_laplacian_weights():
    names = ["FC3", "C5", "C1", "CP3", "C3", "C4", "Cz"]
    w = spatial_weights(names, ["C3"], "laplacian")
    np.testing.assert_allclose(w[0], [-0.25, -0.25, -0.25, -0.25, 1, 0, 0])
    x = np.random.default_rng(1).standard_normal((7, 12))
    out = np.zeros((1, 12))
    spatial_apply(w, x, out)
    np.testing.assert_allclose(out, w @ x)
    car = spatial_weights(names, ["C4"], "average")
    np.testing.assert_allclose(car.sum(), 0.0, atol=1e-12)
    bip = spatial_weights(names, ["C3"], "bipolar", bipolar_pairs={"C3": "Cz"})
    assert bip[0, 4] == 1 and bip[0, 6] == -1


def test_laplacian_falls_back_to_the_next_ring():
    w = spatial_weights(["F3", "C3", "Cz", "P3", "T7", "C4"], ["C3"], "laplacian")
    assert np.isclose(w[0, 1], 1.0) and np.isclose(w[0, 0], -0.25) and w[0, 5] == 0


def test_cfir_kernel_equals_complex_lfilter():
    h = design_cfir(250, (8, 13), 0.05, 250)
    x = X[:2].copy()
    re = np.ascontiguousarray(np.broadcast_to(h.real, (2, 250)))
    im = np.ascontiguousarray(np.broadcast_to(h.imag, (2, 250)))
    hist, pos, ps = np.zeros((2, 500)), np.zeros(1, np.int64), np.zeros(2)
    got = np.concatenate([cfir_power_inplace(x[:, i:i + 7].copy(), re, im, hist, pos, 1.0, ps)
                          for i in range(0, x.shape[1], 7)], axis=1)
    want = np.abs(signal.lfilter(h, [1.0], x, axis=1)) ** 2
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_goertzel_band_power_equals_scipy_welch_one_segment():
    x = X[:, :250]
    win = signal.get_window("hann", 250)
    got = goertzel_band_power(x, 250.0, 8.0, 13.0, win)
    f, p = signal.welch(x, fs=250, window="hann", nperseg=250)
    want = p[:, (f >= 8) & (f <= 13)].mean(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-9)


def _step_delay_s(make, sfreq=250.0):
    """Delay of an estimator's envelope: time for its amplitude output to cross half of a step
    in mu amplitude (10 -> 4 µV at 20 s) on simulated EEG (1/f background, frequency wander),
    processed sample by sample (chunking is the pipeline's delay, not the estimator's), median of six seeds."""
    script = SimulationScript(mu_factor=[(20.0, 40.0, 0.4)])
    delays = []
    for seed in range(6):
        est = make()
        sim = MuSimulator(sfreq, script=script, seed=seed, modulation=0.0, pink_uv=1.0, line_uv=0.0, alpha_amp_uv=0)
        data, _ = sim.generate(int(40 * sfreq))
        x = data[sim.ch_names.index("C3")][None].copy()
        if getattr(est, "needs_fit", False):
            est.fit(x[:, : int(15 * sfreq)])
        out = np.concatenate([est.process_inplace(x[:, i:i + 1].copy()) for i in range(x.shape[1])], axis=1)
        amp = np.sqrt(2 * np.maximum(out[0], 0))
        t = np.arange(amp.size) / sfreq
        smooth = np.convolve(amp, np.ones(23) / 23, mode="same")  # a centred (zero-delay) ripple filter
        before = np.median(smooth[(t > 15) & (t < 20)])
        after = np.median(smooth[(t > 25) & (t < 30)])
        cross = t[(t > 19.5) & (smooth < (before + after) / 2)][0]
        delays.append(cross - 20.0)
    return float(np.median(delays)), est.group_delay_s


@pytest.mark.parametrize("make", [
    lambda: IIREnvelope(250, (8, 13), 1, smoothing_s=0.05),
    lambda: CFIREnvelope(250, (8, 13), 1, delay_s=0.05),
    lambda: CFIREnvelope(250, (8, 13), 1, delay_s=0.1),
    lambda: WCFIREnvelope(250, (8, 13), 1, delay_s=0.05),
    lambda: WindowBandPower(250, (8, 13), 1, window_s=1.0),
], ids=["iir", "cfir-50ms", "cfir-100ms", "wcfir-50ms", "window-1s"])
def test_measured_delay_matches_declared_delay(make):
    measured, declared = _step_delay_s(make)
    assert abs(measured - declared) <= 0.005, (measured, declared)


def test_weighted_cfir_fit_changes_taps_per_channel():
    est = WCFIREnvelope(250, (8, 13), 2, delay_s=0.05)
    before = est.h_re.copy()
    x = np.random.default_rng(2).standard_normal((2, 5000))
    x[1] = signal.lfilter([1], [1, -0.95], x[1])  # a different spectrum on channel 2
    est.fit(x)
    assert est.fitted and not np.allclose(est.h_re, before)
    assert not np.allclose(est.h_re[0], est.h_re[1])
    assert psd_weights(x[0], 250).shape == (2048,)


def test_dft_band_power_equals_scipy_welch_and_goertzel():
    from neurofeed.dsp.kernels import band_power_basis, band_power_dft

    x = X[:, 500:750] + 40.0  # an offset: welch removes the mean, so must we
    win = signal.get_window("hann", 250)
    got = band_power_dft(x, *band_power_basis(250, 250.0, 8.0, 13.0, win), np.zeros(3))
    f, p = signal.welch(x, fs=250, window="hann", nperseg=250)
    np.testing.assert_allclose(got, p[:, (f >= 8) & (f <= 13)].mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(got, goertzel_band_power(x, 250.0, 8.0, 13.0, win), rtol=1e-9)


def test_hold_finite_holds_the_last_finite_value_and_starts_from_the_first():
    from neurofeed.dsp.quality import hold_finite

    nan = np.nan
    x = np.array([[nan, 2.0, nan, nan, 5.0, np.inf], [nan, nan, nan, nan, nan, nan], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    want = np.array([[2.0, 2.0, 2.0, 2.0, 5.0, 5.0], [0.0] * 6, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    assert np.array_equal(hold_finite(x), want)
    clean = np.arange(6.0).reshape(2, 3)
    assert hold_finite(clean) is clean  # nothing to hold: no copy


def test_true_runs_with_offset_and_merge():
    from neurofeed.recording.journal import merge_runs, true_runs

    mask = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1], bool)
    assert true_runs(mask).tolist() == [[1, 2], [5, 1], [10, 2]]
    assert true_runs(mask, offset=100).tolist() == [[101, 2], [105, 1], [110, 2]]
    assert true_runs(mask, merge=3).tolist() == [[1, 5], [10, 2]]  # 2 samples apart: joined; 4: not
    assert true_runs(np.zeros(4, bool)).shape == (0, 2)
    # a gap journaled chunk by chunk is one gap; runs apart stay apart
    assert merge_runs(np.array([[10, 3], [13, 2], [20, 1]])).tolist() == [[10, 5], [20, 1]]
