"""Sources with the real things: BrainFlow synthetic and playback boards, LSL on loopback,
EDF files from tests/data, and the simulated headset's ground truth."""

import threading
import time

import numpy as np
import pytest

from neurofeed.core.channels import normalize_name
from neurofeed.hardware.boards import get_board
from neurofeed.hardware.sources.brainflow import BrainFlowSource
from neurofeed.hardware.sources.edf import FileSource
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.pipeline import SIGNAL_LOST_S, Pipeline
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import load_protocol
from tests.conftest import PROTOCOLS, PollClock, lsl_eeg_outlet, run_cli, wait_for_signal_lost, wait_until


def _read_for(src, seconds):
    chunks, t0 = [], time.time()
    while time.time() - t0 < seconds:
        c = src.read()
        if c is not None:
            chunks.append(c)
    return chunks


def _read_samples(src, n_min, timeout_s=60.0):
    """Read chunks until at least ``n_min`` samples came (an event; the timeout stops a hung test)."""
    chunks, t0 = [], time.monotonic()
    while sum(c.n_samples for c in chunks) < n_min:
        assert time.monotonic() - t0 < timeout_s, f"fewer than {n_min} samples within {timeout_s} s"
        c = src.read()
        if c is not None:
            chunks.append(c)
    return chunks


def _assert_paced(chunks, t_start_ns, sfreq):
    """Real-time pacing, as the source controls it: no sample is handed over before its time."""
    for c in chunks:
        due_ns = t_start_ns + (c.first_sample + c.n_samples) * 1e9 / sfreq
        assert c.arrival_ns >= due_ns - 1e6, "a chunk was handed over before its last sample was due"


def test_normalize_names():
    assert normalize_name("C3..") == "C3"
    assert normalize_name("Fc3.") == "FC3"
    assert normalize_name("Fp1.") == "Fp1"
    assert normalize_name("CZ") == "Cz"
    assert normalize_name("EEG C4-REF") == "C4"
    assert normalize_name("AUX1") == "AUX1"


def test_synthetic_board_chunks_names_and_timing():
    src = BrainFlowSource(get_board("synthetic"))
    assert src.ch_names[:4] == ["Fz", "C3", "Cz", "C4"]  # from BoardShim, not hard-coded
    src.start()
    try:
        chunks = _read_samples(src, 250)
    finally:
        src.stop()
    c = chunks[-1]
    assert c.data.dtype == np.float64 and c.data.shape[0] == 16
    assert np.isfinite(c.data).all()
    assert all(b.first_sample == a.first_sample + a.n_samples for a, b in zip(chunks, chunks[1:]))  # contiguous
    assert 0.0 <= c.age_s < 10.0  # timestamps on the host's clock (another epoch would be off by years)
    assert src.dropped_samples == 0


def _playback_file(tmp_path, seconds=1.5):
    from brainflow.board_shim import BoardShim, BrainFlowInputParams
    from brainflow.data_filter import DataFilter

    b = BoardShim(-1, BrainFlowInputParams())
    b.prepare_session()
    b.start_stream()
    time.sleep(seconds)
    data = b.get_board_data()
    b.stop_stream()
    b.release_session()
    path = tmp_path / "synthetic.csv"
    DataFilter.write_file(data, str(path), "w")
    return path, data


def test_playback_board_replays_file_then_signal_lost(tmp_path):
    path, data = _playback_file(tmp_path)
    src = PollClock(BrainFlowSource(get_board("playback-file"), file=str(path)))
    proto = load_protocol(PROTOCOLS / "demo.toml")
    proc = Processor(proto, src.sfreq, src.ch_names, src.range_uv)
    pipe = Pipeline(src, proc, sinks=[src])
    pipe.start()
    try:
        wait_for_signal_lost(pipe)
        wait_until(lambda: src.lost_ns, what="'signal lost' published")
    finally:
        pipe.stop()
    assert pipe.published > 10
    assert pipe.latest.signal_lost and not pipe.latest.reward
    src.check_signal_lost(SIGNAL_LOST_S)  # declared by the first poll >= 0.5 s after the last samples
    assert pipe.ring.n_written >= data.shape[1] * 0.9


