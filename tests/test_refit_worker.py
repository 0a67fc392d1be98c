"""The baseline's refit runs off the real-time path (issue 19): the live loop keeps stepping on
the current chain while a worker refits a copy, switches at a chunk boundary it journals, and
the session replays bit-exact, switching at the same sample. The refit is held back with an
event here (never a wall-clock ceiling): the steps during it must not wait for it."""

import threading

import numpy as np
import pytest

from neurofeed.devtools.cyton_emulator import edf_signal, montage_names
from neurofeed.live.processor import Processor
from neurofeed.protocol.schema import load_protocol
from tests.conftest import DATA
from tests.test_controls import applied_at, assert_replays_bit_exact, run_session


@pytest.fixture
def held_fit(monkeypatch):
    """Processor._fit_plan blocked until ``release`` is set; ``started`` is set when it blocks."""
    started, release = threading.Event(), threading.Event()
    original = Processor._fit_plan

    def slow(self, chain, x):
        started.set()
        release.wait(300)  # the test releases it; the timeout only keeps a broken test from hanging
        return original(self, chain, x)

    monkeypatch.setattr(Processor, "_fit_plan", slow)
    return started, release


def _steps(proc, x, step=1):
    out = []
    for s in range(0, x.shape[1], step):
        out.append(proc.step(x[:, s:s + step]))
    return out


def test_steps_go_on_while_the_worker_refits_and_the_switch_continues_the_sync_estimator(held_fit):
    started, release = held_fit
    names = montage_names("cyton", "default")
    x = edf_signal(DATA / "S001R01.edf", names, 250.0)[:, :25 * 250]
    proto = load_protocol("demo")  # a 15-s baseline, then feedback
    base_end = 15 * 250
    sync = Processor(proto, 250.0, names, line_hz=60.0)
    live = Processor(proto, 250.0, names, line_hz=60.0)
    live.refit_in_worker = True
    release.set()  # the synchronous refit runs unhindered, inside its step
    p_sync = np.concatenate([st.power_uv2[:, None] for st in _steps(sync, x)], axis=1)
    release.clear()
    started.clear()

    states = _steps(live, x[:, :base_end + 250])  # the baseline, then 1 s of feedback in 1-sample chunks
    # the refit cannot finish before the release: 250 steps went on without it
    assert live.refit_pending and not live.refit_ready() and not release.is_set()
    assert started.wait(300)  # the worker got as far as the held fit (in its own time)
    assert not any(st.baseline_ready for st in states)
    release.set()
    live._job.wait()  # the worker finishes (no clock involved)
    assert live.refit_ready()
    live.control("apply_refit")  # what the Pipeline does between two chunks
    assert [e.text for e in live.engine.events if e.text.startswith("refit_applied")] == ["refit_applied/baseline"]
    rest = _steps(live, x[:, base_end + 250:])
    assert all(st.baseline_ready for st in rest)
    np.testing.assert_array_equal(live.engine.baseline_uv2, sync.engine.baseline_uv2)
    # the refitted estimator caught up on the second since the baseline: its power is the power
    # the synchronous refit gives from there on
    p_live = np.concatenate([st.power_uv2[:, None] for st in rest], axis=1)
    np.testing.assert_allclose(p_live, p_sync[:, base_end + 250:], rtol=1e-9)


def test_a_session_with_the_worker_refit_replays_bit_exact(tmp_path, held_fit):
    started, release = held_fit
    seen = []

    class Release:
        """Lets the refit finish 2 s into the feedback block (the baseline ends at 10 s)."""

        def on_state(self, st):
            seen.append((st.t_s, started.is_set(), release.is_set(), st.baseline_ready))
            if st.t_s >= 12.0:
                release.set()

    pipe, states, folder = run_session(tmp_path, [], extra_sinks=[Release()], refit_in_worker=True)
    during = [s for s in seen if 10.1 < s[0] < 12.0]
    # published while the refit could not have finished (it waits for the release at 12 s)
    assert len(during) >= 40 and not any(released or ready for _, _, released, ready in during)
    assert started.is_set()
    (switch,) = applied_at(folder, "refit_applied/baseline")
    assert switch >= 12 * 250
    assert all(st.baseline_ready for st in states if st.sample_index > switch)
    assert_replays_bit_exact(folder, states)


def test_set_delay_redesigns_in_the_worker_and_replays_bit_exact(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(14.0, "set_delay", 0.02)], refit_in_worker=True)
    (asked,) = applied_at(folder, "set_delay/0.02")
    (switch,) = applied_at(folder, "refit_applied/set_delay")
    assert asked <= switch  # the acquisition went on while the new taps were fitted
    assert pipe.processor.chain.delay_s == 0.02 and pipe.processor.delay_history[-1] == (switch, 0.02)
    assert applied_at(folder, "refit_applied/baseline")  # the baseline's refit went through the worker too
    assert_replays_bit_exact(folder, states)


def test_the_bdf_of_a_worker_refit_session_replays_causally_with_the_same_switch(tmp_path, held_fit):
    from neurofeed.analysis.replay import replay_file
    from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
    from neurofeed.live.session import build_session, finish_session
    from neurofeed.recording.journal import read_journal

    started, release = held_fit
    proto = load_protocol("demo")  # baseline 15 s x 0.3 = 4.5 s

    class Release:
        """1.5 s into the first feedback block, let the refit finish and wait for it here (the
        simulated source runs faster than real time: it would otherwise end the session first)."""

        def on_state(self, st):
            if st.t_s >= 6.0 and not release.is_set():
                release.set()
                job = pipe.processor._job
                assert job is not None and job.done.wait(300)

    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60), seed=5), realtime=False)
    pipe, rec = build_session(src, proto, "P09", tmp_path, seconds_scale=0.3, lsl=False)
    pipe.processor.refit_in_worker = True  # as from a real-time source
    pipe.sinks.insert(0, Release())
    pipe.run()
    finish_session(pipe, rec)
    live = read_journal(rec.folder)
    (switch,) = [e["sample"] for e in live.events if e["text"] == "refit_applied/baseline"]
    assert 6.0 * 250 <= switch <= 6.2 * 250
    res = replay_file(next(rec.folder.glob("*.bdf")), proto, mode="causal")
    cols = live.columns
    at = {int(r[0]): i for i, r in enumerate(live.feedback)}
    pairs = [(at[int(r[0])], k) for k, r in enumerate(res["feedback"]) if int(r[0]) in at]
    a = live.feedback[[i for i, _ in pairs]]
    b = res["feedback"][[k for _, k in pairs]]
    c = cols.index("si_combined")
    assert np.array_equal(np.isnan(a[:, c]), np.isnan(b[:, c]))  # SI starts at the switch in both
    assert np.nanmax(np.abs(a[:, c] - b[:, c])) < 0.01  # 24-bit quantisation is the only difference
