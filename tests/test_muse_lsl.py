"""A Muse over LSL, end to end (issue 24): the emulated muselsl/BlueMuse stream (real EEG from
tests/data resampled to 256 Hz, the AUX electrode from C3) read by a real pylsl inlet on
loopback through the live pipeline; gaps found from the timestamps, the rate measured on the
source clock and a 0.5 % drift resampled away."""

import json
import os
import threading
import time

import numpy as np
import pytest

from neurofeed.analysis.replay import replay_journal
from neurofeed.devtools.muse_emulator import MUSE_CHUNK, MUSE_LABELS, MuseLSLEmulator, muse_signal
from neurofeed.hardware.sources.lsl import LSLSource, StampTimeline
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import parse_protocol
from neurofeed.recording.journal import read_journal
from tests.conftest import DATA, PROTOCOLS, run_cli, wait_until

EDF = DATA / "S001R03.edf"
SCALE = 0.15  # muse-c3-gentle's 600 s in 90 s (a 13.5-s baseline: shorter ones calibrate the blink gate on too little); real time (LSL)
TARGET_PCT = 50.0


class Arrivals:
    """Wraps a source; records (arrival_ns, first_sample, n_samples) of every chunk it hands over."""

    def __init__(self, source):
        self.source = source
        self.chunks = []

    def __getattr__(self, name):
        return getattr(self.source, name)

    def read(self):
        c = self.source.read()
        if c is not None:
            self.chunks.append((c.arrival_ns, c.first_sample, c.n_samples))
        return c


def adaptive_muse_protocol():
    """muse-c3-gentle with the adaptive reward rule (the text the session stores, so replay uses it too)."""
    text = (PROTOCOLS / "muse-c3-gentle.toml").read_text()
    old = 'mode = "percentile"\nbaseline_reward_pct = 50'
    assert old in text
    text = text.replace(old, f'mode = "adaptive"\ntarget_reward_pct = {TARGET_PCT:g}')
    return parse_protocol(text, "muse-c3-gentle (adaptive)")


def _run(tmp_path, tag, **emu_kw):
    name = f"Muse-T{os.getpid() % 10000:04d}{tag}"
    x, _ = muse_signal(EDF)
    proto = adaptive_muse_protocol()
    with MuseLSLEmulator(x, name=name, seed=7, **emu_kw) as emu:
        # the Muse sites as streamed; the AUX electrode sits at C3 (--channel-map 'Right AUX=C3')
        src = Arrivals(LSLSource(name=name, line_hz=60.0, channel_map={"Right AUX": "C3"}))
        pipe, rec = build_session(src, proto, "P01", out_root=tmp_path / tag, seconds_scale=SCALE, lsl=False)
        pipe.start()
        wait_until(lambda: pipe.engine.finished or pipe.error is not None, 300, f"the {tag} Muse session's end")
        pipe.stop("session complete")
        summary = finish_session(pipe, rec)
    assert pipe.error is None, pipe.error
    return {"emu": emu, "src": src, "pipe": pipe, "rec": rec, "summary": summary, "proto": proto}