def test_lsl_outlet_to_inlet_on_loopback_and_signal_lost():
    from neurofeed.hardware.sources.lsl import LSLSource

    outlet = lsl_eeg_outlet("nf-test-eeg", float32=True)
    stop = threading.Event()
    pushed = [0]

    import pylsl

    t0 = pylsl.local_clock()

    def push():
        k = 0
        while not stop.is_set():
            # every sample stamped at the nominal rate, as EEG streamers do (timestamps are where
            # the LSL source finds gaps; sleep-paced pushes stamped on arrival would look like some)
            outlet.push_chunk([[float(k + i), 2.0, 3.0] for i in range(5)],  # noqa: F821 (deleted below, once this thread has stopped)
                              [t0 + (k + i) / 250.0 for i in range(5)])
            k += 5
            pushed[0] = k
            time.sleep(0.02)

    th = threading.Thread(target=push, daemon=True)
    th.start()
    src = LSLSource(name="nf-test-eeg", timeout_s=5)
    assert src.ch_names == ["C3", "Cz", "C4"] and src.sfreq == 250
    src.start()
    chunks = _read_samples(src, 50)
    allc = np.concatenate([c.data for c in chunks], axis=1)
    assert np.all(np.diff(allc[0]) == 1.0)  # in order, nothing lost
    assert np.allclose(allc[1], 2.0)
    assert all(abs(c.age_s) < 10.0 for c in chunks)  # timestamps on the host's LSL clock (not another epoch)
    stop.set()
    th.join()
    last = pushed[0] - 1.0
    del outlet
    tail = [allc[0, -1]]
    while tail[-1] < last:  # drain what was in flight, up to the last value pushed (an event)
        tail += [c.data[0, -1] for c in _read_samples(src, 1)]
    assert tail[-1] == last
    assert _read_for(src, 0.5) == []  # nothing arrives once the outlet is gone
    src.stop()


def test_lsl_pipeline_reports_signal_lost_within_one_second():
    from neurofeed.hardware.sources.lsl import LSLSource

    outlet = lsl_eeg_outlet("nf-test-lost")
    stop = threading.Event()
    rng = np.random.default_rng(0)

    def push():
        while not stop.is_set():
            outlet.push_chunk(rng.standard_normal((5, 3)).tolist())  # noqa: F821 (deleted below, once this thread has stopped)
            time.sleep(0.02)

    th = threading.Thread(target=push, daemon=True)
    th.start()
    src = PollClock(LSLSource(name="nf-test-lost", timeout_s=30))
    proto = load_protocol(PROTOCOLS / "demo.toml")
    proto.signal.reference = "raw"
    pipe = Pipeline(src, Processor(proto, src.sfreq, src.ch_names, src.range_uv), sinks=[src])
    pipe.start()
    try:
        wait_until(lambda: pipe.published > 10, what="the first updates")
        assert pipe.lost_events == 0
        stop.set()
        th.join()
        del outlet
        wait_for_signal_lost(pipe)
        wait_until(lambda: src.lost_ns, what="'signal lost' published")
        src.check_signal_lost(SIGNAL_LOST_S)  # declared by the first poll >= 0.5 s after the last samples
        assert pipe.latest.signal_lost and not pipe.latest.reward
    finally:
        pipe.stop()


def test_file_source_reads_edf_with_normalised_names(data_dir):
    src = FileSource(data_dir / "S001R03.edf")
    assert src.sfreq == 160 and "C3" in src.ch_names and "FC3" in src.ch_names and "Fp1" in src.ch_names
    assert src.chunk_size == 6  # live-sized: 40 ms at 160 Hz
    assert {a[2] for a in src.annotations} == {"T0", "T1", "T2"}
    c = src.read()
    assert c.data.shape == (64, 6)
    assert 5 < np.abs(src.data).max() < 2000  # µV, not V


def test_file_source_realtime_pacing(data_dir):
    src = FileSource(data_dir / "S001R01.edf", realtime=True)
    t_start = time.perf_counter_ns()
    src.start()
    chunks = _read_samples(src, 80)  # half a second of data
    _assert_paced(chunks, t_start, 160.0)
    assert [c.first_sample for c in chunks] == list(range(0, 6 * len(chunks), 6))  # contiguous, live-sized


