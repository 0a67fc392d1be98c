"""BrainFlow's own Cyton and Cyton-Daisy drivers, end to end, on the pseudo-terminal emulator
(neurofeed.devtools.cyton_emulator) carrying real EEG from tests/data: values, rate, timestamps, dropped
packets as gap samples, a railed channel, DC offsets, and whole sessions on the emulated board."""

import time

import numpy as np
import pytest

from neurofeed.devtools.cyton_emulator import (
    RAIL_UV,
    UV_PER_COUNT,
    CytonEmulator,
    edf_signal,
    encode_packet,
    montage_names,
)
from neurofeed.hardware.boards import get_board
from neurofeed.hardware.sources.brainflow import BrainFlowSource
from neurofeed.live.pipeline import Pipeline
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import load_protocol
from tests.conftest import PROTOCOLS, run_to_end

EDF = "S001R03.edf"


def _eeg(data_dir, board="cyton", montage="default", seconds=40.0):
    """Real EEG for the board's channels, resampled to its rate (µV)."""
    sfreq = 125.0 if board == "cyton-daisy" else 250.0
    x = edf_signal(data_dir / EDF, montage_names(board, montage), sfreq)
    return x[:, : int(seconds * sfreq)]


def _read_samples(src, n, timeout_s=120.0):
    """Chunks from ``src`` until ``n`` samples (gap samples included) have arrived."""
    chunks, got, t0 = [], 0, time.monotonic()
    while got < n:
        assert time.monotonic() - t0 < timeout_s, f"only {got} of {n} samples arrived"
        c = src.read()
        if c is not None:
            chunks.append(c)
            got += c.n_samples
    return chunks


def _source(emu, board="cyton", **kw):
    return BrainFlowSource(get_board(board), serial_port=emu.port, **kw)


def test_packet_layout_is_the_cytons():
    p = encode_packet(258, np.array([1, -1, 2 ** 23 - 1, -(2 ** 23), 0, 256, 65536, -256]))
    assert len(p) == 33 and p[0] == 0xA0 and p[1] == 2 and p[-1] == 0xC0
    assert p[2:5] == b"\x00\x00\x01" and p[5:8] == b"\xff\xff\xff"
    assert p[8:11] == b"\x7f\xff\xff" and p[11:14] == b"\x80\x00\x00"
    assert p[17:20] == b"\x00\x01\x00" and p[20:23] == b"\x01\x00\x00" and p[23:26] == b"\xff\xff\x00"
    assert UV_PER_COUNT == pytest.approx(0.02235174, rel=1e-6)  # 4.5 V / 24 / (2^23 - 1)


def test_brainflow_reads_exactly_what_was_sent_at_250_hz(data_dir):
    x = _eeg(data_dir, seconds=10)
    with CytonEmulator(x) as emu:
        src = _source(emu)
        assert src.sfreq == 250 and src.ch_names == montage_names("cyton")
        src.start()
        try:
            chunks = _read_samples(src, 500)  # 2 s at real time
        finally:
            src.stop()
        assert emu.commands[:3] == ["v", "d", "b"]  # BrainFlow's own handshake
    data = np.concatenate([c.data for c in chunks], axis=1)
    ts = np.concatenate([c.timestamps for c in chunks])
    n = data.shape[1]
    assert all(c.gap is None for c in chunks) and src.dropped_samples == 0
    assert [c.first_sample for c in chunks] == list(np.cumsum([0] + [c.n_samples for c in chunks[:-1]]))
    # µV as sent, to the last bit; and what was sent is the EEG to within half a count
    np.testing.assert_array_equal(data, emu.sent_uv(0, n))
    assert np.abs(data - x[:, :n]).max() <= UV_PER_COUNT / 2 + 1e-9
    # BrainFlow's timestamps: never before the sample was written, monotonic, 250 Hz
    assert (ts >= emu.write_times_wall(0, n) - 1e-6).all()
    assert (np.diff(ts) >= 0).all()
    per_second = (ts[250:] - ts[:-250]) / 250  # robust to a late read or two on a busy machine
    assert np.median(per_second) == pytest.approx(1 / 250, rel=0.02)


