"""The fitted weighted cFIR keeps its stop band (issue 19): >= 30 dB from 45 Hz up for the chain
(conditioning + estimator) when fitted on real baselines, and the chain's response check scans
bands (line ± 2 Hz and harmonics, 20–45 Hz), refusing a design below the documented rejection."""

import mne
import numpy as np
import pytest

from neurofeed.core.errors import NeurofeedError
from neurofeed.dsp import estimators
from neurofeed.dsp.chain import LINE_BAND_REJECTION_DB, MuChain
from neurofeed.dsp.responses import attenuation_db
from tests.conftest import DATA, DATA_S02

# (file, baseline seconds, mains): S001 R01 rest (30 s) and R03's first T0 (4.2 s), 160 Hz,
# USA; S02's first REST block (4 s) and its first 20 s, 125 Hz, band-filtered in acquisition
BASELINES = [(DATA / "S001R01.edf", (2.0, 32.0), 60.0), (DATA / "S001R03.edf", (0.0, 4.2), 60.0),
             (DATA_S02, (41.07, 45.07), 50.0), (DATA_S02, (0.0, 20.0), 50.0)]


def _load(path):
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    raw.rename_channels(lambda n: n.strip(".").upper().replace("Z", "z").replace("FP", "Fp"))
    return raw.get_data() * 1e6, raw.ch_names, raw.info["sfreq"]


def _chain_db(chain, f):
    """Chain gain (conditioning × estimator amplitude) at ``f`` in dB relative to the band centre."""
    fc = np.r_[0.5 * sum(chain.band_hz), f]
    g = np.abs(chain.conditioner.response(fc)) * np.sqrt(chain.estimator.power_response(fc))
    return attenuation_db(g[1:], g[0])


@pytest.mark.parametrize("path,span,line_hz", BASELINES, ids=["S001R01-30s", "S001R03-T0", "S02-REST1", "S02-20s"])
def test_fitted_wcfir_rejects_30_db_from_45_hz_up(path, span, line_hz):
    x, ch, fs = _load(path)
    chain = MuChain(fs, ch, ["C3", "C4"], "laplacian", (8.0, 13.0), "wcfir", 0.05, None, line_hz)
    base = chain.spatial(x[:, int(span[0] * fs):int(span[1] * fs)])
    chain.retune((8.0, 13.0), baseline=base)  # the fit at the baseline's end (passes the band check)
    assert chain.estimator.fitted
    nyq = fs / 2
    assert _chain_db(chain, np.arange(45.0, 55.0, 0.05)).max() <= -30.0  # before: -6 dB on S02
    assert _chain_db(chain, np.arange(55.05, nyq, 0.05)).max() <= -30.0  # before: +43 dB on S02
    assert chain.response_db["line_band_db"] <= -LINE_BAND_REJECTION_DB
    assert chain.response_db["beta_db"] <= -18.0  # the uniform 50-ms design: -19 dB


def test_response_check_refuses_a_fit_without_the_stopband_floor(monkeypatch):
    x, ch, fs = _load(DATA_S02)
    chain = MuChain(fs, ch, ["C3", "C4"], "laplacian", (8.0, 13.0), "wcfir", 0.05, None, 50.0)
    base = chain.spatial(x[:, int(41.07 * fs):int(45.07 * fs)])
    monkeypatch.setattr(estimators, "stopband_floor", lambda w, sfreq, band: w)  # the fit as it was
    bad = estimators.WCFIREnvelope(fs, (8.0, 13.0), 2, 0.05)
    bad.fit(base)
    uniform = chain.estimator
    chain.estimator = bad
    with pytest.raises(NeurofeedError, match=r"rejects the line frequency 50 Hz ± 2 Hz .* at least 25 dB"):
        chain.check_response()
    # at a baseline's end the refused fit is not installed: the uniform design runs, and says why
    chain.estimator = uniform
    chain.retune((8.0, 13.0), baseline=base)
    assert not chain.estimator.fitted and "at least 25 dB" in chain.fit_refused
    assert chain.response_db["line_band_db"] <= -LINE_BAND_REJECTION_DB