@pytest.fixture(scope="module")
def muse_runs(tmp_path_factory):
    """Both sessions at once (each in real time): clean, and with 1 % of chunks lost and 0.5 % drift."""
    tmp = tmp_path_factory.mktemp("muse")
    out, errors = {}, []

    def go(tag, **kw):
        try:
            out[tag] = _run(tmp, tag, **kw)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            errors.append(err)

    threads = [threading.Thread(target=go, args=("clean",)),
               threading.Thread(target=go, args=("lossy",), kwargs=dict(lose_chunks_pct=1.0, drift_pct=0.5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def _wall_vs_session(run):
    """(session seconds, wall seconds): samples handed over at the nominal rate, against the
    host time from the first chunk's first sample to the last chunk's arrival."""
    ch = run["src"].chunks
    (a0, f0, n0), (a1, f1, n1) = ch[0], ch[-1]
    assert f0 == 0 and all(b[1] == a[1] + a[2] for a, b in zip(ch, ch[1:]))  # a contiguous timeline
    sfreq = run["src"].sfreq
    return (f1 + n1) / sfreq, (a1 - a0) / 1e9 + n0 / sfreq


def _assert_session(run):
    s, proto, pipe = run["summary"], run["proto"], run["pipe"]
    assert pipe.engine.finished
    assert pipe.processor.reference_used == "bipolar"  # C3 against TP9, as the protocol says for a Muse
    assert run["src"].ch_names == ["TP9", "AF7", "AF8", "TP10", "C3"]
    assert s["baseline_uv2"] is not None and s["baseline_uv2"]["C3"] > 0
    assert [b["label"] for b in s["blocks"]] == [b.label for b in proto.schedule()]
    assert s["feedback_s"] > 0.9 * 2 * 120 * SCALE
    assert abs(100 * s["reward_rate"] - TARGET_PCT) <= 10, s["reward_rate"]
    # the BDF is written, holds the journal's samples, and the session replays bit-exact
    folder = run["rec"].folder
    assert s["bdf"] and os.path.getsize(s["bdf"]) > 0
    from neurofeed.hardware.sources.edf import read_raw

    j = read_journal(folder)
    raw = read_raw(s["bdf"])
    bdf = raw.get_data(picks=list(j.ch_names)) * 1e6
    n = j.data.shape[1]
    # exactly the journal's samples (at 256 Hz the recorder ends the journal on a whole 4-sample record)
    assert bdf.shape[1] == n and j.chunk_sizes.sum() == n
    assert "padding (not recorded)" not in list(raw.annotations.description)
    ok = np.isfinite(j.data)
    np.testing.assert_allclose(bdf[:, :n][ok], j.data[ok], atol=0.1)  # 24-bit quantisation
    res = replay_journal(folder)
    assert res["feedback"].shape == res["recorded"].shape
    np.testing.assert_array_equal(res["feedback"], res["recorded"])
    return json.loads((folder / "sidecar.json").read_text()) if (folder / "sidecar.json").exists() else None


def test_the_muse_protocol_runs_on_the_emulated_muse_lsl_stream(muse_runs):
    run = muse_runs["clean"]
    _assert_session(run)
    src = run["src"]
    assert src.dropped_samples == 0 and src.describe()["rate_correction"] is None
    assert abs(src.describe()["drift_pct"]) < 0.01  # the rate measured on the source clock: 256 Hz
    session_s, wall_s = _wall_vs_session(run)
    assert abs(session_s / wall_s - 1) < 0.01, (session_s, wall_s)
    s = run["summary"]
    print(f"clean Muse session: {session_s:.3f} s of samples in {wall_s:.3f} s wall; gated {s['gated_s']:.2f} of "
          f"{s['feedback_s']:.2f} s feedback; reward {100 * s['reward_rate']:.1f} %")


def test_lost_chunks_and_clock_drift_are_counted_and_corrected(muse_runs):
    run = muse_runs["lossy"]
    _assert_session(run)
    src, emu, s = run["src"], run["emu"], run["summary"]
    tl = src.timeline
    lost = emu.lost_between(tl.first_ts, tl.last_ts)
    assert lost >= 5 * MUSE_CHUNK and lost % MUSE_CHUNK == 0
    assert src.dropped_samples == s["dropped_samples"] == lost  # every lost sample, exactly
    d = s["source"]
    assert d["drift_pct"] == pytest.approx(0.5, abs=0.01) and d["measured_sfreq"] == pytest.approx(257.28, abs=0.03)
    assert d["rate_correction"]["method"] == "resample"
    session_s, wall_s = _wall_vs_session(run)
    assert abs(session_s / wall_s - 1) < 0.01, (session_s, wall_s)
    # resampled from the 5th second on: the rest of the 0.5 % is gone (uncorrected: +0.5 %)
    assert abs(session_s / wall_s - 1) < 0.002, (session_s, wall_s)
    print(f"lossy Muse session: {session_s:.3f} s of samples in {wall_s:.3f} s wall; {lost} samples lost; "
          f"{d['measured_sfreq']:.3f} Hz measured; gated {s['gated_s']:.2f} of {s['feedback_s']:.2f} s feedback; "
          f"reward {100 * s['reward_rate']:.1f} %")
    sidecar = json.loads((run["rec"].folder / "sidecar.json").read_text())
    assert sidecar["source"]["rate_correction"]["method"] == "resample"
    assert sidecar["source"]["dropped_samples"] == lost


def test_lost_chunks_gate_at_most_15_percent_of_feedback(muse_runs):
    """1 % of packets lost: each is filled and held only while the fill measurably disturbs the
    0.3-s-memory design (muse-c3-gentle's [signal] memory_s), so the feedback is withheld at
    most 15 % of its time (2-s design: 17-18 % here, 12.7-27.2 % offline; benchmarks/gaps_muse.py)."""
    run = muse_runs["lossy"]
    s = run["summary"]
    assert run["pipe"].processor.chain.estimator.memory_limit_s == 0.3  # the design the figure is for
    assert s["dropped_samples"] > 0
    assert s["gated_s"] <= 0.15 * s["feedback_s"], (s["gated_s"], s["feedback_s"])


def _push(outlet, x, ts):
    for i in range(0, x.shape[1], MUSE_CHUNK):
        outlet.push_chunk(np.ascontiguousarray(x[:, i:i + MUSE_CHUNK].T), ts[i:i + MUSE_CHUNK].tolist())


def _read_all(src, n_out, timeout_s=60.0):
    chunks, deadline = [], time.monotonic() + timeout_s
    while sum(c.n_samples for c in chunks) < n_out:
        assert time.monotonic() < deadline, f"only {[(c.first_sample, c.n_samples) for c in chunks]} arrived"
        c = src.read()
        if c is not None:
            chunks.append(c)
    return chunks


def test_gaps_from_timestamps_are_nan_samples_at_the_right_place():
    """Through a real inlet (stamped samples pushed faster than real time: the timeline follows the
    timestamps, not the arrival): a chunk lost after sample 120 and 3 samples after 300 become
    NaN gap samples there, counted; the timeline keeps its length."""
    import pylsl

    from tests.conftest import lsl_eeg_outlet

    name = f"muse-gaps-{os.getpid()}"
    outlet = lsl_eeg_outlet(name, labels=MUSE_LABELS, sfreq=256)
    src = LSLSource(name=name)
    src.start()
    wait_until(lambda: outlet.have_consumers(), 10, "the inlet")
    k = np.arange(600)
    keep = ~(((k >= 120) & (k < 132)) | ((k >= 300) & (k < 303)))
    x = np.vstack([k.astype(float)] * 5)
    ts = pylsl.local_clock() + k / 256.0
    _push(outlet, x[:, keep], ts[keep])
    chunks = _read_all(src, 600)
    src.stop()
    data = np.concatenate([c.data for c in chunks], axis=1)
    gap = np.concatenate([c.gap if c.gap is not None else np.zeros(c.n_samples, bool) for c in chunks])
    assert data.shape[1] == 600 and src.dropped_samples == 15
    np.testing.assert_array_equal(gap, ~keep)
    np.testing.assert_array_equal(data[0, keep], k[keep])
    assert np.isnan(data[:, ~keep]).all()


def test_a_drifting_rate_is_measured_and_the_timeline_resampled_to_the_nominal_rate():
    """Offline on the timeline itself: 60 s of a device 0.5 % fast (257.28 samples per second of
    source time) become 256 per second once the rate is judged (after 5 s), and a 10-Hz rhythm
    passes the linear interpolation within 1 % of its amplitude; -0.05 % drift is left alone."""
    fs_dev = 256 * 1.005
    k = np.arange(60 * 257)
    t = 1000.0 + k / fs_dev
    x = np.sin(2 * np.pi * 10 * t)[None, :]
    tl = StampTimeline(256.0)
    out = [tl.push(x[:, i:i + 12], t[i:i + 12]) for i in range(0, k.size, 12)]
    y = np.concatenate([o[0] for o in out], axis=1)[0]
    ty = np.concatenate([o[1] for o in out])
    assert tl.measured_sfreq == pytest.approx(fs_dev, rel=1e-6) and tl.dropped_samples == 0
    fixed = tl.corrected_from
    assert fixed is not None and 5 * fs_dev - 12 <= fixed <= 5 * fs_dev  # judged on the chunk reaching 5 s
    # after the correction: one sample per 1/256 s of the source clock
    np.testing.assert_allclose(np.diff(ty[fixed + 1:]), 1 / 256.0, rtol=1e-6)
    assert np.max(np.abs(y - np.sin(2 * np.pi * 10 * ty))) < 0.01
    small = StampTimeline(256.0)
    for i in range(0, k.size, 12):
        small.push(x[:, i:i + 12], 1000.0 + k[i:i + 12] / (256 * 0.9995))
    assert small.corrected_from is None and small.drift_pct == pytest.approx(-0.05, abs=1e-4)


def test_emulate_muse_lsl_publishes_the_muse_layout(tmp_path):
    """The command's stream: name, type, 5 labelled channels in µV, 256 Hz, 12-sample chunks with
    per-sample timestamps, the AUX carrying the file's C3."""
    import pylsl

    name = f"Muse-C{os.getpid() % 10000:04d}"
    done = {}
    t = threading.Thread(target=lambda: done.setdefault("r", run_cli("emulate", "muse-lsl", "--file", EDF,
                                                                       "--seconds", "3", "--lsl-name", name)))
    t.start()
    info = pylsl.resolve_byprop("name", name, 1, 20)[0]
    inlet = pylsl.StreamInlet(info)
    full = inlet.info(timeout=10)
    assert (full.type(), full.channel_count(), full.nominal_srate()) == ("EEG", 5, 256.0)
    ch, labels, units = full.desc().child("channels").child("channel"), [], []
    for _ in range(5):
        labels.append(ch.child_value("label"))
        units.append(ch.child_value("unit"))
        ch = ch.next_sibling()
    assert labels == list(MUSE_LABELS) and set(units) == {"microvolts"}
    samples, stamps = [], []
    deadline = time.monotonic() + 30
    while len(samples) < 120 and time.monotonic() < deadline:
        s, ts = inlet.pull_chunk(timeout=0.0)
        samples += s
        stamps += ts
        time.sleep(0.01)
    t.join()
    assert done["r"].returncode == 0, done["r"].stderr
    assert len(samples) >= 120
    np.testing.assert_allclose(np.diff(stamps), 1 / 256.0, rtol=1e-4)  # per-sample timestamps
    x, sites = muse_signal(EDF)
    assert sites == ["T9", "AF7", "AF8", "T10", "C3"]
    got = np.asarray(samples, dtype=float).T
    # the stream is a contiguous stretch of the file's signal (float32)
    first = int(np.argmin(np.abs(x[4] - got[4, 0]) + np.abs(x[0] - got[0, 0])))
    np.testing.assert_allclose(got, x[:, first:first + got.shape[1]], rtol=1e-6, atol=1e-3)


def test_emulate_muse_lsl_without_a_file_is_one_line():
    r = run_cli("emulate", "muse-lsl")
    assert r.returncode == 2 and "--file" in r.stderr and "Traceback" not in r.stderr


def test_a_silence_longer_than_half_a_second_is_a_break_not_a_gap():
    """A stream that stops for 2 s and resumes (a reconnecting streamer) gets no 512 invented
    samples: the pipeline reports the silence as "signal lost"; a 0.2-s loss is a gap."""
    tl = StampTimeline(256.0)
    k = np.arange(2048)
    t = 50.0 + k / 256.0
    t[1024:] += 2.0  # 2 s of silence
    t[1536:] += 51 / 256.0  # then 51 samples lost (0.2 s)
    x = np.ones((1, k.size))
    n = sum(tl.push(x[:, i:i + 12], t[i:i + 12])[0].shape[1] for i in range(0, k.size, 12))
    assert tl.breaks == 1 and tl.dropped_samples == 51 and n == 2048 + 51
    assert tl.measured_sfreq == pytest.approx(256.0, rel=1e-9)  # fitted afresh after the break
    back = StampTimeline(256.0)  # a restarted streamer whose clock starts over: a break too
    for i in range(0, 1020, 12):  # before the 2-s silence
        back.push(x[:, i:i + 12], (t[i:i + 12] if i < 512 else t[i:i + 12] - 100.0))
    assert back.breaks == 1 and back.dropped_samples == 0
    assert back.measured_sfreq == pytest.approx(256.0, rel=1e-9)