def test_offsets_drift_and_a_railed_channel_arrive_as_sent(data_dir):
    x = _eeg(data_dir, seconds=10)
    with CytonEmulator(x, speed=5, offsets_uv=50_000, drift_uv_per_s=20.0, railed_channel=7) as emu:
        src = _source(emu)
        src.start()
        try:
            chunks = _read_samples(src, 1000)
        finally:
            src.stop()
    data = np.concatenate([c.data for c in chunks], axis=1)
    n = data.shape[1]
    np.testing.assert_array_equal(data, emu.sent_uv(0, n))
    sign = np.array([1, -1, 1, -1, 1, -1, 1])
    t = np.arange(n) / 250
    expect = x[:7, :n] + (sign * 50_000)[:, None] + (sign * 20.0)[:, None] * t
    assert np.abs(data[:7] - expect).max() <= UV_PER_COUNT / 2 + 1e-6  # ±50 mV offsets with drift, as sent
    assert np.all(data[7] == pytest.approx(RAIL_UV)) and RAIL_UV == pytest.approx(187_500, abs=0.1)


@pytest.mark.parametrize("board", ["cyton", "cyton-daisy"])
def test_skipped_packets_become_exact_gap_samples(board, data_dir):
    x = _eeg(data_dir, board, seconds=20)
    drop = [40, 150, 151, 152, 300, 301]
    with CytonEmulator(x, speed=4, drop_packets=drop, daisy=board == "cyton-daisy") as emu:
        src = _source(emu, board)
        src.start()
        try:
            chunks = _read_samples(src, 420)
        finally:
            src.stop()
    n = sum(c.n_samples for c in chunks)
    assert src.dropped_samples == len(drop)  # N skipped packets are N dropped samples (Daisy steps by 2)
    assert [c.first_sample for c in chunks] == list(np.cumsum([0] + [c.n_samples for c in chunks[:-1]]))
    data = np.concatenate([c.data for c in chunks], axis=1)
    gap = np.concatenate([c.gap if c.gap is not None else np.zeros(c.n_samples, bool) for c in chunks])
    ts = np.concatenate([c.timestamps for c in chunks])
    assert np.flatnonzero(gap).tolist() == drop
    sent = emu.sent_uv(0, n)
    np.testing.assert_array_equal(np.isnan(data), np.broadcast_to(gap, data.shape))
    np.testing.assert_array_equal(data[:, ~gap], sent[:, ~gap])
    assert (np.diff(ts) >= 0).all()  # gap timestamps interpolated between their neighbours
    assert all(c.gap is None or (c.gap.dtype == bool and c.gap.shape == (c.n_samples,)) for c in chunks)


def _run_protocol(src, protocol, seconds_scale, timeout_s=600.0):
    proc = Processor(protocol, src.sfreq, src.ch_names, src.range_uv, seconds_scale)
    pipe = Pipeline(src, proc)
    pipe.start()
    try:
        ended = pipe.wait(timeout_s)
    finally:
        pipe.stop()
    assert pipe.error is None, pipe.error
    assert ended and pipe.engine.finished
    return pipe


def test_demo_protocol_runs_on_the_emulated_cyton_with_the_mu_montage(data_dir):
    x = _eeg(data_dir, montage="mu", seconds=60)
    proto = load_protocol(PROTOCOLS / "demo.toml")
    with CytonEmulator(x, speed=10, offsets_uv=30_000, drift_uv_per_s=5.0) as emu:
        src = _source(emu, channel_names=montage_names("cyton", "mu"))
        pipe = _run_protocol(src, proto, seconds_scale=0.1)
    assert pipe.published > 0 and src.dropped_samples == 0
    assert pipe.engine.summary()["samples"] >= 0.1 * proto.total_duration_s() * 250 * 0.9


