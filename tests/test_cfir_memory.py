"""A (weighted) cFIR with a memory ([signal] memory_s, issue 24): taps past the memory are
penalised in the least-squares design, so the bar forgets an artifact or a lost packet's fill
sooner; checked against its own frequency response, on real EEG, and through the protocol."""

import numpy as np
import pytest
from scipy import signal

from neurofeed.core.errors import ProtocolError
from neurofeed.devtools.muse_emulator import MUSE_LABELS, muse_signal
from neurofeed.dsp.accuracy import _log_power, corr_at_delay, delay_curves, ideal_envelope
from neurofeed.dsp.chain import LINE_BAND_REJECTION_DB, MuChain
from neurofeed.dsp.estimators import design_cfir, fit_weights, grid_size, make_estimator, memory_taps
from neurofeed.dsp.responses import attenuation_db
from neurofeed.protocol.schema import parse_protocol
from tests.conftest import DATA, PROTOCOLS

FS = 256.0
BAND = (8.0, 13.0)


def _response(h, f):
    return np.exp(-2j * np.pi * np.outer(f, np.arange(h.size) / FS)) @ h


def test_memory_limited_design_keeps_the_plain_design_s_response():
    """The 0.3-s design (0.8 s of taps) against its own frequency response, beside the plain 2-s
    least-squares design at the same 50-ms delay: the same gain in the band (within 0.5 dB), the
    same rejection below 3 Hz and above 20 Hz (>= 20 dB), and its taps' energy past 0.6 s gone."""
    f = np.arange(0.0, FS / 2, 0.25)
    plain = design_cfir(FS, BAND, 0.05, memory_taps(FS, None, 2.0))
    short = design_cfir(FS, BAND, 0.05, memory_taps(FS, 0.3, 2.0), memory_s=0.3)
    assert (plain.size, short.size) == (512, 205)  # min(2 s, memory + 0.5 s)
    db_plain, db_short = (20 * np.log10(np.abs(_response(h, f))) for h in (plain, short))
    band = (f >= 9) & (f <= 12)
    np.testing.assert_allclose(db_short[band], db_plain[band], atol=0.5)
    assert db_short[f >= 20].max() <= -20.0 and db_short[f <= 3].max() <= -20.0
    e = np.abs(short) ** 2
    assert e[int(0.6 * FS):].sum() < 1e-4 * e.sum()
    # without the penalty the same 205 taps would not fade: it is the penalty that shortens
    e_cut = np.abs(design_cfir(FS, BAND, 0.05, 205)) ** 2
    assert e_cut[int(0.6 * FS):].sum() > 100 * e[int(0.6 * FS):].sum()


def _muse_chain(memory_s):
    x, _ = muse_signal(DATA / "S001R03.edf")  # the emulated Muse's signal: AUX electrode from C3
    chain = MuChain(FS, list(MUSE_LABELS[:4]) + ["C3"], ["C3"], "bipolar", BAND, "wcfir", -0.01, None, 60.0,
                    bipolar_pairs={"C3": "TP9"}, memory_s=memory_s)
    chain.retune(BAND, baseline=chain.spatial(x[:, int(2 * FS):int(15.5 * FS)]))  # a 13.5-s baseline
    return chain


def test_fitted_on_real_eeg_it_forgets_sooner_and_keeps_the_stop_band():
    """Fitted on 13.5 s of C3-TP9 (S001R03 as the Muse streams it): the artifact hold and the hold
    after a filled 12-sample packet are shorter than the 2-s fit's, the tap energy past 0.6 s is
    gone (2-s fit: ~4 %), and the chain rejects the line band and 45 Hz up as the 2-s fit does."""
    plain, short = _muse_chain(None), _muse_chain(0.3)
    assert short.estimator.fitted and short.estimator.memory_limit_s == 0.3
    assert short.describe()["estimator"]["memory_limit_s"] == 0.3
    # what the output depends on is still the whole 0.8 s of taps: the hold after a held (not
    # filled) gap and the start-up left out of a baseline keep to it (not to the 0.3-s limit)
    assert short.estimator_memory_s() == pytest.approx(205 / FS)
    h = short.estimator.taps()[0]
    e = np.abs(h) ** 2
    e_plain = np.abs(plain.estimator.taps()[0]) ** 2
    assert e[int(0.6 * FS):].sum() < 1e-3 * e.sum() < e_plain[int(0.6 * FS):].sum() / e_plain.sum()
    assert short.hold_s < 0.6 * plain.hold_s
    assert short.fill_hold_s[12] < 0.8 * plain.fill_hold_s[12]
    assert short.fill_hold_s[12] <= 0.5
    assert short.response_db["line_band_db"] <= -LINE_BAND_REJECTION_DB
    # from 45 Hz up as the 2-s fit at this (-10 ms) design: -28.8 against -29.2 dB worst, at 45 Hz
    assert _stop_band_db(short) <= min(-28.0, _stop_band_db(plain) + 1.0)
    assert short.response_db["beta_db"] <= plain.response_db["beta_db"] + 2.5  # -15.1 against -16.9 dB


