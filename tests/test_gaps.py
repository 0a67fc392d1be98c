"""Lost packets cost what they disturb (issue 19): short gaps are filled and marked, the gate holds
only while the fill measurably disturbs the estimate, longer gaps are held and gated as before,
and a restarted source invents no gap. Real EEG from tests/data (EEGMMIDB S001)."""

import numpy as np
import pytest

from neurofeed.devtools.cyton_emulator import CytonEmulator, edf_signal, montage_names
from neurofeed.dsp.chain import MuChain
from neurofeed.dsp.quality import (
    FILLED,
    NONFINITE,
    QualityConfig,
    QualityMonitor,
    fill_gaps,
    fill_hold_samples,
    max_fill_samples,
)
from neurofeed.hardware.boards import get_board
from neurofeed.hardware.sources.brainflow import BrainFlowSource
from tests.test_emulator import _read_samples

MAX_FILL_SAMPLES = max_fill_samples(250.0)  # 13: one lost Muse packet (+1 after resampling), half a 10-Hz cycle


def _monitor(n_ch=2):
    return QualityMonitor(250.0, n_ch, [0], [], list(range(n_ch)), QualityConfig())


def test_a_short_gap_inside_the_chunk_is_interpolated_and_marked():
    q = _monitor()
    data = np.array([[1.0, 2.0, np.nan, 4.0, 5.0], [10.0, np.nan, np.nan, 13.0, 14.0]])
    raw = np.zeros_like(data)
    q.process(data, raw)
    # too little past for the AR model (a new stream): the straight line
    np.testing.assert_allclose(raw, [[1, 2, 3, 4, 5], [10, 11, 12, 13, 14]])
    assert q.flags.tolist() == [FILLED, FILLED] and int(q.filled_run[0]) == 2
    assert not np.isnan(data[0, 0]) and np.isnan(data[0, 2])  # the chunk itself is left as it came


def test_a_gap_open_at_the_chunk_end_or_longer_than_the_fill_is_held():
    q = _monitor(1)
    raw = np.zeros((1, 2))
    q.process(np.array([[6.0, np.nan]]), raw)  # the run may go on: nothing to interpolate towards
    assert raw.tolist() == [[6.0, 6.0]] and q.flags[0] == NONFINITE
    q.process(np.array([[np.nan, 8.0]]), raw)  # its continuation is held too, never filled
    assert raw.tolist() == [[6.0, 8.0]] and q.flags[0] == NONFINITE
    long = np.array([[1.0] + [np.nan] * (MAX_FILL_SAMPLES + 1) + [7.0]])
    raw = np.zeros_like(long)
    q.process(long, raw)
    assert q.flags[0] == NONFINITE and np.all(raw[0, :-1] == 1.0)


def test_offline_fill_is_the_live_fill():
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.standard_normal((3, 400)), axis=1)
    x[:, 50] = np.nan
    x[1, 100:103] = np.nan
    x[2, 200:214] = np.nan  # too long: held
    x[0, 10:12] = np.nan  # too little past for a model: linear
    x[1, 300:312] = np.nan  # a lost Muse packet's length, after a held run: AR
    x[0, 399] = np.nan  # open at the end: held
    q = QualityMonitor(250.0, 3, [0], [], [0, 1, 2], QualityConfig())
    q.seed(x[:, 0])
    raw = np.zeros_like(x)
    q.process(x, raw)
    np.testing.assert_array_equal(fill_gaps(x, 250.0), raw)
    assert q.flags.tolist() == [FILLED | NONFINITE, FILLED, FILLED | NONFINITE]


@pytest.fixture(scope="module")
def s001_chain():
    from tests.conftest import DATA

    names = montage_names("cyton", "default")
    x = edf_signal(DATA / "S001R01.edf", names, 250.0)[:, :40 * 250]
    chain = MuChain(250.0, names, ["C3", "C4"], "average", estimator="cfir", line_hz=60.0)
    chain.calibrate([x[:, i:i + 10] for i in range(0, x.shape[1], 10)])
    chain.retune(chain.band_hz, chain.baseline_spatial())
    return chain, x


