"""The reliability suite: lost signal and its return, bad samples, bad inputs, a one-hour soak."""

import threading
import time

import numpy as np
import pytest

from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.pipeline import SIGNAL_LOST_S
from neurofeed.live.processor import Processor
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol
from neurofeed.recording.journal import read_journal
from neurofeed.ui.terminal import format_state
from tests.conftest import PROTOCOLS, PollClock, lsl_eeg_outlet, run_cli, wait_for_signal_lost, wait_until


def test_lsl_stream_that_stops_and_returns(tmp_path):
    from neurofeed.hardware.sources.lsl import LSLSource

    outlet = lsl_eeg_outlet("nf-rel-eeg")
    pushing = threading.Event()
    done = threading.Event()
    pushed = [0]
    rng = np.random.default_rng(0)

    import pylsl

    t0 = pylsl.local_clock()

    def push():
        while not done.is_set():
            if pushing.is_set():
                # stamped per sample at the nominal rate (the LSL source finds gaps in the timestamps)
                outlet.push_chunk((rng.standard_normal((5, 3)) * 10).tolist(),
                                  [t0 + (pushed[0] + i) / 250.0 for i in range(5)])
                pushed[0] += 5
            time.sleep(0.02)

    th = threading.Thread(target=push, daemon=True)
    th.start()
    proto = load_protocol(PROTOCOLS / "demo.toml")
    proto.signal.reference = "raw"
    clock = PollClock(LSLSource(name="nf-rel-eeg", timeout_s=30))
    pipe, rec = build_session(clock, proto, "P21", tmp_path, seconds_scale=1.0, lsl=False)
    pipe.sinks.append(clock)
    pipe.start()
    try:
        assert outlet.wait_for_consumers(30.0)  # the inlet is open: from now on nothing pushed is lost
        pushing.set()
        wait_until(lambda: pipe.published > 20, what="the first updates")
        pushing.clear()
        wait_for_signal_lost(pipe)
        wait_until(lambda: clock.lost_ns, what="'signal lost' published")
        clock.check_signal_lost(SIGNAL_LOST_S)  # declared by the first poll >= 0.5 s after the last samples
        assert pipe.latest.signal_lost and not pipe.latest.reward
        n_lost = pipe.published
        pushing.set()  # the data returns: the session resumes
        wait_until(lambda: pipe.published > n_lost + 10, what="updates after the data returned")
        assert not pipe.latest.signal_lost and pipe.lost_events == 1
    finally:
        pushing.clear()
        done.set()
        th.join()
        # everything pushed reaches the pipeline (an event: the count, not a sleep)
        wait_until(lambda: pipe.ring.n_written >= pushed[0], what="the last pushed samples")
        pipe.stop()
        finish_session(pipe, rec)
    j = read_journal(rec.folder)
    texts = [e["text"] for e in j.events]
    assert "signal_lost" in texts and "signal_restored" in texts
    assert j.data.shape[1] == pipe.ring.n_written == pushed[0]  # the recording holds everything that was pushed


def _run_with_bad_samples():
    proto = load_protocol(PROTOCOLS / "demo.toml")
    sim = MuSimulator(script=SimulationScript(), seed=3)
    proc = Processor(proto, 250, sim.ch_names, 4000.0, 0.5)
    c3, c4, f8 = (sim.ch_names.index(c) for c in ("C3", "C4", "F8"))
    states = []
    for i in range(int(40 * 25)):
        data, _ = sim.generate(10)
        t = i * 0.04
        if 12 < t < 13:
            data[c3, 2:8] = np.nan  # longer than a filled gap (MAX_FILL_SAMPLES): held and gated
            data[c4, 9] = np.inf  # open at the chunk's end: held too
        if 15 < t < 16:
            data[c4] = 4000.0  # railed at the amplifier's range
        if 18 < t < 21:
            data[f8] = 0.0  # a flat channel
            data[c3] = 0.0
        states.append(proc.step(data))
    return proc, states


def test_nan_inf_railed_and_flat_are_gated_and_never_shown_as_nan():
    proc, states = _run_with_bad_samples()
    reasons = {r for s in states for r in s.gate_reasons}
    assert {"nan", "railed", "flat"} <= reasons
    t = np.array([s.t_s for s in states])
    gated = np.array([s.gated for s in states])
    assert gated[(t > 12.1) & (t < 13)].all() and gated[(t > 15.1) & (t < 16)].all()
    assert not any(s.reward for s in states if s.gated)
    after = [s for s in states if s.baseline_ready]
    assert after and all(np.isfinite(s.feedback) for s in states)
    assert all(np.isfinite(s.si).all() and np.isfinite(s.si_combined) for s in after)
    assert all(np.isfinite(s.power_uv2).all() for s in states)  # filters never poisoned by NaN
    for s in states:
        assert "nan" not in format_state(s).lower().replace("gate:nan", "")


