"""The console's EEG traces (neurofeed.ui.traces): the display filter is the session's own
conditioning (checked against scipy.signal), the scale is per channel and does not pump, railed
channels are drawn as railed; and, end to end, real EEG with ±20 mV offsets and drift on the
emulated Cyton (BrainFlow's own driver) shows no clipped sample on a good channel in the real
console, where the old raw-minus-mean drawing clipped."""

import time

import numpy as np
import pytest
from scipy import signal

from neurofeed.core.buffer import RingBuffer
from neurofeed.dsp.quality import FLAT, RAILED
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import load_protocol
from neurofeed.ui.traces import AUTO_SCALES_UV, CLIP_DIV, COLOURS, DOWN_HOLD_S, TraceDisplay

SFREQ = 250.0


def _chain(line_hz=50.0):
    names = ["FC3", "C3", "CP3", "Cz", "FC4", "C4", "CP4", "Fp1"]
    return Processor(load_protocol("demo"), SFREQ, names, line_hz=line_hz).chain


def _feed(disp, x, rng, flags=None):
    """``x`` through ``disp`` in chunks of random size (as the console reads them)."""
    i = 0
    while i < x.shape[1]:
        k = int(rng.integers(1, 60))
        disp.update(x[:, i:i + k], None, flags)
        i += k


@pytest.mark.parametrize("line_hz", [50.0, 60.0])
def test_display_filter_is_the_sessions_conditioning_checked_against_scipy(line_hz):
    chain = _chain(line_hz)
    zi_before = chain.conditioner.zi.copy()
    disp = TraceDisplay.for_chain(chain, 2, window_s=8.0)
    np.testing.assert_array_equal(disp.sos, chain.conditioner.sos)  # the session's design, not a second one
    # scipy's own design of what the session documents: Butterworth order-2 high-pass at 0.5 Hz, iirnotch Q 30
    ref = np.vstack([signal.butter(2, 0.5, btype="highpass", fs=SFREQ, output="sos"),
                     signal.tf2sos(*signal.iirnotch(line_hz, 30.0, fs=SFREQ))])
    # the frequency response of what the display applies: its impulse response, chunked at random
    n = disp.n_window
    x = np.zeros((2, n))
    x[0, 1] = 1.0  # row 0: an impulse after a zero first sample (the seed: zero state)
    x[1] = 20_000.0 + np.random.default_rng(1).normal(0, 10, n)  # row 1: a 20-mV offset and noise
    _feed(disp, x, np.random.default_rng(0))
    _, y = disp.window()
    f = np.fft.rfftfreq(n, 1 / SFREQ)
    h_disp = np.fft.rfft(y[0]) * np.exp(2j * np.pi * f / SFREQ)  # the impulse came one sample late
    _, h_ref = signal.sosfreqz(ref, worN=f, fs=SFREQ)
    assert np.abs(h_disp - h_ref).max() < 1e-3  # to the truncation of an 8-s impulse response
    for hz, gain in ((0.0, 0.0), (10.0, 1.0), (line_hz, 0.0)):
        k = int(np.argmin(np.abs(f - hz)))
        assert abs(abs(h_disp[k]) - gain) < 0.01, (hz, abs(h_disp[k]))
    # the offset: scipy's sosfilt with the state seeded from the first sample, sample for sample
    zi = signal.sosfilt_zi(ref) * x[1, 0]
    np.testing.assert_allclose(y[1], signal.sosfilt(ref, x[1], zi=zi)[0], atol=1e-6)
    assert np.abs(y[1]).max() < 60  # the 20 mV are gone from sample 0 (noise σ 10 µV)
    # documented delay: the conditioning's, about 1 ms in the mu band
    assert disp.delay_s() == pytest.approx(chain.conditioning_delay_s)
    assert 0 < disp.delay_s() < 0.005
    assert "0.5 Hz high-pass" in disp.describe() and f"{line_hz:g} Hz notch" in disp.describe()
    np.testing.assert_array_equal(chain.conditioner.zi, zi_before)  # the processing path is not touched


