"""Muse and Ganglion through the real BrainFlowSource code path: BrainFlow's own playback board
replays a recording laid out exactly as BrainFlow's Muse / Ganglion drivers lay out their rows
(``BoardShim.get_board_descr``: package_num, EEG, other_channels, timestamp), carrying real EEG
(tests/conftest.py DATA, resampled), with packages dropped the way each board loses them: a Muse
loses a BLE notification round (12 samples, one 16-bit sequence number), a Ganglion a BLE packet
(2 samples, one packet id).
"""

import json

import numpy as np
import pytest

from neurofeed.hardware.boards import get_board
from neurofeed.hardware.signal_check import CONTACT_GRADES, run_signal_check
from neurofeed.hardware.sources.brainflow import COUNTER_RULES, BrainFlowSource, missing_before
from neurofeed.live.session import open_source
from tests.conftest import PROTOCOLS, run_cli, run_to_end

MUSE_FS, GANGLION_FS = 256.0, 200.0
MUSE_LSB_UV = 125.0 / 256.0  # BrainFlow: (raw - 0x800) * 125 / 256 µV (muse.cpp)
# The sites the Muse-shaped recording carries, read from EEGMMIDB: it has no TP9/TP10, so the
# nearest sites TP7/TP8 stand in for them (the test signal's provenance, not a montage); the AUX
# electrode is at C3.
MUSE_FROM = {"TP9": "TP7", "AF7": "AF7", "AF8": "AF8", "TP10": "TP8", "C3": "C3"}
SPEED = 8.0  # the playback board paces rows by the file's timestamps: replay 8x faster than real time


def _real_eeg(data_dir, names, sfreq, run="S001R03"):
    from neurofeed.devtools.cyton_emulator import edf_signal

    return edf_signal(data_dir / f"{run}.edf", names, sfreq)


def _muse_uv(x):
    """As a Muse sends it: 12-bit steps of 125/256 µV, from -1000 to +999.5 µV."""
    return np.clip(np.round(x / MUSE_LSB_UV), -2048, 2047) * MUSE_LSB_UV


def write_recording(path, board: str, eeg_uv, counters, sample_times_s, other_uv=None):
    """A BrainFlow CSV (DataFilter.write_file) with the rows of ``board``'s default preset."""
    from brainflow.board_shim import BoardIds, BoardShim
    from brainflow.data_filter import DataFilter

    d = BoardShim.get_board_descr(BoardIds[board].value)
    rows = np.zeros((d["num_rows"], eeg_uv.shape[1]))
    rows[d["package_num_channel"]] = counters
    rows[d["eeg_channels"]] = eeg_uv
    if other_uv is not None:
        rows[d["other_channels"][0]] = other_uv
    rows[d["timestamp_channel"]] = 1000.0 + np.asarray(sample_times_s) / SPEED
    DataFilter.write_file(np.ascontiguousarray(rows), str(path), "w")
    return path


def muse_recording(path, data_dir, seconds=30.0, dropped=(), first_counter=65530, aux_uv=None, edit=None):
    """A Muse 2 recording with the AUX electrode at C3, notifications ``dropped`` (their indices)
    left out. Returns (path, the full signal as sent (5 × n), mask of the samples lost)."""
    x = _muse_uv(_real_eeg(data_dir, list(MUSE_FROM.values()), MUSE_FS))
    n = int(seconds * MUSE_FS) // 12 * 12
    x = x[:, :n]
    if edit is not None:
        edit(x)
    notif = np.arange(n) // 12
    counters = (first_counter + notif) % 65536
    lost = np.isin(notif, list(dropped))
    keep = ~lost
    write_recording(path, "MUSE_2_BOARD", x[:4, keep], counters[keep], (np.arange(n) / MUSE_FS)[keep],
                    other_uv=x[4, keep] if aux_uv is None else aux_uv[keep])
    return path, x, lost


