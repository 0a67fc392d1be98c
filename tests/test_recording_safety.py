"""Nothing lost (issue 22): codes and names that files carry, exclusive session folders, an atomic
header, a BDF with every sample and event, a recorder that never stalls acquisition, and a session
limit that holds when the signal is lost."""

import json
import logging
import os
import signal as sig
import subprocess
import sys
import threading
import time
from pathlib import Path

import mne
import numpy as np
import pytest

from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol
from neurofeed.recording import writer
from neurofeed.recording.journal import read_journal
from tests.conftest import PROTOCOLS, ROOT, run_cli, wait_until

STEP_UV = 2 * 4000 / 2 ** 24  # the simulated board's BDF quantisation step


def _one_line_refusal(capsys, rc):
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("neurofeed: error: ") and len(err.splitlines()) == 1, err
    return err


def test_non_ascii_participant_code_is_refused_before_anything_is_recorded(tmp_path, capsys):
    from neurofeed.cli import main

    rc = main(["session", "--board", "simulated", "--protocol", "demo", "--participant", "Ünal", "--headless",
               "--no-lsl", "--out", str(tmp_path / "rec")])
    err = _one_line_refusal(capsys, rc)
    assert "'Ünal'" in err and "ASCII" in err
    assert not (tmp_path / "rec").exists()  # refused before any folder was made