def test_the_fill_hold_follows_the_estimator_and_the_gap_length(s001_chain):
    chain, _ = s001_chain
    hold = chain.quality._hold_fill[:, -1]  # the full two-sided fill (a model order of samples after it)
    # a one-sample fill is lost in the estimate's own fluctuation on real EEG; longer fills err
    # more and are held for part of the impulse response, never for the estimator's whole memory
    assert hold[1] == 0
    assert all(hold[g] <= hold[g + 1] + 2 for g in range(1, MAX_FILL_SAMPLES))  # up to the estimate's noise
    assert hold[4] < 0.5 * chain.estimator_memory_s() * 250  # 0 since the AR fill (0.18 s with a straight line)
    assert 0 < hold[MAX_FILL_SAMPLES] < chain.estimator_memory_s() * 250  # a held gap's hold: the whole memory
    # fewer samples after the gap: never a shorter hold than with all of them (within the noise)
    assert np.all(chain.quality._hold_fill[:, 0] + 2 >= hold)
    # the same fill through an estimator that amplifies what the fill gets wrong is held longer
    taps = chain.estimator.taps()
    loud = taps + 0.05 * np.exp(2j * np.pi * 0.45 * np.arange(taps.shape[1]))  # a gain near Nyquist
    x = chain._cal_conditioned[:, 500:]
    louder = fill_hold_samples(x, chain.weights, loud, 250.0)  # (a 4-sample fill with one sample after it)
    assert louder[4, 0] > 3 * max(chain.quality._hold_fill[4, 0], 25)


def test_filled_gaps_disturb_the_power_little_and_gate_only_as_long_as_measured(s001_chain):
    import copy

    chain, x = s001_chain
    clean, lossy = copy.deepcopy(chain), copy.deepcopy(chain)
    gapped = x.copy()
    rng = np.random.default_rng(0)
    lost = np.sort(rng.choice(np.arange(300, x.shape[1] - 20), size=int(0.01 * x.shape[1]), replace=False))
    gapped[:, lost] = np.nan
    p_clean, p_lossy, gated = [], [], []
    pos = 0
    while pos < x.shape[1]:
        end = min(x.shape[1], pos + 10)
        while end < x.shape[1] and np.isnan(gapped[0, end - 1]):  # as BrainFlow hands a gap over:
            end += 1  # with the sample after it
        p_clean.append(clean.process(x[:, pos:end]).copy())
        p_lossy.append(lossy.process(gapped[:, pos:end]).copy())
        gated.append(np.full(end - pos, lossy.gated))
        pos = end
    d = np.abs(np.log10(np.concatenate(p_lossy, 1) / np.concatenate(p_clean, 1)))[:, 500:]
    gated = np.concatenate(gated)[500:]
    assert gated.mean() <= 0.15  # 1 % of samples lost: was every sample gated for 2 s after each
    assert np.median(d) < 0.01 and np.percentile(d, 95) < 0.1  # against an SI spread of ~0.6
    held = np.concatenate(p_lossy, 1)
    assert np.isfinite(held).all()


def test_a_restarted_source_starts_a_new_stream_without_an_invented_gap(data_dir):
    x = edf_signal(data_dir / "S001R03.edf", montage_names("cyton", "default"), 250.0)[:, :5000]
    with CytonEmulator(x, speed=4) as emu:
        src = BrainFlowSource(get_board("cyton"), serial_port=emu.port)
        src.start()  # neurofeed check's stream
        try:
            _read_samples(src, 300)
        finally:
            src.stop()
        src.start()  # the session's stream
        try:
            chunks = _read_samples(src, 300)
        finally:
            src.stop()
    assert chunks[0].first_sample == 0
    assert src.dropped_samples == 0 and all(c.gap is None for c in chunks)


def test_an_emulated_cyton_losing_1_percent_of_packets_keeps_feedback_and_counts_every_loss():
    """S001R01 (baseline) + R03 sent by the emulated Cyton with 1 % of its packets skipped at
    random, read by BrainFlow's own driver, through the live Processor (adaptive mode): every
    lost sample is counted, feedback is gated at most 15 % of the time and the reward rate stays
    within 10 points of the same session without loss. The full grid (R03–R06 × 0.1 / 0.5 / 1 %)
    is benchmarks/gaps.py's (offline, same Processor).

    The estimator is the uniform cFIR: the weighted cFIR fitted to this baseline (EEGMMIDB,
    resampled from 160 Hz: no power above 80 Hz) has +56 dB of gain near Nyquist, which turns
    any fill error into a disturbance worth gating (10–18 % gated at 1 % loss, see
    benchmarks/RESULTS.md) until its stop band gets the floor issue 19 asks for."""
    from benchmarks.gaps import emulated, lost_samples, offline
    from benchmarks.reward_rate import live_session, protocol
    from tests.conftest import DATA

    proto = protocol("adaptive")
    proto.signal.estimator = "cfir"
    x, ch, fs, marks = live_session(3, "cyton", data=DATA)
    clean = offline(proto, x, ch, fs, marks, lost_samples(x.shape[1], 0.0, 0))
    lost = lost_samples(x.shape[1], 0.01, 22)
    res = emulated(proto, x, ch, fs, marks, lost, speed=10.0)
    assert res["dropped_samples"] == res["emulator_dropped"] == lost.size > 300
    assert res["gated_frac"] <= 0.15, res["gate_reasons"]
    assert abs(res["reward_rate"] - clean["reward_rate"]) <= 0.10