def test_drift_and_gaps_do_not_reach_the_picture():
    rng = np.random.default_rng(3)
    n = int(20 * SFREQ)
    t = np.arange(n) / SFREQ
    eeg = 8 * np.sin(2 * np.pi * 10 * t) + rng.normal(0, 2, n)
    x = np.vstack([eeg + 20_000 + 20 * t, eeg - 20_000 - 20 * t])  # ±20 mV drifting 20 µV/s
    x[:, 1000:1003] = np.nan  # a few lost packets
    x[:, 3000:3100] = np.nan  # a longer loss: held
    disp = TraceDisplay(SFREQ, 2, 50.0, window_s=5.0)
    _feed(disp, x, rng)
    _, y = disp.window()
    assert np.isfinite(y).all()
    assert np.abs(y).max() < 20  # the 10-Hz rhythm (8 µV) and noise, no offset, no ramp
    assert np.all(disp.scale_uv == 30.0)  # 98th percentile of |x| ≈ 9 µV: within half a division of 30 µV


def test_auto_scale_goes_up_at_once_and_down_after_a_hold_without_pumping():
    rng = np.random.default_rng(5)
    disp = TraceDisplay(SFREQ, 1, 50.0, window_s=5.0)
    sec = int(SFREQ)
    quiet = rng.normal(0, 4.7, (1, 30 * sec))  # p98 ≈ 11 µV: 30 µV/div (and within its margin: back to it)
    _feed(disp, quiet[:, : 10 * sec], rng)
    assert disp.scale_uv[0] == 30.0
    blink = np.zeros((1, sec))
    blink[0, 100:160] = 400 * np.hanning(60)  # a 400-µV blink
    seen = []
    chunks = np.hstack([blink, quiet[:, 10 * sec:]])
    i = 0
    while i < chunks.shape[1]:
        disp.update(chunks[:, i:i + 10])
        _, y = disp.lanes()
        assert not disp.clipped[0]  # never clipped, at any update
        seen.append(disp.scale_uv[0])
        i += 10
    seen = np.array(seen)
    assert seen.max() == 500 and seen[0] == seen[-1] == 30.0  # up for the blink (400 µV within one division), back down after it
    d = np.diff(seen)
    assert d.max() > 0 and np.flatnonzero(d > 0).max() < 16  # up while the blink rises (≤ sample 160) ...
    downs_s = np.flatnonzero(d < 0) * 10 / SFREQ
    assert len(downs_s) >= 1 and np.all(np.diff(downs_s) >= DOWN_HOLD_S - 1e-9)  # ... then down, a hold apart
    assert downs_s[0] >= 5.0 + DOWN_HOLD_S - 1  # not before the blink has left the 5-s window and the hold
    # a signal hovering about a step's limit does not make the scale pump either: it goes up once
    disp2 = TraceDisplay(SFREQ, 1, 50.0, window_s=5.0)
    t = np.arange(40 * sec) / SFREQ
    hover = (23 + 4 * (np.floor(t) % 2))[None] * np.sin(2 * np.pi * 10 * t)  # 23 and 27 µV by turns (50's limit: 25)
    scales = []
    for i in range(0, hover.shape[1], 25):
        disp2.update(hover[:, i:i + 25])
        scales.append(disp2.scale_uv[0])
    assert sorted(set(scales)) == [50.0, 70.0] and int(np.sum(np.diff(scales) != 0)) == 1, scales


