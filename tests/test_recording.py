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

from neurofeed.errors import RecordingError
from neurofeed.protocol.schema import load_protocol
from neurofeed.replay import replay_journal
from neurofeed.session import build_session, finish_session
from neurofeed.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from tests.conftest import DATA, PROTOCOLS, ROOT, run_cli


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
    for key in ("protocol_text", "baseline_uv2", "threshold_history", "timing", "ch_names", "software", "participant"):
        assert key in side
    assert side["participant"] == "P07"


def test_bdf_holds_eeg_feedback_and_events_with_fine_quantisation(tmp_path):
    folder, _ = _live_session(tmp_path, ops=False)
    bdf = next(folder.glob("*.bdf"))
    raw = mne.io.read_raw_bdf(bdf, preload=True, verbose="error")
    from neurofeed.recording.journal import read_journal

    j = read_journal(folder)
    n = raw.n_times
    assert j.data.shape[1] - n < 25  # whole 0.1-s records
    eeg = raw.get_data(picks=j.ch_names) * 1e6
    assert np.max(np.abs(eeg - j.data[:, :n])) <= 0.5 * 2 * 4000 / 2 ** 24 + 1e-6  # step 0.0005 µV
    for name in ("SI", "Threshold", "Reward", "Feedback"):
        assert name in raw.ch_names
    descs = set(raw.annotations.description)
    assert "block_start/baseline/exploration" in descs and "reward_on" in descs
    assert raw.info["subject_info"].get("his_id") == "P07"  # a code, never a name


def test_sigkill_then_recover_loses_at_most_one_second(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    exe = Path(sys.executable).parent / "neurofeed"
    proc = subprocess.Popen([str(exe), "session", "--board", "simulated", "--protocol", "demo", "--participant",
                             "P09", "--headless", "--out", str(tmp_path), "--no-lsl"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = None
    deadline = time.time() + 60
    while time.time() < deadline:  # the journal's first chunk marks the start of acquisition
        found = list(tmp_path.glob("P09/*/chunks.i64"))
        if found and found[0].stat().st_size > 0:
            t0 = time.time()
            break
        time.sleep(0.01)
    assert t0 is not None, proc.communicate(timeout=5)
    time.sleep(4.0)
    killed_at = time.time()
    proc.send_signal(sig.SIGKILL)
    proc.wait(10)
    acquired_s = killed_at - t0
    folder = found[0].parent
    assert not list(folder.glob("*.bdf"))  # killed before closing
    r = run_cli("recover", folder)
    assert r.returncode == 0, r.stderr
    raw = mne.io.read_raw_bdf(next(folder.glob("*.bdf")), preload=True, verbose="error")
    assert raw.n_times / raw.info["sfreq"] >= acquired_s - 1.0 - 0.1
    descs = list(raw.annotations.description)
    assert "block_start/baseline/exploration" in descs
    assert any(d.startswith("recovered") for d in descs)


def test_unwritable_folder_is_caught_at_start(tmp_path):
    blocked = tmp_path / "ro"
    blocked.write_text("a file where a folder should be")
    r = run_cli("session", "--board", "simulated", "--protocol", "demo", "--participant", "P01", "--headless", "--out", blocked / "x")
    assert r.returncode == 2 and "Cannot write recordings to" in r.stderr and "Traceback" not in r.stderr


def test_participant_code_must_not_look_like_a_name(tmp_path):
    r = run_cli("session", "--board", "simulated", "--protocol", "demo", "--participant", "Jane Doe", "--headless", "--out", tmp_path)
    assert r.returncode == 2 and "never a name" in r.stderr


def test_disk_full_during_session_stops_with_a_clear_line_and_keeps_the_data(tmp_path):
    # A file-size limit makes writes fail mid-session exactly as a full disk does (EFBIG vs ENOSPC).
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
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
    r = run_cli("replay", *files, "--baseline-label", "T0", "--out", tmp_path, "--jobs", "2")
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
