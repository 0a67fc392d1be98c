"""Conditioning stage, frequency-response checks, declared delays, sampling rates, NaN hold."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from neurofeed.core.errors import NeurofeedError
from neurofeed.dsp.chain import MuChain
from neurofeed.dsp.conditioning import Conditioner, design_conditioning
from neurofeed.dsp.kernels import ar_interpolate
from neurofeed.dsp.quality import FILLED, NONFINITE, QualityConfig, ar_order
from neurofeed.dsp.responses import fir_response, sos_group_delay_s, sos_response

CYTON = ["Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2"]


@pytest.mark.parametrize("sfreq,line", [(160, 60), (250, 50), (250, 60), (2048, 50)])
def test_conditioning_design_against_scipy_response(sfreq, line):
    sos = design_conditioning(sfreq, line)
    f = np.array([0.0, 8.0, 10.5, 13.0, line])
    _, ref = signal.freqz_sos(sos, worN=f, fs=sfreq)  # the independent reference
    np.testing.assert_allclose(sos_response(sos, f, sfreq), ref, rtol=1e-12, atol=1e-15)
    db = 20 * np.log10(np.maximum(np.abs(ref), 1e-20))
    assert db[0] <= -100  # double zero at DC
    assert np.all(np.abs(db[1:4]) <= 0.1)  # the mu band untouched (8–13 Hz within 0.1 dB)
    assert db[4] <= -40  # notch depth at the line frequency
    # -3 dB high-pass corner at 0.5 Hz, as designed
    _, hc = signal.freqz_sos(sos, worN=[0.5], fs=sfreq)
    assert abs(20 * np.log10(abs(hc[0])) + 3.01) < 0.1


def test_fir_response_equals_fft_of_taps():
    h = np.random.default_rng(0).standard_normal(64) + 1j * np.random.default_rng(1).standard_normal(64)
    k = np.arange(8)
    np.testing.assert_allclose(fir_response(h, k * 250 / 256, 250), np.fft.fft(h, 256)[:8], rtol=1e-10)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=60))
def test_chunked_conditioning_equals_scipy_with_seeded_zi(sizes):
    fs = 250.0
    x = np.random.default_rng(2).standard_normal((3, 1200)) * 20 + np.array([[50e3], [-50e3], [3e3]])
    c = Conditioner(fs, 3, 50.0)
    out, pos = [], 0
    for n in sizes:
        if pos >= x.shape[1]:
            break
        out.append(c.process_inplace(x[:, pos:pos + n].copy()))
        pos += out[-1].shape[1]
    zi = signal.sosfilt_zi(c.sos)[:, None, :] * x[None, :, 0, None]
    want = signal.sosfilt(c.sos, x[:, :pos], axis=1, zi=zi)[0]
    assert np.max(np.abs(np.concatenate(out, axis=1) - want)) <= 1e-6  # µV, on a 50-mV input


def test_like_is_the_same_design_with_a_fresh_state():
    fs = 250.0
    x = np.random.default_rng(3).standard_normal((2, 500)) * 20 + np.array([[40e3], [-7e3]])
    used = Conditioner(fs, 5, 60.0, 1.0)
    used.process_inplace(np.random.default_rng(4).standard_normal((5, 300)) * 1e3)  # a state to leave behind
    copy = used.like(2)
    assert copy.zi.shape[0] == 2 and (copy.line_hz, copy.highpass_hz, copy.sfreq) == (60.0, 1.0, fs)
    fresh = Conditioner(fs, 2, 60.0, 1.0)
    assert np.array_equal(copy.process_inplace(x.copy()), fresh.process_inplace(x.copy()))
    assert used.like().zi.shape[0] == 5


def test_dc_offset_gives_no_transient_from_sample_0():
    fs = 250.0
    offsets = np.array([50e3, -50e3, 20e3, -35e3, 1e3, 0.0, 45e3, -5e3])  # µV per channel
    x = np.repeat(offsets[:, None], int(3 * fs), axis=1)
    c = Conditioner(fs, 8, 50.0)
    y = c.process_inplace(x[:, :10].copy())
    assert np.max(np.abs(y)) < 1e-6  # ≈0 from sample 0 (unseeded: tens of mV)
    cyton_range = QualityConfig(rail_uv=0.98 * 187500.0)  # the ADS1299's range at gain 24
    chain = MuChain(fs, CYTON, ["C3", "C4"], "average", (8, 13), "wcfir", 0.05, None, 50.0, cyton_range)
    p = np.concatenate([chain.process(x[:, i:i + 10]).copy() for i in range(0, x.shape[1], 10)], axis=1)
    assert np.max(p) < 1e-9  # µV²: no ringing of the estimator or the spatial filter
    # the quality filters are seeded too: a constant offset triggers neither blink nor EMG (only "flat")
    assert set(chain.quality.gate_reasons) <= {"flat"} and chain.quality.blink_peak_uv < 1e-6
    assert np.max(chain.quality.emg_rms_uv) < 1e-6


def test_chain_rejects_dc_whatever_the_fitted_weights():
    fs = 250.0
    chain = MuChain(fs, CYTON, ["C3", "C4"], "average", (8, 13), "wcfir", 0.05, None, 50.0)
    est = chain.estimator
    # taps fitted to a spectrum that leaves DC unconstrained: here forced to pass DC strongly
    taps = est.taps() + 5.0 / est.n_taps
    est.set_taps(taps)
    assert est.power_response([0.0])[0] > 1e-3 * est.power_response([10.5])[0]  # the estimator alone passes DC
    figs = chain.check_response()
    assert figs["dc_db"]["chain"] <= -60 and figs["line_db"]["chain"] <= -40
    # without the conditioning stage, the same chain fails with a message naming the filter and the figure
    chain.conditioner.sos = np.array([[1.0, 0, 0, 1.0, 0, 0]])
    with pytest.raises(NeurofeedError, match=r"rejects DC by only .* dB .*estimator wcfir"):
        chain.check_response()


def test_declared_conditioning_delay_matches_measured():
    fs = 2048.0  # fine time resolution for a ~1-ms delay
    sos = design_conditioning(fs, 50.0)
    t = np.arange(int(4 * fs)) / fs
    env = np.exp(-0.5 * ((t - 2.0) / 0.15) ** 2)
    x = env * np.cos(2 * np.pi * 10.5 * t)
    y = signal.sosfilt(sos, x)
    e_in, e_out = np.abs(signal.hilbert(x)), np.abs(signal.hilbert(y))
    measured = (np.sum(t * e_out) / e_out.sum()) - (np.sum(t * e_in) / e_in.sum())  # envelope centroid shift
    declared = float(sos_group_delay_s(sos, [10.5], fs)[0])
    assert 0.0005 < declared < 0.003  # small, as documented (~1 ms)
    assert abs(measured - declared) < 0.0003


def test_chain_group_delay_is_conditioning_plus_estimator_and_measured():
    fs = 250.0
    chain = MuChain(fs, ["C3", "C4"], ["C3", "C4"], "raw", (8, 13), "cfir", 0.05, None, 50.0)
    declared = chain.group_delay_s
    assert declared == pytest.approx(chain.conditioning_delay_s + chain.estimator.group_delay_s)
    # measured through the whole chain: half-crossing of a 1 → 0.4 amplitude step at 10.5 Hz
    n = int(4 * fs)
    t = np.arange(2 * n) / fs
    amp = np.where(t < n / fs, 1.0, 0.4)
    x = np.repeat((amp * np.cos(2 * np.pi * 10.5 * t))[None], 2, axis=0) * 10 + 30e3  # with an offset
    out = np.concatenate([chain.process(x[:, i:i + 5]).copy() for i in range(0, x.shape[1], 5)], axis=1)[0]
    a = np.sqrt(2 * np.maximum(out, 0))
    w = int(round(fs / 10.5))
    a = np.convolve(a, np.ones(w) / w, mode="same")
    half = 0.5 * (a[n - int(0.5 * fs)] + a[-int(0.5 * fs)])
    measured = np.nonzero(a[n:] < half)[0][0] / fs
    assert abs(measured - declared) <= 0.012  # within 3 samples at 250 Hz (one rhythm, not three)


@pytest.mark.parametrize("sfreq", [100, 125, 160, 250, 2048])
def test_sampling_rates_construct_and_run(sfreq):
    from neurofeed.dsp.quality import emg_band

    chain = MuChain(sfreq, CYTON, ["C3", "C4"], "average", (8, 13), "wcfir", 0.05, None, 50.0)
    assert chain.estimator.n_taps == int(round(2 * sfreq))  # 2-s taps at every rate (4096 at 2048 Hz)
    lo, hi = emg_band(sfreq)
    assert hi < sfreq / 2 and not (lo <= 50 <= hi)
    rng = np.random.default_rng(0)
    n = int(3 * sfreq)
    t = np.arange(n) / sfreq
    x = rng.standard_normal((8, n)) * 5 + 40e3
    x[2:4] += 20 * np.cos(2 * np.pi * 10 * t)  # the rhythm at C3/C4 only (an average reference keeps it)
    base = chain.spatial(x)
    chain.retune(chain.band_hz, baseline=base)  # the fit on the grid sized from the taps
    step = max(1, int(sfreq // 25))
    p = np.concatenate([chain.process(x[:, i:i + step]).copy() for i in range(0, n, step)], axis=1)
    assert np.all(np.isfinite(p)) and p[:, -int(sfreq):].mean() > 10  # the 10-Hz rhythm is seen
    assert chain.response_db["dc_db"]["chain"] <= -60


def test_nonfinite_samples_are_held_flagged_and_gated():
    fs = 250.0
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 1000)) * 10 + 30e3
    bad = x.copy()
    bad[2, 500:520] = np.nan  # longer than a fill (and open at its chunk's end): held
    bad[3, 600] = np.inf
    held = x.copy()
    held[2, 500:520] = held[2, 499]
    # a short gap is filled (issue 19) from both sides by the AR model of the channel's last 2 s
    # and the 9 samples that arrive with it in its chunk (issue 24)
    fill = np.zeros(1)
    assert ar_interpolate(x[3, 100:600].copy(), x[3, 601:610].copy(), 1, ar_order(fs), fill)
    held[3, 600] = fill[0]
    assert abs(fill[0] - x[3, 600]) < 30.0  # the white noise's 10 µV: a guess, but not a wild one
    a = MuChain(fs, CYTON, ["C3", "C4"], "average", (8, 13), "iir", 0.05, None, 50.0)
    b = MuChain(fs, CYTON, ["C3", "C4"], "average", (8, 13), "iir", 0.05, None, 50.0)
    flags, gated = 0, False
    pa, pb = [], []
    for i in range(0, 1000, 10):
        pa.append(a.process(bad[:, i:i + 10]).copy())
        pb.append(b.process(held[:, i:i + 10]).copy())
        if 500 <= i < 610:
            flags |= int(a.quality.flags[2] | a.quality.flags[3])
            gated |= a.gated
    np.testing.assert_allclose(np.concatenate(pa, 1), np.concatenate(pb, 1), rtol=1e-12)  # held / filled
    assert flags & NONFINITE and flags & FILLED and gated


def test_line_at_nyquist_is_notched():
    sos = design_conditioning(100.0, 50.0)
    _, h = signal.freqz_sos(sos, worN=[10.5, 50.0], fs=100.0)
    assert abs(h[1]) < 1e-6 and abs(20 * np.log10(abs(h[0]))) < 0.5