def _edf(tmp_path, name, sfreq=160.0, names=("C3", "C4", "FC3", "C5", "C1", "CP3", "FC4", "C6", "C2", "CP4"), seconds=30):
    from edfio import Edf, EdfAnnotation, EdfSignal

    rng = np.random.default_rng(0)
    sigs = [EdfSignal(rng.standard_normal(int(seconds * sfreq)) * 10, sfreq, label=n, physical_dimension="uV",
                      physical_range=(-500, 500)) for n in names]
    path = tmp_path / name
    Edf(sigs, annotations=[EdfAnnotation(0, 10, "T0"), EdfAnnotation(10, 10, "T1")]).write(path)
    return path


def _bad_inputs(tmp_path):
    good = _edf(tmp_path, "good.edf")
    truncated = tmp_path / "truncated.edf"
    truncated.write_bytes(good.read_bytes()[:600])
    corrupt = tmp_path / "corrupt.edf"
    corrupt.write_bytes(b"this is not an EDF header at all" * 20)
    empty = tmp_path / "empty.bdf"
    empty.write_bytes(b"")
    slow = _edf(tmp_path, "slow.edf", sfreq=20.0)
    no_c3 = _edf(tmp_path, "no_c3.edf", names=("Fz", "Pz", "Oz"))
    bad_proto = tmp_path / "bad.toml"
    bad_proto.write_text((PROTOCOLS / "demo.toml").read_text().replace("direction = \"up\"", "direction = \"sideways\""))
    demo = PROTOCOLS / "demo.toml"
    return [
        (["replay", truncated, "--baseline-label", "T0"], "truncated.edf"),
        (["replay", corrupt, "--baseline-label", "T0"], "corrupt.edf: cannot read"),
        (["replay", empty], "empty.bdf: the file is empty"),
        (["replay", tmp_path / "missing.edf"], "missing.edf: no such file"),
        (["replay", slow, "--baseline-label", "T0", "--protocol", demo], "Nyquist"),
        (["replay", no_c3, "--baseline-label", "T0", "--protocol", demo], "C3"),
        (["replay", good, "--baseline-label", "T9", "--protocol", demo], "no annotated segments labelled 'T9'"),
        (["replay", good, "--baseline-label", "T0", "--protocol", bad_proto], "[protocol] direction is 'sideways'"),
        (["session", "--protocol", bad_proto, "--participant", "P1", "--headless"], "direction is 'sideways'"),
        (["session", "--protocol", tmp_path / "nope.toml", "--participant", "P1", "--headless"], "no such protocol file"),
        (["session", "--board", "file", "--file", corrupt, "--protocol", demo, "--participant", "P1", "--headless"],
         "corrupt.edf: cannot read"),
        (["protocols", "check", bad_proto], "sideways"),
        (["recover", tmp_path], "not a neurofeed session folder"),
    ]


def test_bad_inputs_give_one_clear_line(tmp_path, capsys):
    from neurofeed.cli import main

    cases = _bad_inputs(tmp_path)
    for args, needle in cases:  # in-process: the same main() the console script calls
        args = [*map(str, args), *(["--out", str(tmp_path / "out")] if args[0] in ("replay", "session") else [])]
        rc = main(args)
        err = capsys.readouterr().err.strip()
        assert rc == 2, (args, err)
        assert needle in err, (args, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1, (args, err)
    # and once through the installed console script, as a user runs it
    args, needle = cases[1]
    r = run_cli(*args, "--out", tmp_path / "out", console=True)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.soak
def test_one_hour_soak_keeps_memory_flat_and_latency_steady(tmp_path):
    import psutil

    proto = load_protocol(PROTOCOLS / "action-observation-research.toml")
    scale = 3600.0 / proto.total_duration_s()
    script = SimulationScript.alternating(3700, emg_every_s=60, blink_every_s=20)
    src = SimulatedSource(MuSimulator(script=script, seed=9), realtime=False, duration_s=3600)
    pipe, rec = build_session(src, proto, "SOAK", tmp_path, seconds_scale=scale, lsl=False)
    proc = psutil.Process()
    marks = []

    def watch():
        while pipe.running:
            marks.append((pipe.engine.n, pipe.engine.baseline_uv2 is not None, proc.memory_info().rss))
            time.sleep(0.25)

    pipe.start()
    threading.Thread(target=watch, daemon=True).start()
    pipe.wait(600)
    pipe.stop()
    finish_session(pipe, rec)
    assert pipe.error is None
    assert pipe.engine.n >= 3599 * 250
    # steady state: from a minute after the baseline (whose one-off estimator fit allocates ~15 MB of
    # LAPACK work space that the C allocator keeps) to the end of the hour
    ready = next(n for n, ok, _ in marks if ok)
    warm = [rss for n, ok, rss in marks if n > ready + 60 * 250]
    assert pipe.engine.n - (ready + 60 * 250) > 2400 * 250  # at least 40 minutes of steady state measured
    growth_mb = (max(warm) - warm[0]) / 2 ** 20
    assert growth_mb <= 5.0, growth_mb
    lag = pipe.probe.compute_to_publish_ms[: pipe.probe.n]
    k = lag.size // 10
    assert np.median(lag[-k:]) <= np.median(lag[k:2 * k]) + 0.05  # no drift over the hour