def test_fixed_scale_clips_and_says_so_and_auto_returns():
    disp = TraceDisplay(SFREQ, 2, 50.0, window_s=5.0)
    t = np.arange(int(6 * SFREQ)) / SFREQ
    x = np.vstack([80 * np.sin(2 * np.pi * 10 * t), 5 * np.sin(2 * np.pi * 10 * t)])
    disp.set_fixed(10.0)
    disp.update(x)
    _, y = disp.lanes()
    assert np.all(disp.scale_uv == 10.0)
    assert disp.clipped[0] and not disp.clipped[1]
    assert np.abs(y[0] - disp.centre(0)).max() == pytest.approx(CLIP_DIV)
    assert disp.label(0, "C3") == "C3 10 µV clip" and disp.label(1, "C4") == "C4 10 µV"
    disp.set_fixed(None)
    disp.update(x[:, -10:])
    disp.lanes()
    assert disp.scale_uv[0] in AUTO_SCALES_UV and not disp.clipped.any()


def test_railed_and_flat_channels_are_drawn_as_such():
    disp = TraceDisplay(SFREQ, 3, 50.0, window_s=5.0)
    rng = np.random.default_rng(2)
    x = np.vstack([rng.normal(0, 10, 1000) + 20_000, np.full(1000, 187_500.0 * 0.99), np.full(1000, -3000.0)])
    disp.update(x, None, [0, RAILED | FLAT, FLAT])
    _, y = disp.lanes()
    assert disp.status == ["", "railed", "flat"]
    assert disp.label(1, "CP3") == "CP3 railed" and disp.label(2, "Cz") == "Cz flat"
    np.testing.assert_array_equal(y[1], disp.centre(1))  # a flat line on the lane's centre, not the clip limit
    assert np.abs(y[2] - disp.centre(2)).max() < 1e-6
    assert not disp.clipped.any()
    # back from the rail: the filter starts afresh, no 187-mV step response
    disp.update(rng.normal(0, 10, (3, 500)) + 5000, None, [0, 0, 0])
    t, y = disp.window()
    assert disp.status[1] == "" and np.abs(y[1, -500:]).max() < 100


def test_ring_read_since_gives_each_sample_once_and_says_what_was_missed():
    ring = RingBuffer(2, 100)
    out, out_ts = np.empty((2, 100)), np.empty(100)
    seen, written = [], 0
    for k in (30, 50, 70, 10):  # wraps around the storage
        first = sum(len(s) for s in seen) if seen else 0
        v = np.arange(first, first + k, dtype=float)
        ring.write(np.vstack([v, -v]), v / 10)
        x, ts, written = ring.read_since(written, out, out_ts)
        seen.append(x[0].copy())
        np.testing.assert_array_equal(x[1], -x[0])
        np.testing.assert_array_equal(ts, x[0] / 10)
    np.testing.assert_array_equal(np.concatenate(seen), np.arange(160))
    assert written == ring.n_written == 160
    ring.write(np.zeros((2, 250)))  # more than the ring holds: the reader missed 150
    x, _, total = ring.read_since(written, out, out_ts)
    assert x.shape[1] == 100 and total - written == 250
    assert ring.read_since(total, out, out_ts)[0].shape[1] == 0


# --- end to end: real EEG on the emulated Cyton, the real console ---------------------------