def test_simulated_source_exposes_truth_and_suppression():
    script = SimulationScript(mu_factor=[(10.0, 20.0, 0.5)], emg=[(25.0, 26.0)], blinks=[28.0])
    sim = MuSimulator(script=script, seed=1)
    data, truth = sim.generate(250 * 30)
    t = np.arange(truth.shape[1]) / 250
    assert truth[0, (t > 11) & (t < 19)].mean() < 0.6 * truth[0, t < 9].mean()
    c3 = data[sim.ch_names.index("C3")]
    from scipy import signal

    f, p_rest = signal.welch(c3[(t > 1) & (t < 9)], 250, nperseg=250)
    _, p_sup = signal.welch(c3[(t > 11) & (t < 19)], 250, nperseg=250)
    band = (f >= 8) & (f <= 13)
    assert np.log10(p_sup[band].mean() / p_rest[band].mean()) < -0.3
    assert script.artifact_mask(np.array([25.5, 28.0, 5.0])).tolist() == [True, True, False]
    f3 = data[sim.ch_names.index("F3")]
    assert np.abs(f3[(t > 27.9) & (t < 28.1)]).max() > 100  # the blink is there


def test_simulated_source_paces_in_real_time():
    src = SimulatedSource(chunk_size=10, realtime=True)
    t_start = time.perf_counter_ns()
    src.start()
    chunks = _read_samples(src, 125)  # half a second of data
    _assert_paced(chunks, t_start, 250.0)
    assert all(c.n_samples == 10 for c in chunks)
    assert [c.first_sample for c in chunks] == list(range(0, 10 * len(chunks), 10))


