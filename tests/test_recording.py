"""Crash-safe recording, recovery, bit-exact replay and replays of other systems' files."""

import json
import os
import signal as sig
import subprocess
import sys
import time
from pathlib import Path

import mne
import numpy as np
import pytest

from neurofeed.analysis.replay import replay_journal
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol
from tests.conftest import DATA, PROTOCOLS, ROOT, pull_until, run_cli, wait_until


def _live_session(tmp_path, scale=0.3, realtime=False, ops=True):
    proto = load_protocol(PROTOCOLS / "demo.toml")
    script = SimulationScript.alternating(60, emg_every_s=7, blink_every_s=5)
    src = SimulatedSource(MuSimulator(script=script, seed=5), realtime=realtime)
    pipe, rec = build_session(src, proto, "P07", tmp_path, seconds_scale=scale, lsl=False)
    if ops:  # operator actions during the session: pause, resume, marker
        pipe.start()
        while pipe.engine.n < 250 * 8:
            time.sleep(0.001)
        pipe.pause(True)
        pipe.marker("note")
        while pipe.engine.n < 250 * 10:
            time.sleep(0.001)
        pipe.pause(False)
        pipe.wait(60)
        pipe.stop()
    else:
        pipe.run()
    summary = finish_session(pipe, rec)
    return rec.folder, summary


def test_live_then_replay_is_bit_exact(tmp_path):
    folder, summary = _live_session(tmp_path)
    res = replay_journal(folder)
    rec, rep = res["recorded"], res["feedback"]
    assert rec.shape == rep.shape and rec.shape[0] > 100
    assert np.array_equal(rec, rep, equal_nan=True)  # bit for bit, pauses and marker included
    texts = [e.text for e in res["events"]]
    assert "pause" in texts and "resume" in texts and "marker/note" in texts
    # the sidecar carries what a researcher needs
    side = json.loads((folder / "sidecar.json").read_text())
    for key in ("protocol_text", "baseline_uv2", "threshold_history", "timing", "ch_names", "software", "participant",
                "reward_rate", "gated_s", "feedback_s", "feedback_columns"):
        assert key in side, key
    assert side["participant"] == "P07"
    base = side["baseline_uv2"]
    base = list(base.values()) if isinstance(base, dict) else base  # per target
    assert len(base) == 2 and all(v > 0 for v in base)
    assert 0.0 <= side["reward_rate"] <= 1.0 and 0.0 <= side["gated_s"] <= side["feedback_s"]
    assert side["feedback_s"] == pytest.approx(summary["feedback_s"]) and side["feedback_s"] > 0


def test_bdf_holds_eeg_feedback_and_events_with_fine_quantisation(tmp_path):
    folder, _ = _live_session(tmp_path, ops=False)
    bdf = next(folder.glob("*.bdf"))
    raw = mne.io.read_raw_bdf(bdf, preload=True, infer_types=True, verbose="error")
    from neurofeed.core.record import bdf_label
    from neurofeed.recording.journal import read_journal

    j = read_journal(folder)
    n = raw.n_times
    assert j.data.shape[1] == n  # exactly the journal's samples
    eeg = raw.get_data(picks=j.ch_names) * 1e6
    assert np.max(np.abs(eeg - j.data[:, :n])) <= 0.5 * 2 * 4000 / 2 ** 24 + 1e-6  # step 0.0005 µV
    types = dict(zip(raw.ch_names, raw.get_channel_types()))
    for name in j.columns[1:]:  # the feedback record (but sample_index) as extra signals, typed misc
        label = bdf_label(name)
        assert label.startswith("MISC ") and types[label[5:]] == "misc", name
    from neurofeed.hardware.sources.edf import FileSource

    src = FileSource(bdf)  # neurofeed's own reading (replay, report): the same types
    assert dict(zip(src.ch_names, src.ch_types)) == {**dict.fromkeys(j.ch_names, "eeg"),
                                                     **{bdf_label(c): "misc" for c in j.columns[1:]}}
    si = raw.get_data(picks=["si_combined"])[0]
    end = j.feedback[:, 0].astype(int)  # each update's value held until the next: check each update's last sample
    last = end[(end <= n) & np.isfinite(j.records["si_combined"])] - 1
    vals = j.records["si_combined"][(end <= n) & np.isfinite(j.records["si_combined"])]
    assert last.size > 100 and np.max(np.abs(si[last] - vals)) <= 10 / 2 ** 24 + 1e-9
    descs = set(raw.annotations.description)
    assert "block_start/baseline/exploration" in descs and "reward_on" in descs
    assert raw.info["subject_info"].get("his_id") == "P07"  # a code, never a name