def ganglion_recording(path, data_dir, seconds=30.0, dropped=(), firmware=2, sites=("C3", "Cz", "C4", "Pz")):
    """A Ganglion recording (C3 Cz C4 Pz, 24-bit steps), BLE packets ``dropped`` left out.
    Firmware 2: one uncompressed packet (id 0, 1 sample), then ids 101..200 (19-bit packets,
    accelerometer off) two samples each; firmware 3: ids 100..199."""
    scale = 1.2e6 / (8388607.0 * 1.5 * 51.0)
    x = np.round(_real_eeg(data_dir, list(sites), GANGLION_FS) / scale) * scale
    n = int(seconds * GANGLION_FS)
    x = x[:, :n]
    if firmware == 2:
        packet = np.concatenate(([0], 1 + np.arange(n - 1) // 2))  # packet 0 holds one sample
        ids = np.where(packet == 0, 0, 101 + (packet - 1) % 100)
    else:
        packet = np.arange(n) // 2
        ids = 100 + packet % 100
    lost = np.isin(packet, list(dropped))
    keep = ~lost
    write_recording(path, "GANGLION_BOARD", x[:, keep], ids[keep], (np.arange(n) / GANGLION_FS)[keep])
    return path, x, lost


def read_all(src, n_total, timeout_s=120.0):
    """Start ``src``, read until ``n_total`` samples (arrived + gap) came, stop; the chunks."""
    import time

    chunks, t0 = [], time.monotonic()
    src.start()
    try:
        while sum(c.n_samples for c in chunks) < n_total:
            assert time.monotonic() - t0 < timeout_s, f"only {sum(c.n_samples for c in chunks)} of {n_total} samples"
            c = src.read()
            if c is not None:
                chunks.append(c)
    finally:
        src.stop()
    return chunks


def test_the_counter_rules_follow_each_boards_packets():
    # Muse: 12 samples per notification share a 16-bit sequence number
    muse = COUNTER_RULES["MUSE_2_BOARD"]
    c = np.repeat([65534.0, 65535, 0, 3, 4], 12)
    m = missing_before(None, c, muse.modulus, muse.step, muse.per_package)
    assert m.sum() == 24 and m[36] == 24  # notifications 1 and 2 (after the wrap) lost: 24 samples
    assert missing_before(4.0, np.repeat([4.0, 5], 12), muse.modulus, muse.step, muse.per_package).sum() == 0
    # Ganglion: 2 samples per packet id; firmware 2 counts 1..100 / 101..200, firmware 3 0..99 / 100..199
    g = COUNTER_RULES["GANGLION_BOARD"]
    fw2 = np.array([0.0, 101, 101, 102, 102, 105, 105, 200, 200, 101, 101, 103, 103])
    assert missing_before(None, fw2, g.modulus, g.step, g.per_package).tolist() == \
        [0, 0, 0, 0, 0, 4, 0, 2 * 94, 0, 0, 0, 2, 0]
    fw3 = np.array([198.0, 198, 199, 199, 100, 100, 101, 101])
    assert missing_before(None, fw3, g.modulus, g.step, g.per_package).sum() == 0
    assert missing_before(1.0, np.array([99.0, 99]), g.modulus, g.step, g.per_package).tolist() == [2 * 97, 0]


@pytest.mark.parametrize("board", ["muse-2", "muse-s"])
def test_muse_range_is_brainflows_scale(board):
    cfg = get_board(board)
    assert cfg.range_uv == pytest.approx(2048 * MUSE_LSB_UV)  # raw 0 -> -1000 µV
    assert cfg.ac_coupled and set(cfg.check_advice) >= {"TP9", "AF7", "AF8", "TP10", "AUX"}


def test_a_muse_shaped_source_reports_every_lost_notification_at_its_place(data_dir, tmp_path):
    dropped = [5, 40, 41, 42, 300, 577]  # 5 is 65535: 65534 -> 0 across the 16-bit wrap
    path, x, lost = muse_recording(tmp_path / "muse.csv", data_dir, dropped=dropped)
    src = open_source("muse-2", file=str(path), montage="aux-c3")  # as `--board muse-2 --file F` opens it
    assert src.ch_names == ["TP9", "AF7", "AF8", "TP10", "C3"] and src.sfreq == MUSE_FS
    assert src.aux_channels == ["C3"] and src.describe()["board_config"] == ["p50"]
    assert src.describe()["master_board"] == 38 and src.range_uv == 1000.0
    n_last = int(np.flatnonzero(~lost)[-1]) + 1
    chunks = read_all(src, n_last)
    data = np.concatenate([c.data for c in chunks], axis=1)[:, :n_last]
    gap = np.concatenate([c.gap if c.gap is not None else np.zeros(c.n_samples, bool) for c in chunks])[:n_last]
    assert src.dropped_samples == 12 * len(dropped) == int(lost[:n_last].sum())
    np.testing.assert_array_equal(gap, lost[:n_last])  # each lost notification, at its place on the timeline
    assert np.isnan(data[:, gap]).all()
    np.testing.assert_allclose(data[:, ~gap], x[:, :n_last][:, ~gap], atol=1e-6)  # the rest as sent
    assert all(b.first_sample == a.first_sample + a.n_samples for a, b in zip(chunks, chunks[1:]))


@pytest.mark.parametrize("firmware", [2, 3])
def test_a_ganglion_shaped_source_reports_every_dropped_packet(data_dir, tmp_path, firmware):
    dropped = [7, 8, 9, 250, 1001, 2000]  # 2000: where a firmware-2 id cycle ends (100 packets each)
    path, x, lost = ganglion_recording(tmp_path / "ganglion.csv", data_dir, dropped=dropped, firmware=firmware)
    src = BrainFlowSource(get_board("ganglion"), file=str(path))
    assert src.ch_names == ["C3", "Cz", "C4", "Pz"] and src.sfreq == GANGLION_FS
    n_last = int(np.flatnonzero(~lost)[-1]) + 1
    chunks = read_all(src, n_last)
    data = np.concatenate([c.data for c in chunks], axis=1)[:, :n_last]
    gap = np.concatenate([c.gap if c.gap is not None else np.zeros(c.n_samples, bool) for c in chunks])[:n_last]
    assert src.dropped_samples == 2 * len(dropped) == int(lost.sum())
    np.testing.assert_array_equal(gap, lost[:n_last])
    np.testing.assert_allclose(data[:, ~gap], x[:, :n_last][:, ~gap], atol=1e-5)


def test_ganglion_fits_every_shipped_protocol_and_refuses_others_in_one_line(tmp_path):
    for board in ("ganglion", "ganglion-native"):
        for montage in (None, "mu"):
            args = ["protocols", "check", "--board", board] + (["--montage", montage] if montage else [])
            r = run_cli(*args, *sorted(PROTOCOLS.glob("*.toml")))
            assert r.returncode == 0, r.stderr
            assert r.stdout.count("ok   ") == len(list(PROTOCOLS.glob("*.toml")))
    occipital = tmp_path / "occipital.toml"
    occipital.write_text((PROTOCOLS / "demo.toml").read_text().replace('targets = ["C3", "C4"]', 'targets = ["O1"]'))
    r = run_cli("protocols", "check", "--board", "ganglion", occipital)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "O1" in lines[0] and "lacks (C3, Cz, C4, Pz)" in lines[0], lines


def _muse_flat_aux_railed_tp10(data_dir, tmp_path):
    """Real EEG on TP9, AF7, AF8; TP10 loose, swinging 1.5 mV with the head's movement from rail to
    rail of the ±1 mV range; the AUX electrode (C3) sending nothing (BrainFlow's row stays 0 when
    p50 is not honoured)."""
    def edit(x):
        t = np.arange(x.shape[1]) / MUSE_FS
        x[3] = _muse_uv(x[3] + 1500.0 * np.sin(2 * np.pi * 0.3 * t))

    n = int(30 * MUSE_FS) // 12 * 12
    return muse_recording(tmp_path / "muse-check.csv", data_dir, first_counter=0, aux_uv=np.zeros(n),
                          edit=edit)[0]


def test_check_on_a_muse_flags_the_flat_and_the_railed_channel_and_passes_the_others(data_dir, tmp_path):
    path = _muse_flat_aux_railed_tp10(data_dir, tmp_path)
    src = open_source("muse-2", file=str(path), montage="aux-c3")
    result = run_signal_check(src, seconds=4.0, say=lambda s: None)
    ch = result["channels"]
    assert not result["ok"]
    assert ch["TP10"]["railed"] and ch["TP10"]["contact"] == "none" and not ch["TP10"]["ok"]
    assert ch["TP10"]["advice"].startswith("move the headband") and "railed at ±1 mV" in ch["TP10"]["advice"]
    assert ch["C3"]["flat"] and ch["C3"]["contact"] == "none" and not ch["C3"]["ok"]
    assert ch["C3"]["advice"].startswith("wet the AUX electrode") and "C3 is on the AUX input" in ch["C3"]["advice"]
    for name in ("TP9", "AF7", "AF8"):
        assert ch[name]["ok"] and ch[name]["contact"] in ("good", "fair"), (name, ch[name])
    assert all(c["offset_uv"] is None and c["impedance_kohm"] is None for c in ch.values())  # the Muse cannot say
    assert all(c["contact"] in CONTACT_GRADES for c in ch.values())


def test_a_muse_check_for_the_muse_protocol_reads_the_aux_electrode_without_a_montage_flag(data_dir, tmp_path):
    """muse-c3-gentle declares the AUX electrode at C3 ([signal] montage): `neurofeed check` opens
    the Muse with its aux-c3 montage (the AUX row read, p50 sent) and says so; the electrode keeps
    its site."""
    path = _muse_flat_aux_railed_tp10(data_dir, tmp_path)
    r = run_cli("check", "--board", "muse-2", "--protocol", "muse-c3-gentle", "--file", path, "--seconds", "3",
                "--no-artifact-tests", "--json", tmp_path / "muse.json")
    assert r.returncode == 1, r.stderr  # the flat AUX and the railed TP10 fail, as with --montage aux-c3
    assert "Montage aux-c3: AUX electrode at C3 (as the protocol asks)" in r.stdout
    channels = json.loads((tmp_path / "muse.json").read_text())["channels"]
    assert list(channels) == ["TP9", "AF7", "AF8", "TP10", "C3"]
    assert channels["C3"]["flat"] and channels["C3"]["advice"].startswith("wet the AUX electrode")


def test_check_json_has_the_same_keys_on_a_cyton_and_a_muse(data_dir, tmp_path):
    from neurofeed.devtools.cyton_emulator import CytonEmulator, edf_signal, montage_names

    path = _muse_flat_aux_railed_tp10(data_dir, tmp_path)
    r = run_cli("check", "--board", "muse-2", "--montage", "aux-c3", "--file", path, "--seconds", "3",
                "--no-artifact-tests", "--json", tmp_path / "muse.json")
    assert r.returncode == 1, r.stderr  # two channels fail
    assert "FAIL  move the headband" in r.stdout and "FAIL  wet the AUX electrode" in r.stdout
    x = edf_signal(data_dir / "S001R03.edf", montage_names("cyton"), 250.0)[:, : 250 * 60]
    with CytonEmulator(x, speed=4, offsets_uv=30e3, impedance_kohm=8.0) as emu:
        r = run_cli("check", "--board", "cyton", "--serial-port", emu.port, "--seconds", "3",
                    "--no-artifact-tests", "--json", tmp_path / "cyton.json")
    assert r.returncode in (0, 1), r.stderr
    muse = json.loads((tmp_path / "muse.json").read_text())
    cyton = json.loads((tmp_path / "cyton.json").read_text())
    assert set(muse) == set(cyton)
    keys = {frozenset(c) for doc in (muse, cyton) for c in doc["channels"].values()}
    assert len(keys) == 1 and {"offset_uv", "impedance_kohm", "contact", "advice"} <= set(next(iter(keys)))
    assert all(c["offset_uv"] is None for c in muse["channels"].values())
    assert all(c["offset_uv"] is not None and c["impedance_kohm"] is not None for c in cyton["channels"].values())


def test_a_muse_session_records_lost_notifications_as_gaps_in_the_journal_and_the_bdf(data_dir, tmp_path):
    """The Muse protocol (AUX at C3, referenced to TP9) on a Muse-shaped source losing notifications:
    the session's journal holds a 12-sample gap run at each, the BDF a "gap" annotation there, and
    the timeline (the block clock) keeps the lost samples."""
    import mne

    from neurofeed.live.session import build_session
    from neurofeed.protocol.schema import load_protocol
    from neurofeed.recording.journal import read_journal

    dropped = [100, 101, 500, 777, 1000, 1200]  # the session is 60 s: 1280 notifications
    path, x, lost = muse_recording(tmp_path / "muse-session.csv", data_dir, seconds=62.0, dropped=dropped)
    src = open_source("muse-2", file=str(path), montage="aux-c3")
    proto = load_protocol(PROTOCOLS / "muse-c3-gentle.toml")
    pipe, rec = build_session(src, proto, "P11", tmp_path / "out", seconds_scale=0.1, lsl=False)
    summary = run_to_end(pipe, rec)
    j = read_journal(rec.folder)
    n = j.data.shape[1]
    expect = _gap_runs(lost[:n])  # runs: notifications 100 and 101 join
    assert len(expect) == 5 and expect[0] == [1200, 24]
    np.testing.assert_array_equal(j.gaps, expect)
    assert summary["dropped_samples"] == int(lost[:n].sum()) == 12 * len(dropped)
    assert j.ch_names == ["TP9", "AF7", "AF8", "TP10", "C3"]
    source = j.header["source"]  # the AUX electrode was switched on (p50) and that is on record
    assert source["board_config"] == ["p50"] and source["aux_channels"] == ["C3"] and source["range_uv"] == 1000.0
    raw = mne.io.read_raw_bdf(summary["bdf"], preload=True, verbose="error")
    onsets = sorted(round(a["onset"] * MUSE_FS) for a in raw.annotations if a["description"] == "gap")
    assert onsets == [a for a, _ in expect if a < raw.n_times]
    assert np.isfinite(raw.get_data()).all()


def test_the_check_panel_and_table_show_a_board_without_offset(tmp_path):
    import io

    from neurofeed.hardware.signal_check import check_html, measure_channels, print_signal_check

    rng = np.random.default_rng(5)
    x = _muse_uv(20.0 * rng.standard_normal((2, 1024)))
    x[1] = -1000.0
    chans = measure_channels(x, MUSE_FS, ["TP9", "TP10"], 1000.0, 50.0, ac_coupled=True,
                             actions={"TP10": "move the headband"})
    assert chans["TP9"].ok and chans["TP9"].offset_uv is None and chans["TP9"].contact == "good"
    assert chans["TP10"].advice == "move the headband: railed at ±1 mV" and chans["TP10"].contact == "none"
    from dataclasses import asdict

    result = {"source": "muse-2", "sfreq": MUSE_FS, "seconds": 4.0, "line_freq": 50.0, "ok": False,
              "channels": {n: asdict(c) for n, c in chans.items()}}
    out = io.StringIO()
    print_signal_check(result, out)
    assert "TP10" in out.getvalue() and "FAIL  move the headband" in out.getvalue()
    html = check_html(result)
    assert "offset" not in html and "move the headband" in html


def test_board_config_errors_name_the_key(tmp_path):
    from neurofeed.core.errors import NeurofeedError
    from neurofeed.hardware.boards import load_board_config

    bad = tmp_path / "muse-x.toml"
    bad.write_text('name = "muse-x"\nboard_id = "MUSE_2_BOARD"\nac_coupled = "yes"\n')
    with pytest.raises(NeurofeedError, match="ac_coupled must be true or false"):
        load_board_config(bad)
    bad.write_text('name = "muse-x"\nboard_id = "MUSE_2_BOARD"\ncheck_advice = ["move it"]\n')
    with pytest.raises(NeurofeedError, match="check_advice must be a table"):
        load_board_config(bad)
    r = run_cli("check", "--board", "muse-2", "--file", tmp_path / "no-such.csv")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "no-such.csv" in r.stderr


def _gap_runs(lost):
    edges = np.flatnonzero(np.diff(np.concatenate(([0], lost.astype(int), [0]))))
    return [[a, b - a] for a, b in zip(edges[::2], edges[1::2])]


def test_a_ganglion_session_records_dropped_packets_as_gaps_in_the_journal_and_the_bdf(data_dir, tmp_path):
    """The demo protocol on a Ganglion (`mu` montage) losing BLE packets: journal gap runs and BDF
    annotations at each, as on the Cyton."""
    import mne

    from neurofeed.live.session import build_session
    from neurofeed.protocol.schema import load_protocol
    from neurofeed.recording.journal import read_journal

    dropped = [50, 51, 52, 1500, 3000, 5900]  # packets: 2 samples each (packet 0: 1)
    sites = get_board("ganglion").montage("mu")
    path, x, lost = ganglion_recording(tmp_path / "ganglion-session.csv", data_dir, seconds=62.0, dropped=dropped,
                                       sites=sites)
    src = open_source("ganglion", file=str(path), montage="mu")
    pipe, rec = build_session(src, load_protocol(PROTOCOLS / "demo.toml"), "P12", tmp_path / "out", lsl=False)
    summary = run_to_end(pipe, rec)
    j = read_journal(rec.folder)
    n = j.data.shape[1]
    expect = _gap_runs(lost[:n])
    assert len(expect) == 4 and expect[0] == [99, 6]
    np.testing.assert_array_equal(j.gaps, expect)
    assert summary["dropped_samples"] == int(lost[:n].sum()) == 2 * len(dropped)
    raw = mne.io.read_raw_bdf(summary["bdf"], preload=True, verbose="error")
    onsets = sorted(round(a["onset"] * GANGLION_FS) for a in raw.annotations if a["description"] == "gap")
    assert onsets == [a for a, _ in expect if a < raw.n_times]
