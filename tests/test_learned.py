"""The learned mu estimator (neurofeed.dsp.learned): shipped weights, streaming = reference forward
pass (numpy, and torch when installed), causality, declared delay, registration as a protocol option."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from neurofeed.core.errors import NeurofeedError, ProtocolError
from neurofeed.dsp.chain import MuChain
from neurofeed.dsp.estimators import ESTIMATORS, make_estimator
from neurofeed.dsp.learned import WEIGHTS_PATH, LearnedEnvelope, load_weights, reference_features, shipped_designs
from neurofeed.protocol.schema import parse_protocol
from tests.conftest import DATA, PROTOCOLS

BAND = (8.0, 13.0)
S001R01 = DATA / "S001R01.edf"  # the real EEG the suite carries (tests/data)


def _signal(sfreq, seconds, seed=0):
    """White noise plus an amplitude-modulated 10-Hz rhythm (µV), zero-mean like the conditioned
    signal the estimator sees in the chain."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sfreq)) / sfreq
    return 10 * rng.standard_normal(t.size) + 20 * (1 + np.sin(2 * np.pi * 0.3 * t)) * np.cos(2 * np.pi * 10 * t)


def test_shipped_weights_load_for_the_supported_rates():
    assert WEIGHTS_PATH.is_file()
    nets = load_weights()
    rates = {k[0] for k in nets}
    assert {125.0, 160.0, 200.0, 250.0, 256.0} <= rates  # OpenBCI Daisy, EEGMMIDB, Ganglion, Cyton, Muse
    for (sfreq, delay_ms), net in nets.items():
        c = net["w0"].shape[0]
        assert net["w"].shape[1:] == (c, 3, c) and net["w_out"].shape == (2, c)
        assert net["w"].shape[0] == net["dilations"].size - 1
        assert np.all(np.isfinite(net["w"])) and np.abs(net["w_out"]).max() > 0
        assert net["meta"]["band_hz"] == list(BAND)
        assert "R03-R06 and S02 held out" in net["meta"]["trained_on"]


@pytest.mark.parametrize("sfreq", [125.0, 160.0, 250.0])
def test_streaming_matches_the_reference_forward_pass(sfreq):
    x = _signal(sfreq, 6.0)
    for _, delay_ms in shipped_designs(sfreq):
        est = LearnedEnvelope(sfreq, BAND, 1, delay_s=delay_ms / 1000)
        est.seeded = est.prefilter.seeded = True  # from zero history and zero filter state, as the reference
        sizes = [1, 5, 32, 3, 7]
        out, i, k = [], 0, 0
        while i < x.size:  # chunks of varying size: the state must carry over exactly
            c = x[i:i + sizes[k % len(sizes)]][None].copy()
            out.append(est.process_inplace(c)[0].copy())
            i += c.shape[1]
            k += 1
        out = np.concatenate(out)
        from scipy.signal import sosfilt

        h = reference_features(sosfilt(est.prefilter_sos, x), est.w0, est.w, est.dilations)  # the input low-pass first
        y = est.w_out[0] @ h
        ref = 0.5 * (y ** 2).sum(axis=0)
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9 * ref.max())


def test_streaming_matches_torch_forward_pass():
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "learned"))
    from train import build  # noqa: PLC0415

    sfreq = 160.0
    est = LearnedEnvelope(sfreq, BAND, 1, delay_s=0.0)
    model = build(torch, hidden=est.n_hidden, dilations=tuple(int(d) for d in est.dilations)).double()
    with torch.no_grad():
        model.first.weight.copy_(torch.tensor(est.w0[:, None, :]))
        for i, conv in enumerate(model.layers):
            conv.weight.copy_(torch.tensor(est.w[i].transpose(0, 2, 1)))
        model.out.weight.copy_(torch.tensor(est.w_out_shipped[:, :, None]))
        x = _signal(sfreq, 4.0, seed=1)
        from scipy.signal import sosfilt

        y = model(torch.tensor(sosfilt(est.prefilter_sos, x)[None, None])).numpy()[0]  # the input low-pass first
    est.seeded = est.prefilter.seeded = True
    out = est.process_inplace(x[None].copy())[0]
    np.testing.assert_allclose(out, 0.5 * (y ** 2).sum(axis=0), rtol=1e-8, atol=1e-8 * out.max())


def test_causal_future_samples_do_not_change_past_outputs():
    sfreq = 250.0
    x = _signal(sfreq, 4.0, seed=2)
    a = LearnedEnvelope(sfreq, BAND, 1).process_inplace(x[None].copy())[0]
    y = x.copy()
    cut = 600
    y[cut:] += 500.0 * np.random.default_rng(3).standard_normal(y.size - cut)
    b = LearnedEnvelope(sfreq, BAND, 1).process_inplace(y[None].copy())[0]
    np.testing.assert_array_equal(a[:cut], b[:cut])
    assert np.abs(a[cut:] - b[cut:]).max() > 1.0  # and the perturbation does reach the output