def test_sigkill_then_recover_keeps_everything_that_reached_the_disk(tmp_path):
    """SIGKILL mid-session, then `recover`: the BDF holds every sample the journal had written
    (the writer flushes at least every SYNC_EVERY_S, so at most that much of the newest data is lost)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    exe = Path(sys.executable).parent / "neurofeed"
    proc = subprocess.Popen([str(exe), "session", "--board", "simulated", "--protocol", "demo", "--participant",
                             "P09", "--headless", "--out", str(tmp_path), "--no-lsl"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n_ch = None

    def on_disk():  # samples the journal holds (whole samples), read from the files as they are now
        nonlocal n_ch
        found = list(tmp_path.glob("P09/*/samples.f64"))
        if not found or not (found[0].parent / "header.json").exists():
            return 0
        n_ch = n_ch or len(json.loads((found[0].parent / "header.json").read_text())["ch_names"])
        return found[0].stat().st_size // (8 * n_ch)

    try:
        wait_until(lambda: on_disk() >= 4 * 250 or proc.poll() is not None, what="4 s of samples on disk")
        assert proc.poll() is None, proc.communicate(timeout=5)
        before = on_disk()
        proc.send_signal(sig.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    folder = next(tmp_path.glob("P09/*"))
    assert not list(folder.glob("*.bdf"))  # killed before closing
    r = run_cli("recover", folder, console=True)
    assert r.returncode == 0, r.stderr
    raw = mne.io.read_raw_bdf(next(folder.glob("*.bdf")), preload=True, verbose="error")
    # every sample written, exactly (records as long as a divisor of the count)
    assert before <= on_disk() == raw.n_times
    descs = list(raw.annotations.description)
    assert "padding (not recorded)" not in descs
    assert "block_start/baseline/exploration" in descs
    assert any(d.startswith("recovered") for d in descs)


def test_unwritable_folder_is_caught_at_start(tmp_path, capsys):
    from neurofeed.cli import main

    blocked = tmp_path / "ro"
    blocked.write_text("a file where a folder should be")
    rc = main(["session", "--board", "simulated", "--protocol", "demo", "--participant", "P01", "--headless", "--no-lsl",
               "--out", str(blocked / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and "Cannot write recordings to" in err and len(err.strip().splitlines()) == 1


def test_participant_code_must_not_look_like_a_name(tmp_path, capsys):
    from neurofeed.cli import main

    rc = main(["session", "--board", "simulated", "--protocol", "demo", "--participant", "Jane Doe", "--headless", "--no-lsl",
               "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "never a name" in err and len(err.strip().splitlines()) == 1


def test_disk_full_during_session_stops_with_a_clear_line_and_keeps_the_data(tmp_path):
    # A file-size limit makes writes fail mid-session exactly as a full disk does (EFBIG vs ENOSPC).
    # The limit would also hit numba's own cache files (quality_step's are ~435 kB) when this test
    # runs first on a fresh clone: those writes are skipped here, the recorder's are what is tested.
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "import numba.core.caching as nc; "
            "nc.Cache.save_overload = lambda self, sig, data: None; "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000)); "
            "from neurofeed.cli import main; sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "session", "--board", "simulated", "--protocol", "demo", "--participant", "P02",
                        "--headless", "--out", str(tmp_path), "--no-lsl", "--seconds-scale", "0.5"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Recording to" in r.stderr and "failed" in r.stderr and "Traceback" not in r.stderr
    folder = next(tmp_path.glob("P02/*"))
    raw = np.fromfile(folder / "samples.f64")
    assert raw.size > 16 * 250  # what was written before the failure is kept


def test_replay_eegmmidb_fist_vs_feet_pinned(tmp_path):
    files = [DATA / f"S001R0{i}.edf" for i in (3, 4, 5, 6)]
    r = run_cli("replay", *files, "--baseline-label", "T0", "--mode", "offline", "--out", tmp_path, "--jobs", "2")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    fist, feet = [], []
    for path, s in summary.items():
        run = Path(path).stem[-2:]
        cond = s["conditions"]
        assert cond["T0"]["si"]["C3"] == pytest.approx(0.0, abs=1e-9)
        fist.append([cond["T1"]["si"]["C3"], cond["T1"]["si"]["C4"]])
        (feet if run in ("05", "06") else fist).append([cond["T2"]["si"]["C3"], cond["T2"]["si"]["C4"]])
        tsv = (tmp_path / Path(path).name.replace(".", "_") / "feedback.tsv").read_text().splitlines()
        assert tsv[0].startswith("time_s\tsi_C3\tsi_C4\tsi_combined\tthreshold\treward\tgate")
    fist, feet = np.array(fist), np.array(feet)
    assert np.all(fist.mean(axis=0) < -0.1)  # C3 and C4 suppressed for fists (Laplacian: about -0.2)
    assert np.all(feet.mean(axis=0) > 0.0)  # not for feet
    assert (fist[:, 0] < 0).all()  # C3 on every fist condition


class _Chunk:
    """A chunk as the sources hand over once gaps are marked (``gap``: True on dropped-packet columns)."""

    def __init__(self, data, timestamps, arrival_ns, first_sample, gap=None):
        self.data, self.timestamps, self.arrival_ns, self.first_sample = data, timestamps, arrival_ns, first_sample
        self.gap, self.age_s = gap, float("nan")

    @property
    def n_samples(self):
        return self.data.shape[1]


class _NanAndGapSource(SimulatedSource):
    """Simulated EEG with 3 NaN samples on C3 at 5 s and a 40-sample dropped-packet gap (NaN on every
    channel, ``gap`` set, timestamps kept on the sample grid) from 8 s."""

    NAN_AT, GAP_AT, GAP_N = 5 * 250 + 3, 8 * 250, 40

    def read(self):
        c = super().read()
        if c is None:
            return None
        data, gap = c.data.copy(), np.zeros(c.n_samples, bool)
        idx = c.first_sample + np.arange(c.n_samples)
        data[self.ch_names.index("C3"), (idx >= self.NAN_AT) & (idx < self.NAN_AT + 3)] = np.nan
        g = (idx >= self.GAP_AT) & (idx < self.GAP_AT + self.GAP_N)
        data[:, g] = np.nan
        gap[g] = True
        return _Chunk(data, c.timestamps, c.arrival_ns, c.first_sample, gap if gap.any() else None)


def test_nan_and_gaps_still_give_a_bdf_that_mne_reads_with_gaps_annotated(tmp_path):
    proto = load_protocol(PROTOCOLS / "demo.toml")
    src = _NanAndGapSource(MuSimulator(seed=4), realtime=False, duration_s=12.0)
    pipe, rec = build_session(src, proto, "P08", tmp_path, seconds_scale=0.2, lsl=False)
    pipe.run()
    summary = finish_session(pipe, rec)
    assert pipe.error is None and summary["bdf"]
    from neurofeed.recording.journal import read_journal

    j = read_journal(rec.folder)
    assert j.data.shape[1] == 12 * 250  # gap samples keep the timeline true
    assert np.array_equal(j.gaps, [[src.GAP_AT, src.GAP_N]])
    ts = j.timestamps
    assert ts.shape == (12 * 250,) and np.allclose(np.diff(ts), 1 / 250, rtol=0, atol=1e-6)  # the source's clock, every sample
    raw = mne.io.read_raw_bdf(summary["bdf"], preload=True, verbose="error")
    assert raw.n_times == 12 * 250
    eeg = raw.get_data(picks=j.ch_names) * 1e6
    assert np.isfinite(eeg).all()
    c3 = j.ch_names.index("C3")
    # written as the value held from the last finite sample, within one quantisation step
    step = 2 * 4000 / 2 ** 24
    assert np.abs(eeg[c3, src.NAN_AT:src.NAN_AT + 3] - j.data[c3, src.NAN_AT - 1]).max() <= step
    assert np.abs(eeg[:, src.GAP_AT:src.GAP_AT + src.GAP_N] - j.data[:, [src.GAP_AT - 1]]).max() <= step
    ann = {(d, round(o * 250), round(du * 250)) for d, o, du in
           zip(raw.annotations.description, raw.annotations.onset, raw.annotations.duration)}
    assert ("gap", src.GAP_AT, src.GAP_N) in ann
    assert ("nan/C3", src.NAN_AT, 3) in ann
    assert not any(d.startswith("nan") and o >= src.GAP_AT for d, o, _ in ann)  # a gap is not also "nan"


def test_one_record_definition_reaches_every_output(tmp_path, monkeypatch):
    """Add a field to the record: journal, recorder, LSL outlet, BDF, replay and the TSV all carry it."""
    import pylsl

    from neurofeed.core import record
    from neurofeed.live.lsl_outlets import LSLOutlets
    from neurofeed.recording.journal import read_journal

    monkeypatch.setattr(record, "FIELDS", record.FIELDS + (record.Field("block_index", "block_index", "", (-1, 99)),))
    proto = load_protocol(PROTOCOLS / "demo.toml")
    src = SimulatedSource(MuSimulator(seed=6), realtime=False)
    pipe, rec = build_session(src, proto, "P10", tmp_path, seconds_scale=0.1, lsl=False)
    out = LSLOutlets(proto.signal.targets, name="nf-rec-field", source_id="nf-rec-field")
    assert out.labels[0] == "si_combined" and out.labels[-1] == "block_index"
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", "nf-rec-field-feedback", 1, 10.0)[0], max_buflen=60)
    inlet.open_stream(10.0)
    info = inlet.info(10.0).desc().child("channels").first_child()
    labels = []
    while not info.empty():
        labels.append(info.child_value("label"))
        info = info.next_sibling()
    assert labels == out.labels
    states = []
    pipe.sinks.append(out)
    pipe.sinks.append(type("Keep", (), {"on_state": lambda self, st: states.append(st)})())
    pipe.run()
    finish_session(pipe, rec)
    want = np.array([s.block_index for s in states], float)
    assert len(set(want)) > 3  # the field changes during the session
    j = read_journal(rec.folder)
    assert j.columns[-1] == "block_index" and np.array_equal(j.records["block_index"], want)
    samples = pull_until(inlet, lambda got: len(got) >= len(states))  # everything pushed arrives (an event)
    assert np.array_equal(np.array(samples)[:, -1], want)
    raw = mne.io.read_raw_bdf(next(rec.folder.glob("*.bdf")), preload=True, infer_types=True, verbose="error")
    held = raw.get_data(picks=["block_index"])[0]  # ("MISC block_index": a misc signal)
    end = j.feedback[:, 0].astype(int)
    ok = end <= raw.n_times
    assert np.abs(held[end[ok] - 1] - want[ok]).max() < 1e-3
    res = replay_journal(rec.folder)
    assert res["columns"] == j.columns and np.array_equal(res["feedback"], j.feedback, equal_nan=True)
    tsv = record.record_table(res["feedback"], res["columns"], 250.0).splitlines()
    assert tsv[0].split("\t") == ["time_s", *j.columns] and len(tsv) == len(states) + 1
    assert [float(line.split("\t")[-1]) for line in tsv[1:]] == list(want)


def test_recover_never_ends_in_a_traceback(tmp_path, capsys):
    """(A folder killed before its first sample is recovered: tests/test_recording_safety.py.)"""
    from neurofeed.cli import main

    cases = {"garbage-header": (b"\x00\xff not json", None), "no-keys": (b"{}", None),
             "bad-start": (json.dumps({"ch_names": ["C3"], "sfreq": 250, "targets": ["C3"], "range_uv": 100,
                                       "started": "yesterday"}).encode(), np.zeros(250).tobytes())}
    for name, (header, samples) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "header.json").write_bytes(header)
        if samples is not None:
            (folder / "samples.f64").write_bytes(samples)
        assert main(["recover", str(folder)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("neurofeed: error: ") and str(folder) in err and len(err.splitlines()) == 1, (name, err)


def test_record_rows_structured_and_tsv_agree():
    from neurofeed.core import record
    from neurofeed.core.state import FeedbackState

    st = FeedbackState(targets=("C3", "C4"), si=np.array([0.1, -0.2]), power_uv2=np.array([3.0, 4.5]),
                       si_combined=-0.05, reward=True, sample_index=500, threshold=0.25)
    cols = record.record_columns(st.targets)
    assert cols[:2] == ["sample_index", "si_combined"] and cols[-2:] == ["power_C3_uv2", "power_C4_uv2"]
    flat = record.state_to_row(st, record.new_row(st.targets))
    rec = np.zeros((), record.record_dtype(st.targets))
    record.state_to_row(st, rec)
    assert rec["si_C4"] == -0.2 and rec["reward"] == 1.0 and np.array_equal(rec.reshape(1).view(np.float64), flat, equal_nan=True)
    assert record.as_records(np.vstack([flat, flat]), cols)["power_C4_uv2"].tolist() == [4.5, 4.5]
    lines = record.record_table(np.vstack([flat]), cols, 250.0).splitlines()
    assert lines[0] == "\t".join(["time_s", *cols])
    assert lines[1].split("\t")[:4] == ["2.000000", "500", "-0.05", "0.25"]