def test_emulate_command_prints_the_port_and_stops_cleanly_on_sigterm(data_dir):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "neurofeed"
    proc = subprocess.Popen([str(exe), "emulate", "cyton", "--file", str(data_dir / EDF), "--montage", "mu",
                             "--offset-uv", "50000", "--drop-every", "50", "--speed", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/"), port
        src = BrainFlowSource(get_board("cyton"), serial_port=port, channel_names=montage_names("cyton", "mu"))
        src.start()
        try:
            chunks = _read_samples(src, 260)
        finally:
            src.stop()
        data = np.concatenate([c.data for c in chunks], axis=1)
        gap = np.concatenate([c.gap if c.gap is not None else np.zeros(c.n_samples, bool) for c in chunks])
        assert np.flatnonzero(gap).tolist() == list(range(49, gap.size, 50))  # every 50th sample skipped
        assert src.dropped_samples == gap.sum() >= 5
        assert np.nanmedian(data[0]) == pytest.approx(50_000, abs=1000)  # Fp1 at +50 mV
        assert np.nanmedian(data[1]) == pytest.approx(-50_000, abs=1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped after" in err and "Traceback" not in err


def test_lead_off_command_puts_the_impedance_voltage_on_that_channel_only():
    from neurofeed.devtools.cyton_emulator import LEADOFF_CURRENT_A, LEADOFF_HZ, LEADOFF_SERIES_OHM

    z_kohm = np.arange(1.0, 9.0) * 5  # 5 .. 40 kΩ
    with CytonEmulator(np.zeros((8, 250)), speed=4, impedance_kohm=z_kohm) as emu:
        src = _source(emu)
        src.start()
        try:
            n0 = len(emu.commands)
            src.board.config_board("z310Z")  # lead-off current into channel 3's P input (BrainFlow sends it as is)
            chunks = _read_samples(src, 250)
            src.board.config_board("z300Z")
            while len(emu.commands) < n0 + 10:  # wait for the emulator to take "z300Z"
                c = src.read()
                if c is not None:
                    chunks.append(c)
            start = emu.clocked_samples + 10  # samples clocked after the switch-off
            while sum(c.n_samples for c in chunks) < start + 100:
                c = src.read()
                if c is not None:
                    chunks.append(c)
        finally:
            src.stop()
    data = np.concatenate([c.data for c in chunks], axis=1)
    on = emu.leadoff.copy()
    assert not on.any()  # switched off again
    sent = emu.sent_uv(0, data.shape[1])
    np.testing.assert_array_equal(data, sent)
    lit = np.flatnonzero(np.abs(data[2]) > 1.0)
    assert lit.size > 100 and (data[[0, 1, 3, 4, 5, 6, 7]] == 0).all()  # only channel 3
    assert (data[2, start:start + 100] == 0).all()  # off after z300Z
    seg = data[2, lit[0] + 1: lit[0] + 201]
    vrms = np.std(seg) * 1e-6
    assert (np.sqrt(2) * vrms / LEADOFF_CURRENT_A - LEADOFF_SERIES_OHM) / 1e3 == pytest.approx(z_kohm[2], rel=0.05)
    assert LEADOFF_HZ == 31.25


def test_dropped_packets_reach_the_recording_as_annotated_gaps(data_dir, tmp_path):
    # Needs the recorder's gap journal and BDF annotations (reliability) and the chain's NaN hold (dsp).
    import mne

    from neurofeed.live.session import build_session

    x = _eeg(data_dir, montage="mu", seconds=60)
    proto = load_protocol(PROTOCOLS / "demo.toml")
    with CytonEmulator(x, speed=10, drop_every=100) as emu:
        src = _source(emu, channel_names=montage_names("cyton", "mu"))
        pipe, rec = build_session(src, proto, "P01", tmp_path, seconds_scale=0.1, lsl=False)
        summary = run_to_end(pipe, rec)
    n = summary["samples"]
    raw = mne.io.read_raw_bdf(summary["bdf"], preload=True, verbose="error")
    # exactly the samples the journal has (issue 22: no padding, nothing cut)
    assert raw.n_times == n and np.isfinite(raw.get_data()).all()
    onsets = [round(a["onset"] * 250) for a in raw.annotations if a["description"] == "gap"]
    onsets = [k for k in onsets if k < raw.n_times]
    assert onsets == list(range(99, raw.n_times, 100))  # each skipped packet, at its true place on the timeline
    assert summary["dropped_samples"] >= len(onsets) > 0