def _stop_band_db(chain):
    """The chain's worst gain from 45 Hz to Nyquist, dB against the band centre."""
    fc = np.r_[10.5, np.arange(45.0, FS / 2, 0.05)]
    g = np.abs(chain.conditioner.response(fc)) * np.sqrt(chain.estimator.power_response(fc))
    return float(attenuation_db(g[1:], g[0]).max())


def test_the_accuracy_curve_scores_the_memory_limited_design():
    """delay_curves with memory_s scores the design the live estimator fits (the same taps), not
    the plain one: r at the designed delay equals a hand-made memory-limited fit's."""
    x, _ = muse_signal(DATA / "S001R03.edf")
    t = (x[4] - x[0])[None, int(2 * FS):int(32 * FS)]
    t = signal.sosfilt(signal.butter(2, 0.5, "highpass", fs=FS, output="sos"), t - t[:, :1], axis=1)
    n_taps = memory_taps(FS, 0.3, 2.0)
    curve, _ = delay_curves(t, FS, BAND, delays_s=(0.0,), taps_s=n_taps / FS, memory_s=0.3)
    plain, _ = delay_curves(t, FS, BAND, delays_s=(0.0,), taps_s=n_taps / FS)
    split = t.shape[1] // 2
    h = design_cfir(FS, BAND, 0.0, n_taps, weights=fit_weights(t[0, :split], FS, BAND, grid_size(n_taps)),
                    n_fft=grid_size(n_taps), memory_s=0.3)
    env = _log_power(np.abs(signal.fftconvolve(t[0], h)[:t.shape[1]]))
    r = corr_at_delay(env, _log_power(ideal_envelope(t, FS, BAND)).mean(axis=0), FS, 0.0, split)
    assert curve[0.0] == pytest.approx(r, abs=1e-12)
    assert curve[0.0] != pytest.approx(plain[0.0], abs=1e-6)


def test_the_session_scores_and_fits_the_memory_limited_design(monkeypatch):
    """Through the live Processor (muse-c3-gentle, which sets memory_s = 0.3): the accuracy curve
    at the baseline's end is asked for the memory-limited design at its length, and the fitted
    estimator is that design."""
    import neurofeed.live.processor as processor_module
    from neurofeed.live.processor import Processor
    from neurofeed.protocol.schema import load_protocol

    asked = []

    def spy(*args, **kwargs):
        asked.append(kwargs)
        return delay_curves(*args, **kwargs)

    monkeypatch.setattr(processor_module, "delay_curves", spy)
    x, _ = muse_signal(DATA / "S001R03.edf")
    proc = Processor(load_protocol("muse-c3-gentle"), FS, list(MUSE_LABELS[:4]) + ["C3"], 187500.0, 0.15,
                     line_hz=60.0)
    for i in range(0, x.shape[1] - 12, 12):
        proc.step(np.ascontiguousarray(x[:, i:i + 12]))
        if proc.accuracy_curve and proc.chain.estimator.fitted:
            break
    assert proc.accuracy_curve and proc.chain.estimator.fitted
    assert asked and asked[0]["memory_s"] == 0.3 and asked[0]["taps_s"] == pytest.approx(205 / FS)
    assert proc.chain.estimator.memory_limit_s == 0.3 and proc.chain.estimator.n_taps == 205


def _with_memory(value, estimator="wcfir"):
    text = (PROTOCOLS / "muse-c3-gentle.toml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("memory_s"))
    text = text.replace('estimator = "wcfir"', f'estimator = "{estimator}"\nmemory_s = {value}')
    return parse_protocol(text, "muse.toml")


def test_protocol_key_is_checked_in_one_line():
    assert _with_memory("0.3").signal.memory_s == 0.3
    assert _with_memory("1").signal.memory_s == 1.0
    for value, estimator, words in [("0.1", "wcfir", r"memory_s is 0.1; expected 0.2 to 2 s"),
                                    ("3", "cfir", r"memory_s is 3; expected 0.2 to 2 s"),
                                    ("\"short\"", "wcfir", r"memory_s must be a number, not 'short'"),
                                    ("0.3", "iir", r"estimator = 'iir' has none")]:
        with pytest.raises(ProtocolError, match=words) as err:
            _with_memory(value, estimator)
        assert "\n" not in str(err.value) and str(err.value).startswith("muse.toml: [signal] memory_s")
    with pytest.raises(ValueError, match="the 'window' estimator has none"):
        make_estimator("window", FS, BAND, 1, memory_s=0.3)