@pytest.mark.parametrize("name", ["x/../../../../tmp/escaped", "..", "my protocol", "Übung"])
def test_protocol_name_a_folder_cannot_carry_is_refused(tmp_path, capsys, name):
    from neurofeed.cli import main

    text = (PROTOCOLS / "demo.toml").read_text().replace('name = "demo"', f"name = {json.dumps(name)}", 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    rc = main(["protocols", "check", str(bad)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "[protocol] name" in err and str(bad) in err, err
    rc = main(["session", "--board", "simulated", "--protocol", str(bad), "--participant", "P01", "--headless",
               "--no-lsl", "--out", str(tmp_path / "rec")])
    assert "[protocol] name" in _one_line_refusal(capsys, rc)
    assert not (tmp_path / "rec").exists() and not Path("/tmp/escaped").exists()


def _bdf_matches_journal(folder):
    """The BDF holds exactly the journal's samples (MNE and edfio read it; EEG typed EEG, the
    feedback signals misc) and every journal event at its sample, the last ones included;
    returns (journal, raw)."""
    from edfio import read_bdf

    j = read_journal(folder)
    path = next(Path(folder).glob("*.bdf"))
    raw = mne.io.read_raw_bdf(path, preload=True, infer_types=True, verbose="error")
    n = j.data.shape[1]
    assert raw.n_times == n == j.chunk_sizes.sum() and raw.info["sfreq"] == j.sfreq
    assert read_bdf(path).signals[0].data.size == n
    eeg = raw.get_data(picks=j.ch_names) * 1e6
    assert np.max(np.abs(eeg - j.data)) <= STEP_UV  # every sample, to the last one
    types = dict(zip(raw.ch_names, raw.get_channel_types()))
    assert [types[c] for c in j.ch_names] == ["eeg"] * len(j.ch_names)
    assert sorted(t for c, t in types.items() if c not in j.ch_names) == ["misc"] * (len(j.columns) - 1)
    got = sorted((round(float(o) * j.sfreq), d) for o, d in zip(raw.annotations.onset, raw.annotations.description))
    assert "padding (not recorded)" not in [d for _, d in got]
    want = sorted((min(e["sample"], n), e["text"][:120]) for e in j.events + j.recorder_events)
    assert set(want) <= set(got)  # every event the journal has, at its sample
    last = [d for s, d in got if s == got[-1][0]]  # the BDF's last annotations are the journal's last
    assert sorted(last) == sorted(d for s, d in want if s == want[-1][0])
    return j, raw


@pytest.mark.parametrize("sfreq, n, n_bdf", [(250.0, 1741, 1741), (250.0, 1747, 1747),  # 1747 is prime
                                               (125.0, 1009, 1009), (200.0, 1999, 1999), (500.0, 3001, 3001),
                                               (256.0, 1741, 1736), (256.0, 1743, 1736), (300.0, 1001, 987)])
def test_the_bdf_ends_where_the_journal_ends_at_any_rate_and_count(tmp_path, sfreq, n, n_bdf):
    """Any sample count at 125/200/250/500 Hz is held exactly (records as long as a divisor of it,
    one sample for a prime); at 256 Hz (and rates like 300 Hz) the recorder ends the journal at its
    last chunk boundary (7-sample chunks here) whose count a BDF holds exactly (a multiple of 4 at 256 Hz,
    of 3 at 300 Hz), journaled, and journal and BDF agree."""
    from edfio import read_bdf

    from neurofeed.core.chunk import Chunk

    header = {"ch_names": ["C3", "C4", "Cz"], "sfreq": sfreq, "targets": ["C3", "C4"], "range_uv": 4000.0,
              "participant": "P20"}
    rec = writer.Recorder(tmp_path / "P20" / "s", header)
    x = np.vstack([np.arange(n) % 1000 - 500.0, np.zeros((2, n))])
    for a in range(0, n, 7):
        rec.on_chunk(Chunk(x[:, a:a + 7], np.arange(a, min(n, a + 7)) / sfreq, 1))
    rec.on_events([type("E", (), dict(sample=n, onset_s=n / sfreq, duration_s=0.0, text="session_end/test"))()])
    summary = {}
    bdf = rec.close(summary)
    j = read_journal(rec.folder)
    raw = mne.io.read_raw_bdf(bdf, preload=True, infer_types=True, verbose="error")
    assert raw.n_times == j.data.shape[1] == j.chunk_sizes.sum() == n_bdf and raw.info["sfreq"] == sfreq
    assert read_bdf(bdf).signals[0].sampling_frequency == sfreq and read_bdf(bdf).signals[0].data.size == n_bdf
    np.testing.assert_allclose(raw.get_data(picks=["C3"])[0] * 1e6, x[0, :n_bdf], atol=STEP_UV)
    assert summary["recording_trimmed_samples"] == n - n_bdf
    descs = list(raw.annotations.description)
    assert "session_end/test" in descs and "padding (not recorded)" not in descs
    assert (f"recording_trimmed/{n - n_bdf} samples" in " ".join(descs)) == (n > n_bdf)


def test_bdf_holds_every_sample_and_the_end_after_a_normal_end(tmp_path):
    proto = load_protocol(PROTOCOLS / "demo.toml")
    src = SimulatedSource(MuSimulator(seed=3), realtime=False, chunk_size=7)  # 7: never a whole record
    pipe, rec = build_session(src, proto, "P11", tmp_path, seconds_scale=0.053, lsl=False)
    pipe.run()
    finish_session(pipe, rec)
    j, raw = _bdf_matches_journal(rec.folder)
    texts = [e["text"] for e in j.events]
    assert texts[-1] == "session_end/schedule complete" and texts[-2].startswith("block_end")
    assert j.data.shape[1] % 25  # not whole 0.1-s records: the case that used to be padded
    start = json.loads((rec.folder / "start.json").read_text())["first_sample"]
    assert raw.info["meas_date"].replace(tzinfo=None).isoformat()[:19] == start[:19]  # the first sample's time


def test_bdf_holds_every_sample_and_the_reason_after_ctrl_c(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    exe = Path(sys.executable).parent / "neurofeed"
    proc = subprocess.Popen([str(exe), "session", "--board", "simulated", "--protocol", "demo", "--participant",
                             "P12", "--headless", "--out", str(tmp_path), "--no-lsl"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def on_disk():
        found = list(tmp_path.glob("P12/*/samples.f64"))
        return found[0].stat().st_size if found else 0

    try:
        wait_until(lambda: on_disk() >= 3 * 250 * 8 * 8 or proc.poll() is not None, what="3 s of samples on disk")
        assert proc.poll() is None, proc.communicate(timeout=5)
        proc.send_signal(sig.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err
    folder = next(tmp_path.glob("P12/*"))
    j, raw = _bdf_matches_journal(folder)
    texts = [e["text"] for e in j.events]
    end = texts.index("session_end/interrupted (Ctrl-C)")  # (a baseline cut short is summed up after it)
    assert texts[end - 1].startswith("block_end")


def test_two_sessions_started_in_the_same_second_get_two_folders(tmp_path, monkeypatch):
    planned = tmp_path / "P13" / "20260101-120000_demo"
    monkeypatch.setattr(writer, "session_folder", lambda root, participant, name: planned)
    proto = load_protocol(PROTOCOLS / "demo.toml")
    layouts = (["C3", "C4", "Cz", "FC3", "FC4", "CP3", "CP4", "Pz"], ["C3", "C4", "Cz", "Fz"])  # two rooms
    pipes = [build_session(SimulatedSource(MuSimulator(seed=k, ch_names=names), realtime=False), proto, "P13",
                           tmp_path, seconds_scale=0.03, lsl=False)
             for k, names in enumerate(layouts)]
    threads = [threading.Thread(target=p.run) for p, _ in pipes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folders = [finish_session(p, r)["recording"] for p, r in pipes]
    assert folders == [str(planned), str(planned) + "-002"]
    for folder, names in zip(folders, layouts):
        j = read_journal(folder)
        assert j.ch_names == names and j.data.shape[1] == j.chunk_sizes.sum() > 0  # one session's samples only
        assert (Path(folder) / "samples.f64").stat().st_size == 8 * len(names) * j.data.shape[1]
        assert sum(e["text"].startswith("session_end/") for e in j.events) == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_collision_suffixes_sort_in_the_order_the_folders_were_made(tmp_path):
    planned = tmp_path / "P13" / "20260101-120000_demo"
    made = [writer.create_session_folder(planned) for _ in range(12)]  # 12 sessions in one second
    assert [p.name for p in made[:3]] == ["20260101-120000_demo", "20260101-120000_demo-002",
                                          "20260101-120000_demo-003"]
    assert len(set(made)) == 12 and all(p.is_dir() for p in made)
    assert sorted(p.name for p in planned.parent.iterdir()) == [p.name for p in made]  # -010 after -009


def test_kill_between_header_and_first_chunk_leaves_a_folder_recover_reads(tmp_path):
    code = ("import os, signal, sys; from neurofeed.recording import writer; "
            "writer.Recorder.on_chunk = lambda self, chunk: os.kill(os.getpid(), signal.SIGKILL); "
            "from neurofeed.cli import main; sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "session", "--board", "simulated", "--protocol", "demo",
                        "--participant", "P14", "--headless", "--out", str(tmp_path), "--no-lsl"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == -sig.SIGKILL, r.stderr
    folder = next(tmp_path.glob("P14/*"))
    assert json.loads((folder / "header.json").read_text())["participant"] == "P14"
    assert not list(folder.glob("*.tmp"))
    r = run_cli("recover", folder)
    assert r.returncode == 0, r.stderr
    raw = mne.io.read_raw_bdf(next(folder.glob("*.bdf")), preload=True, verbose="error")
    descs = list(raw.annotations.description)
    assert "recovered: recording ended unexpectedly before its first sample" in descs
    assert "padding (not recorded)" in descs  # the one record a BDF needs is marked as not recorded


class _Timed:
    """Times every call the acquisition thread makes into the recorder: its CPU time
    (``time.thread_time``: the work the call does, which a busy machine's scheduling does not
    inflate) and its wall time."""

    def __init__(self, rec):
        self.rec, self.cpu_s, self.wall_s = rec, [], []

    def _timed(self, fn, arg):
        t, c = time.perf_counter(), time.thread_time()
        fn(arg)
        self.cpu_s.append(time.thread_time() - c)
        self.wall_s.append(time.perf_counter() - t)

    def on_chunk(self, chunk):
        self._timed(self.rec.on_chunk, chunk)

    def on_state(self, st):
        self._timed(self.rec.on_state, st)

    def on_events(self, events):
        self._timed(self.rec.on_events, events)


class _WatchedLock:
    """The recorder's mode lock, watched: counts the acquisition thread's acquisitions that found
    the lock held while the writer was inside a disk write (a producer waiting on the disk)."""

    def __init__(self, lock, in_write: threading.Event, producer: set):
        self.lock, self.in_write, self.producer = lock, in_write, producer
        self.producer_takes = self.waits_on_disk = 0

    def __enter__(self):
        if threading.get_ident() in self.producer:
            self.producer_takes += 1
            if not self.lock.acquire(blocking=False):
                self.waits_on_disk += self.in_write.is_set()
                self.lock.acquire()
        else:
            self.lock.acquire()
        return self

    def __exit__(self, *exc):
        self.lock.release()


def test_a_disk_that_stalls_10_s_never_stalls_acquisition(tmp_path, monkeypatch, caplog):
    """The writer's disk stalls for 10 s (a slowed writer): the acquisition thread's calls into the
    recorder do no more work than usual (CPU time under 10 ms each), never wait on a lock the
    writer holds across a write, and never wait for the disk (wall time far below the stall; the
    old bounded queue blocked them for seconds); the console says the disk fell behind, the queue
    spills past its memory cap, and the journal has every sample."""
    stalled, in_write = threading.Event(), threading.Event()
    slow_write = writer.Recorder._write

    def write(self, name, payload):
        in_write.set()
        try:
            if not stalled.is_set():
                stalled.set()
                time.sleep(10.0)  # a USB stick, a virus scanner, a network home folder
            slow_write(self, name, payload)
        finally:
            in_write.clear()

    monkeypatch.setattr(writer.Recorder, "_write", write)
    monkeypatch.setattr(writer, "MEMORY_CAP_BYTES", 256_000)  # small: the stall also reaches the spill file
    proto = load_protocol(PROTOCOLS / "demo.toml")
    # a 12-s session in real time, Cyton-like 1-sample chunks: the stall falls in its middle
    src = SimulatedSource(MuSimulator(seed=8), realtime=True, chunk_size=1)
    pipe, rec = build_session(src, proto, "P15", tmp_path, seconds_scale=0.2, lsl=False)
    timed = _Timed(rec)
    pipe.sinks = [timed if s is rec else s for s in pipe.sinks]
    producer = set()
    sent = []

    def keep(self, c):
        producer.add(threading.get_ident())
        sent.append(c.data.copy())

    pipe.sinks.insert(0, type("Keep", (), {"on_chunk": keep})())
    rec._mode_lock = watched = _WatchedLock(rec._mode_lock, in_write, producer)
    with caplog.at_level(logging.WARNING, logger="neurofeed.recording.writer"):
        pipe.start()
        wait_until(stalled.is_set, what="the writer's first write")
        pipe.wait(300)
        pipe.stop()
        summary = finish_session(pipe, rec)
    assert pipe.error is None and rec.error is None
    cpu, wall = np.array(timed.cpu_s), np.array(timed.wall_s)
    assert cpu.size > 5000  # every sample, state and event of the session went through the recorder
    # no call does more than append (CPU time; the spill's first call starts a thread) ...
    assert cpu.max() < 0.010, np.sort(cpu)[-5:]
    # ... none waited for the disk (it stalled 10 s; the old bounded queue held the thread ~6-9 s) ...
    assert wall.max() < 1.0, np.sort(wall)[-5:]
    # ... nor on a lock the writer held across a write (the queue spilled: the lock was in use)
    assert watched.producer_takes > 100 and watched.waits_on_disk == 0
    assert any("the disk has fallen behind" in r.getMessage() for r in caplog.records)
    assert summary["recording_behind_events"] >= 1 and summary["recording_dropped_samples"] == 0
    j = read_journal(rec.folder)
    assert any(e["text"].startswith("recording_behind/") for e in j.recorder_events)
    assert not any(e["text"].startswith("recording_") for e in j.events)  # the session's events stay replayable
    assert np.array_equal(j.data, np.concatenate(sent, axis=1), equal_nan=True)  # every sample, in order
    assert not (rec.folder / "spill.bin").exists()  # read back and removed at close
    _bdf_matches_journal(rec.folder)


_SPILLING_SESSION = """
import sys, time
import numpy as np
from neurofeed.recording import writer
from neurofeed.hardware.sources import simulated

writer.MEMORY_CAP_BYTES = 20_000  # a small memory: the queue spills within a second
write, next_spilled, generate = writer.Recorder._write, writer.Recorder._next_spilled, simulated.MuSimulator.generate


def slow_write(self, name, payload):  # a disk slower than the session: the queue spills and stays spilled
    time.sleep(0.02)
    write(self, name, payload)


def spilled(self, reader):  # the writer reads spill.bin only once the queue in memory is empty
    item = next_spilled(self, reader)
    self.n_spilled = getattr(self, "n_spilled", 0) + (item is not None)
    if self.n_spilled == 30:
        (self.folder / "reading-spill").write_text("")
    return item


def numbered(self, n):  # channel 0 carries each sample's index: every sample, in order, is checkable
    first = self.n_done
    data, truth = generate(self, n)
    data[0] = (first + np.arange(n)) % 2000 - 1000.0
    return data, truth


writer.Recorder._write, writer.Recorder._next_spilled, simulated.MuSimulator.generate = slow_write, spilled, numbered
from neurofeed.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_while_the_queue_is_spilled_then_recover_restores_every_sample_in_order(tmp_path):
    """The disk falls behind, the queue spills to spill.bin, the session is killed (-9): `recover`
    puts the spilled chunks into the journal at their places, so the BDF has every sample the
    session queued up to the kill, in order (those the writer had not taken are in spill.bin)."""
    proc = subprocess.Popen([sys.executable, "-c", _SPILLING_SESSION, "session", "--board", "simulated",
                             "--protocol", "demo", "--participant", "P18", "--headless", "--out", str(tmp_path),
                             "--no-lsl"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: list(tmp_path.glob("P18/*/reading-spill")) or proc.poll() is not None,
                   timeout_s=120, what="the writer reading the spill file")
        assert proc.poll() is None, proc.communicate(timeout=5)
        proc.send_signal(sig.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    folder = next(tmp_path.glob("P18/*"))
    n_ch = len(json.loads((folder / "header.json").read_text())["ch_names"])
    on_disk = (folder / "samples.f64").stat().st_size // (8 * n_ch)
    spilled = (folder / "spill.bin").stat().st_size
    assert spilled > 0
    r = run_cli("recover", folder)
    assert r.returncode == 0, r.stderr
    j = read_journal(folder)
    n = j.data.shape[1]
    assert n > on_disk + 25  # the spilled chunks are back (more than a tenth of a second of them)
    np.testing.assert_array_equal(j.data[0], np.arange(n) % 2000 - 1000.0)  # every sample, in order, once
    assert np.isfinite(j.data).all() and len(j.gaps) == 0
    np.testing.assert_allclose(np.diff(j.timestamps), 1 / 250, atol=1e-6)  # their timestamps alike
    assert j.chunk_sizes.sum() == n
    assert not (folder / "spill.bin").exists()
    raw = mne.io.read_raw_bdf(next(folder.glob("*.bdf")), preload=True, verbose="error")
    assert raw.n_times == n
    np.testing.assert_allclose(raw.get_data(picks=[j.ch_names[0]])[0] * 1e6, j.data[0], atol=STEP_UV)


def test_spilled_samples_after_a_queue_lost_in_memory_keep_their_place(tmp_path, monkeypatch):
    """Killed with part of the queue still in memory (lost) and the rest in spill.bin: the
    recovered journal has the lost stretch as gap samples (annotated ``recording_lost/<n>``) and
    every spilled sample at its own sample index."""
    import shutil

    from neurofeed.core.chunk import Chunk
    from neurofeed.recording.writer import recover

    release = threading.Event()
    write = writer.Recorder._write

    def stalled(self, name, payload):  # the disk never takes anything until the test is done
        release.wait()
        write(self, name, payload)

    monkeypatch.setattr(writer.Recorder, "_write", stalled)
    monkeypatch.setattr(writer, "MEMORY_CAP_BYTES", 4_000)
    header = {"ch_names": ["C3", "C4"], "sfreq": 250.0, "targets": ["C3", "C4"], "range_uv": 4000.0,
              "participant": "P19"}
    rec = writer.Recorder(tmp_path / "P19" / "s", header)
    try:
        for k in range(100):
            x = np.vstack([np.arange(5 * k, 5 * k + 5), np.zeros(5)]).astype(float)
            rec.on_chunk(Chunk(x, np.arange(5 * k, 5 * k + 5) / 250, 1))
        wait_until(lambda: (rec.folder / "spill.bin").exists() and not rec._overflow, what="the spill written")
        # what a kill -9 now leaves: the files as they are on disk (the queue in memory is gone)
        killed = tmp_path / "killed"
        shutil.copytree(rec.folder, killed)
    finally:
        release.set()
        rec.close(finalize=False)
    recover(killed)
    j = read_journal(killed)
    assert j.data.shape[1] == 500 and j.chunk_sizes.sum() == 500
    lost = ~np.isfinite(j.data[0])
    first, length = j.gaps[0]
    assert len(j.gaps) == 1 and first == 0 and length == lost.sum() > 0 and lost[:length].all()
    np.testing.assert_array_equal(j.data[0, length:], np.arange(length, 500))  # each spilled sample in its place
    assert f"recording_lost/{length}" in [e["text"] for e in j.recorder_events]
    raw = mne.io.read_raw_bdf(next(killed.glob("*.bdf")), preload=True, verbose="error")
    assert raw.n_times == 500 and "gap" in raw.annotations.description


class _SignalLostSource(SimulatedSource):
    """Delivers 1 s of samples, then nothing (an electrode cable pulled, a headset out of range)."""

    def read(self):
        if self.n_sent >= 250:
            return None
        c = super().read()
        if c is not None:
            self.n_sent += c.n_samples
        return c

    n_sent = 0


def test_a_session_whose_signal_is_lost_ends_at_the_protocols_limit(tmp_path):
    proto = load_protocol(PROTOCOLS / "demo.toml")
    scale = 0.02
    limit_s = proto.protocol.max_duration_min * 60 * scale  # 6 s of wall-clock time
    src = _SignalLostSource(MuSimulator(seed=9), realtime=True)
    pipe, rec = build_session(src, proto, "P16", tmp_path, seconds_scale=scale, lsl=False)
    t0 = time.monotonic()
    pipe.start()
    wait_until(lambda: not pipe.running, timeout_s=120, what="the session to end by itself")
    took = time.monotonic() - t0
    pipe.stop()
    summary = finish_session(pipe, rec)
    assert took >= limit_s  # not before the limit
    assert pipe.engine.finished and summary["bdf"]
    j, _ = _bdf_matches_journal(rec.folder)
    texts = [e["text"] for e in j.events]
    assert "signal_lost" in texts and texts[-1] == "session_end/session limit reached (wall clock)"
    assert j.data.shape[1] == 250


class _NoMemoryChunk:
    """A chunk whose samples cannot be copied: memory is exhausted."""

    n_samples, timestamps, arrival_ns, age_s, gap = 25, None, 0, float("nan"), None

    @property
    def data(self):
        raise MemoryError


def test_memory_exhausted_is_the_only_loss_and_it_is_counted_and_annotated(tmp_path):
    from neurofeed.core.chunk import Chunk

    header = {"ch_names": ["C3", "C4"], "sfreq": 250.0, "targets": ["C3", "C4"], "range_uv": 4000.0,
              "participant": "P17"}
    rec = writer.Recorder(tmp_path / "P17" / "s", header)
    x = np.random.default_rng(0).normal(0, 10, (2, 50))
    rec.on_chunk(Chunk(x[:, :25], np.arange(25) / 250, 1))
    rec.on_chunk(_NoMemoryChunk())
    rec.on_chunk(Chunk(x[:, 25:], np.arange(50, 75) / 250, 1))
    summary = {}
    bdf = rec.close(summary)
    assert summary["recording_dropped_samples"] == 25
    j = read_journal(rec.folder)
    assert j.data.shape[1] == 75 and np.isnan(j.data[:, 25:50]).all()  # the timeline keeps its length
    assert np.array_equal(j.data[:, :25], x[:, :25]) and np.array_equal(j.data[:, 50:], x[:, 25:])
    assert np.array_equal(j.gaps, [[25, 25]])
    raw = mne.io.read_raw_bdf(bdf, verbose="error")
    ann = {(d, round(o * 250), round(du * 250)) for d, o, du in
           zip(raw.annotations.description, raw.annotations.onset, raw.annotations.duration)}
    assert ("recording_dropped/25", 25, 25) in ann and ("gap", 25, 25) in ann


def test_spilling_and_catching_up_again_and_again_keeps_every_sample_in_order(tmp_path, monkeypatch, caplog):
    """A disk that keeps stalling briefly: the queue goes over its (tiny) cap into spill.bin and back
    to memory many times; the journal still holds every sample, in order."""
    from neurofeed.core.chunk import Chunk

    monkeypatch.setattr(writer, "MEMORY_CAP_BYTES", 8_000)  # ~20 one-sample chunks
    slow_write, count = writer.Recorder._write, [0]

    def write(self, name, payload):
        count[0] += 1
        if count[0] % 1500 == 0:  # 12 stalls of 0.1 s, each long enough to pass the cap
            time.sleep(0.1)
        slow_write(self, name, payload)

    monkeypatch.setattr(writer.Recorder, "_write", write)
    header = {"ch_names": ["C3", "C4", "Cz"], "sfreq": 250.0, "targets": ["C3", "C4"], "range_uv": 4000.0,
              "participant": "P18"}
    rec = writer.Recorder(tmp_path / "P18" / "s", header)
    x = np.arange(3 * 6000, dtype=float).reshape(6000, 3).T  # every value tells its place
    with caplog.at_level(logging.WARNING, logger="neurofeed.recording.writer"):
        for k in range(6000):
            rec.on_chunk(Chunk(x[:, k:k + 1], np.array([k / 250]), 1))
            if k % 5 == 0:
                time.sleep(0.002)
        rec.close(finalize=False)
    spills = sum("spilling to" in r.getMessage() for r in caplog.records)
    assert spills >= 2, spills  # it went to the spill file, back to memory, and to the spill file again
    j = read_journal(rec.folder)
    assert np.array_equal(j.data, x) and np.array_equal(j.timestamps, np.arange(6000) / 250)
    assert np.array_equal(j.chunk_sizes, np.ones(6000))