def test_real_eeg_with_20_mv_offsets_on_the_emulated_cyton_is_never_clipped_on_screen(data_dir, tmp_path, qtbot):
    from neurofeed.devtools.cyton_emulator import CytonEmulator, edf_signal, montage_names
    from neurofeed.hardware.boards import get_board
    from neurofeed.hardware.sources.brainflow import BrainFlowSource
    from neurofeed.live.session import build_session
    from neurofeed.ui.console import TRACE_S
    from neurofeed.ui.display import Views

    names = montage_names("cyton", "mu")  # Fp1 FC3 C3 CP3 Cz FC4 C4 CP4
    railed = names.index("CP3")
    eeg = edf_signal(data_dir / "S001R03.edf", names, SFREQ)[:, : int(60 * SFREQ)]
    with CytonEmulator(eeg, speed=3, offsets_uv=20_000.0, drift_uv_per_s=20.0, railed_channel=railed) as emu:
        src = BrainFlowSource(get_board("cyton"), serial_port=emu.port, channel_names=names)
        pipe, _ = build_session(src, load_protocol("demo"), "P07", tmp_path, seconds_scale=1.0, record=False,
                                lsl=False)
        views = Views(pipe, tone=None)
        qtbot.addWidget(views.participant)
        qtbot.addWidget(views.console)
        console = views.console
        panel, disp = console.trace_panel, console.trace_panel.display
        shown = panel.names
        r_cp3 = shown.index("CP3")
        good = [j for j in range(len(shown)) if j != r_cp3]
        try:
            pipe.start()
            views.start()
            # a full window of filtered EEG on screen, CP3 flagged railed by the chain
            qtbot.waitUntil(lambda: disp.n == disp.n_window and disp.status[r_cp3] == "railed", timeout=120_000)
            snapshots = 0
            old_clipped = 0
            target = panel.written + int(15 * SFREQ)  # watch 15 s of signal go by
            deadline = time.monotonic() + 300  # only stops a hung test: waits on the samples, not on time
            while panel.written < target:
                assert time.monotonic() < deadline, f"the console read {panel.written} of {target} samples"
                qtbot.wait(150)
                for j, item in enumerate(console.trace_items):
                    # the data handed to the curve (what is drawn is its peak-downsampled copy at the
                    # console's width, which keeps every extreme)
                    x, y = item.xData, item.yData
                    assert x is not None and len(x) == disp.n_window
                    assert x.min() >= -TRACE_S - 0.1 and x.max() == 0.0
                    dev = np.abs(y - disp.centre(j))
                    if j in good:
                        assert np.isfinite(y).all() and dev.max() < CLIP_DIV, (shown[j], dev.max())
                        assert "railed" not in disp.label(j, shown[j]) and "clip" not in disp.label(j, shown[j])
                        assert dev.std() > 0.02  # EEG is drawn, not a flat line
                    else:
                        np.testing.assert_array_equal(dev, 0.0)  # railed: flat on its centre, not at a limit
                # what the old drawing (raw minus its 5-s mean, clipped at ±50 µV) would have clipped
                raw, _ = pipe.ring.read_last(disp.n_window)
                rows = [names.index(shown[j]) for j in good]
                old_clipped += int(np.sum(np.abs(raw[rows] - raw[rows].mean(axis=1, keepdims=True)) >= 50))
                snapshots += 1
            assert snapshots >= 5 and old_clipped > 0
            axis = dict(console.traces.getAxis("left")._tickLevels[0])
            assert axis[disp.centre(r_cp3)] == "CP3 railed"
            assert all(axis[disp.centre(j)].endswith(" µV") for j in good)  # the scale is on the panel
            assert console.trace_items[r_cp3].opts["pen"].color().name() == COLOURS["railed"]
            # what is drawn is the session's conditioning of what BrainFlow decoded, sample for sample
            written = panel.written
            sent = emu.sent_uv(0, written)
            sos = pipe.processor.chain.conditioner.sos
            _, yw = disp.window()
            for j in good:
                row = sent[names.index(shown[j])]
                want = signal.sosfilt(sos, row, zi=signal.sosfilt_zi(sos) * row[0])[0][-disp.n_window:]
                np.testing.assert_allclose(yw[j], want, atol=1e-6)
            assert 5 < np.std(yw[good]) < 200  # µV: EEG, the ±20 mV and the drift gone
            # the scale control: a fixed 50 µV/div on every lane, shown beside each; then auto again
            box = panel.scale_box
            box.setCurrentIndex(box.findData(50.0))
            qtbot.waitUntil(lambda: all(disp.label(j, shown[j]).startswith(f"{shown[j]} 50 µV") for j in good),
                            timeout=30_000)
            assert disp.label(r_cp3, "CP3") == "CP3 railed"
            box.setCurrentIndex(0)
            assert box.currentText() == "auto"
            qtbot.waitUntil(lambda: not any(disp.clipped[j] for j in good) and disp.fixed_uv is None, timeout=30_000)
        finally:
            views.timer.stop()
            views.spectra.stop()
            pipe.stop()