def test_homogeneous_in_the_input_scale():
    """No biases: a gain on the input scales the power by its square (no normaliser needed)."""
    x = _signal(160.0, 3.0, seed=4)
    a = LearnedEnvelope(160.0, BAND, 1).process_inplace(x[None].copy())[0]
    b = LearnedEnvelope(160.0, BAND, 1).process_inplace(1000.0 * x[None])[0]
    np.testing.assert_allclose(b, 1e6 * a, rtol=1e-9, atol=1e-6 * b.max())


def test_declares_its_delay_and_memory():
    assert "Delay" in LearnedEnvelope.__doc__ or "delay" in LearnedEnvelope.__doc__.lower()
    for sfreq in (125.0, 160.0, 250.0):
        est = LearnedEnvelope(sfreq, BAND, 2, delay_s=0.0)
        d = est.group_delay_s
        assert 0.0 < d < 0.2, d
        desc = est.describe()
        assert desc["estimator"] == "learned" and desc["group_delay_s"] == d
        assert desc["design_delay_s"] == est.design_delay_s
        assert est.memory_s() == pytest.approx(est.receptive_field / sfreq)
        # a 10-Hz rhythm passes, far out-of-band does not
        g = est.power_response([0.0, 10.5, 40.0])
        assert g[1] > 10 * g[2] and g[1] > 10 * g[0]


@pytest.mark.parametrize("delay_ms", [d for _, d in shipped_designs(250.0)])
def test_measured_delay_matches_declared_delay(delay_ms):
    """As for every estimator (tests/test_kernels.py): the half-crossing of a step in mu
    amplitude on simulated EEG lands within 5 ms of the declared delay."""
    from test_kernels import _step_delay_s

    measured, declared = _step_delay_s(lambda: LearnedEnvelope(250.0, BAND, 1, delay_s=delay_ms / 1000))
    assert abs(measured - declared) <= 0.005, (measured, declared)


def test_baseline_readout_fit_is_per_channel_and_opt_in():
    x = np.stack([_signal(160.0, 30.0, seed=5), _signal(160.0, 30.0, seed=6) * 0.5])
    plain = LearnedEnvelope(160.0, BAND, 2)
    before = plain.w_out.copy()
    plain.fit(x)  # the shipped network as is: fit does nothing
    assert not plain.needs_fit and not plain.fitted and np.array_equal(plain.w_out, before)
    est = LearnedEnvelope(160.0, BAND, 2, fit_readout=True)
    assert est.needs_fit
    est.fit(x)
    assert est.fitted and np.all(np.isfinite(est.w_out))
    assert not np.allclose(est.w_out[0], before[0]) and not np.allclose(est.w_out[0], est.w_out[1])
    assert np.array_equal(LearnedEnvelope(160.0, BAND, 2).w_out, before)  # the shipped weights are untouched


def test_unsupported_rate_and_band_are_one_line_errors():
    with pytest.raises(NeurofeedError, match=r"no network trained at 512 Hz.*wcfir"):
        LearnedEnvelope(512.0, BAND, 1)
    with pytest.raises(NeurofeedError, match="trained for 8-13 Hz"):
        LearnedEnvelope(250.0, (9.0, 12.0), 1)


def test_selectable_as_a_protocol_option_and_in_the_chain():
    assert "learned" in ESTIMATORS
    est = make_estimator("learned", 250.0, BAND, 2, delay_s=0.0)
    assert isinstance(est, LearnedEnvelope)
    demo = (PROTOCOLS / "demo.toml").read_text()
    assert 'estimator = "wcfir"' in demo
    learned = demo.replace('estimator = "wcfir"', 'estimator = "learned"')
    assert parse_protocol(learned).signal.estimator == "learned"
    # the network knows one band: an individual band (moved at the baseline's end) is refused up front
    with pytest.raises(ProtocolError, match=r'estimator = "learned" is trained for band_hz = \[8, 13\]'):
        parse_protocol(learned.replace('[signal]', '[signal]\nband_mode = "individual"', 1))
    from neurofeed.hardware.sources.edf import read_raw

    raw = read_raw(S001R01)
    data = raw.get_data() * 1e6 + 30_000.0  # a 30-mV electrode offset: the conditioning removes it
    chain = MuChain(160.0, list(raw.ch_names), ["C3", "C4"], "laplacian", BAND, "learned", 0.0, None, 60.0)
    assert chain.response_db["dc_db"]["chain"] <= -60
    p = np.concatenate([chain.process(data[:, i:i + 6]).copy() for i in range(0, 1800, 6)], axis=1)
    assert np.all(np.isfinite(p)) and p.shape == (2, 1800)
    # after the start-up (the receptive field), mu power of a few µV²..hundreds, not the offset's
    settled = p[:, int(chain.estimator_memory_s() * 160) + 80:]
    assert 0.01 < np.median(settled) < 1e3