@pytest.mark.parametrize("args, needle", [
    (["--board", "nonexistent-board"], "Unknown board 'nonexistent-board'"),
    (["--board-id", "9999"], "Unknown BrainFlow board id 9999"),
    (["--board", "cyton", "--serial-port", "/dev/ttyNOPE0"], "Serial port /dev/ttyNOPE0 does not exist"),
    (["--board", "file", "--file", "/nonexistent/x.edf"], "/nonexistent/x.edf: no such file"),
])
def test_bad_source_is_one_clear_line(args, needle, tmp_path, capsys):
    from neurofeed.cli import main  # in-process: the same main() the console script calls

    rc = main(["session", "--protocol", "demo", "--participant", "P01", "--headless", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_dropped_samples_from_package_counter_gaps():
    from neurofeed.hardware.sources.brainflow import count_dropped

    assert count_dropped(None, np.array([0.0, 1, 2, 3])) == 0
    assert count_dropped(3.0, np.array([4.0, 5, 8, 9])) == 2  # 6 and 7 lost
    assert count_dropped(254.0, np.array([255.0, 0, 1])) == 0  # wrap-around is not a loss
    assert count_dropped(254.0, np.array([2.0])) == 3  # 255, 0, 1 lost across the wrap
    assert count_dropped(9.0, np.array([9.0])) == 0  # a repeated counter is not a loss


def test_ftdi_latency_timer_warning_names_the_fix(tmp_path):
    from neurofeed.hardware.sources.brainflow import ftdi_warning

    sysfs = tmp_path / "sys"
    (sysfs / "ttyUSB0").mkdir(parents=True)
    port = tmp_path / "ttyUSB0"
    port.write_text("")  # stands in for /dev/ttyUSB0
    (sysfs / "ttyUSB0" / "latency_timer").write_text("16\n")
    msg = ftdi_warning(str(port), str(sysfs))
    assert "16 ms" in msg and f"echo 1 | sudo tee {sysfs}/ttyUSB0/latency_timer" in msg
    (sysfs / "ttyUSB0" / "latency_timer").write_text("1\n")
    assert ftdi_warning(str(port), str(sysfs)) is None
    assert ftdi_warning(str(tmp_path / "ttyACM9"), str(sysfs)) is None  # not an FTDI device: no warning


def test_counter_gaps_per_sample_for_cyton_and_daisy_numbering():
    from neurofeed.hardware.sources.brainflow import count_dropped, missing_before

    assert missing_before(None, np.array([0.0, 1, 2, 5, 6])).tolist() == [0, 0, 0, 2, 0]
    assert missing_before(254.0, np.array([1.0])).tolist() == [2]  # 255, 0 lost across the wrap
    # Cyton + Daisy: BrainFlow keeps the even packet number of each merged sample
    assert missing_before(252.0, np.array([254.0, 0, 6, 8]), 256, 2).tolist() == [0, 0, 2, 0]
    assert count_dropped(8.0, np.array([8.0, 10.0]), 256, 2) == 0  # a repeat is not a loss


def test_insert_gaps_keeps_the_timeline_true():
    from neurofeed.core.chunk import insert_gaps

    data = np.array([[1.0, 2.0, 3.0]])
    out, ts, gap = insert_gaps(data, np.array([10.0, 10.3, 10.4]), np.array([1, 2, 0]), prev_ts=9.8)
    assert gap.tolist() == [True, False, True, True, False, False]
    assert np.isnan(out[0, gap]).all() and out[0, ~gap].tolist() == [1.0, 2.0, 3.0]
    np.testing.assert_allclose(ts, [9.9, 10.0, 10.1, 10.2, 10.3, 10.4])
    same = insert_gaps(data, np.array([1.0, 2.0, 3.0]), np.zeros(3, int))
    assert same[0] is data and same[2] is None


def test_channel_map_renames_file_channels_and_rejects_unknown_names(data_dir):
    from neurofeed.core.errors import SourceError
    from neurofeed.live.session import open_source

    plain = open_source("file", file=str(data_dir / "S001R01.edf")).ch_names
    src = open_source("file", file=str(data_dir / "S001R01.edf"), channel_map={"C3": "C3x", "FC3": "Fc3x"})
    assert src.ch_names == [{"C3": "C3x", "FC3": "Fc3x"}.get(n, n) for n in plain]  # in the file's order
    with pytest.raises(SourceError, match=r"--channel-map names AUX1, not on file S001R01.edf \(its channels: "):
        open_source("file", file=str(data_dir / "S001R01.edf"), channel_map={"AUX1": "C3"})


def test_channel_map_renames_lsl_channels_and_rejects_unknown_names():
    from neurofeed.core.errors import SourceError
    from neurofeed.live.session import open_source

    outlet = lsl_eeg_outlet("nf-test-map", labels=("EEG1", "Cz", "EEG3"))
    src = open_source(lsl_name="nf-test-map", channel_map={"EEG1": "C3", "EEG3": "C4"})
    assert src.ch_names == ["C3", "Cz", "C4"]
    with pytest.raises(SourceError, match=r"--channel-map names AUX1, not on LSL stream 'nf-test-map'"):
        open_source(lsl_name="nf-test-map", channel_map={"AUX1": "C3"})
    del outlet


def test_muse_aux_electrode_is_read_from_other_channels():
    from brainflow.board_shim import BoardIds, BoardShim

    from neurofeed.hardware.sources.brainflow import AUX_ENABLE_COMMAND, aux_rows

    for board in (BoardIds.MUSE_2_BOARD, BoardIds.MUSE_S_BOARD):
        assert aux_rows(board.value) == {"AUX": BoardShim.get_other_channels(board.value)[0]}
    assert aux_rows(BoardIds.CYTON_BOARD.value) == {}
    # the mechanism a montage uses: the AUX row appended as a named EEG channel, "p50" sent at start
    src = BrainFlowSource(get_board("muse-2"), extra_rows=aux_rows(BoardIds.MUSE_2_BOARD.value),
                          config_commands=[AUX_ENABLE_COMMAND], channel_map={"AUX": "C3"})
    assert src.ch_names == ["TP9", "AF7", "AF8", "TP10", "C3"]
    assert src.rows.tolist() == [1, 2, 3, 4, 5] and src.config_commands == ["p50"]
    assert src.describe()["extra_rows"] == {"AUX": 5}


def test_session_without_a_board_is_one_line_naming_one(tmp_path):
    r = run_cli("session", "--protocol", "demo", "--participant", "P01", "--headless", "--out", tmp_path)
    assert r.returncode == 2
    assert "Name the board with --board: e.g. --board simulated" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing recorded


def test_lsl_stream_without_a_voltage_unit_is_refused_unless_assume_uv():
    """A stream whose channels carry no unit (or one that is not a voltage) is refused in one line
    naming the stream, the channel and the way out; --assume-uv takes it as µV; mV is scaled (issue 22)."""
    from neurofeed.core.errors import SourceError
    from neurofeed.live.session import open_source

    none = lsl_eeg_outlet("nf-test-nounit", unit=None)
    with pytest.raises(SourceError, match=r"LSL stream 'nf-test-nounit': channel C3 has no unit; .* or --assume-uv"):
        open_source(lsl_name="nf-test-nounit")
    assert open_source(lsl_name="nf-test-nounit", assume_uv=True).scale.ravel().tolist() == [1.0, 1.0, 1.0]
    counts = lsl_eeg_outlet("nf-test-counts", unit="counts")
    with pytest.raises(SourceError, match=r"channel C3 has unit 'counts'"):
        open_source(lsl_name="nf-test-counts")
    mv = lsl_eeg_outlet("nf-test-mv", unit="mV")
    assert open_source(lsl_name="nf-test-mv").scale.ravel().tolist() == [1e3, 1e3, 1e3]
    del none, counts, mv
