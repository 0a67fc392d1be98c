"""In-session controls: each goes through Pipeline.control, takes effect at a chunk boundary, is
journaled there, and the session replays bit-exact from its journal."""

import json

import numpy as np
import pytest

from neurofeed.analysis.replay import replay_journal
from neurofeed.core.errors import NeurofeedError
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session
from neurofeed.protocol.schema import parse_protocol

PROTO = """
[protocol]
name = "controls"
max_duration_min = 10
rest_every_min = 10

[signal]
targets = ["C3", "C4"]
reference = "laplacian"

[threshold]
mode = "{mode}"
baseline_reward_pct = 50
target_reward_pct = 50
hold_s = 0.1

[[blocks]]
label = "baseline"
kind = "exploration"
duration_s = 10

[[blocks]]
label = "train"
kind = "integration"
duration_s = 16
feedback = true

[[blocks]]
label = "rest"
kind = "consolidation"
duration_s = 4
"""


class Trigger:
    """A sink that calls ``pipe.control(*call)`` once the session passes ``at_s`` (in the
    acquisition thread: the control is queued and applied before the next chunk)."""

    def __init__(self, pipe, plan):
        self.pipe, self.plan, self.states = pipe, sorted(plan, key=lambda p: p[0]), []

    def on_state(self, st):
        self.states.append(st)
        while self.plan and st.t_s >= self.plan[0][0]:
            _, *call = self.plan.pop(0)
            self.pipe.control(*call)


def run_session(tmp_path, plan, mode="percentile", seed=3, extra_sinks=(), refit_in_worker=None):
    proto = parse_protocol(PROTO.format(mode=mode))
    sim = MuSimulator(script=SimulationScript.alternating(60, period_s=4, suppress_s=2, factor=0.5, start_s=11),
                      seed=seed)
    src = SimulatedSource(sim, realtime=False, duration_s=40)
    pipe, rec = build_session(src, proto, "P01", out_root=tmp_path, lsl=False)
    trig = Trigger(pipe, plan)
    pipe.sinks.insert(0, trig)
    pipe.sinks[1:1] = list(extra_sinks)
    if refit_in_worker is not None:  # the simulated source runs faster than real time: the Pipeline refits at once
        pipe.processor.refit_in_worker = refit_in_worker
    pipe.run()
    assert pipe.error is None, pipe.error
    rec.close(pipe.processor.summary(), finalize=False)
    return pipe, trig.states, rec.folder


def events_of(folder):
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def assert_replays_bit_exact(folder, live_states):
    res = replay_journal(folder, keep_states=True)
    assert res["feedback"].shape == res["recorded"].shape and len(res["feedback"]) == len(live_states)
    np.testing.assert_array_equal(res["feedback"], res["recorded"])
    fields = ("sample_index", "si_bar", "threshold", "reward", "feedback", "feedback_on", "block_label",
              "paused", "schedule_paused", "threshold_locked", "block_left_s")
    for a, b in zip(live_states, res["states"]):
        for f in fields:
            va, vb = getattr(a, f), getattr(b, f)
            assert va == vb or (va != va and vb != vb), (f, a.sample_index, va, vb)
    live = [(e["sample"], e["text"]) for e in events_of(folder)]
    again = [(e.sample, e.text) for e in res["events"]]
    assert again == live
    return res


def applied_at(folder, text):
    return [e["sample"] for e in events_of(folder) if e["text"] == text]


def test_pause_and_resume(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(14.0, "pause", True), (18.0, "pause", False)])
    (p,), (r,) = applied_at(folder, "pause"), applied_at(folder, "resume")
    assert 14.0 * 250 <= p < 14.1 * 250 and 18.0 * 250 <= r < 18.1 * 250
    during = [s for s in states if p < s.sample_index <= r]
    assert during and not any(s.feedback_on or s.reward for s in during)
    assert all(s.paused for s in during)
    assert any(s.reward for s in states if s.sample_index > r)  # feedback comes back
    assert_replays_bit_exact(folder, states)


def test_pause_schedule_freezes_the_block_clock(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(12.0, "pause_schedule", True), (15.0, "pause_schedule", False)])
    (p,), (r,) = applied_at(folder, "schedule_pause"), applied_at(folder, "schedule_resume")
    frozen = [s for s in states if p < s.sample_index <= r]
    assert {round(s.block_left_s, 6) for s in frozen} == {round(frozen[0].block_left_s, 6)}
    assert not any(s.feedback_on for s in frozen) and all(s.schedule_paused for s in frozen)
    train = [b for b in pipe.engine.blocks if b.label == "train"][0]
    assert train.end_sample - train.start_sample == 16 * 250 + (r - p)  # the block lasted the pause longer
    assert_replays_bit_exact(folder, states)


def test_marker_and_note(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(12.0, "marker", "looked away"), (13.0, "note", "calm, a/b")])
    assert applied_at(folder, "marker/looked away") and applied_at(folder, "note/calm, a/b")
    assert_replays_bit_exact(folder, states)


def test_lock_threshold_stops_the_adaptive_threshold(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(14.0, "lock_threshold", True), (20.0, "lock_threshold", False)],
                                       mode="adaptive")
    (lk,), (ul,) = applied_at(folder, "threshold_lock"), applied_at(folder, "threshold_unlock")
    locked = {s.threshold for s in states if lk < s.sample_index <= ul}
    assert len(locked) == 1 and all(s.threshold_locked for s in states if lk < s.sample_index <= ul)
    moving = {s.threshold for s in states if s.block_label == "train" and s.sample_index > ul}
    assert len(moving) > 10  # it moves again once unlocked
    assert_replays_bit_exact(folder, states)


def test_nudge_threshold_moves_the_current_direction(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(13.0, "nudge_threshold", 0.1), (15.0, "nudge_threshold", -0.25)])
    (a,) = applied_at(folder, "threshold_nudge/0.1")
    before = [s.threshold for s in states if s.sample_index <= a][-1]
    after = [s.threshold for s in states if s.sample_index > a][0]
    assert after == pytest.approx(before + 0.1, abs=1e-12)
    assert pipe.engine.thresholds["up"] == pytest.approx(before + 0.1 - 0.25, abs=1e-12)
    assert_replays_bit_exact(folder, states)


def test_skip_and_extend_block(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(5.0, "extend_block", 2.0), (14.0, "skip_block")])
    base, train = pipe.engine.blocks[0], pipe.engine.blocks[1]
    assert base.end_sample == 12 * 250  # 10 s + 2 s
    (sk,) = applied_at(folder, "skip_block")
    assert train.end_sample == sk and pipe.engine.blocks[2].label == "rest" and pipe.engine.blocks[2].start_sample == sk
    assert_replays_bit_exact(folder, states)


def test_mark_bad_channel_recomputes_the_spatial_filter_and_si_goes_on(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(13.0, "mark_bad_channel", "Cz"),
                                                  (13.5, "mark_bad_channel", "C3"),  # a target: refused
                                                  (16.0, "mark_bad_channel", "Cz", False)])
    (bad,), (good,) = applied_at(folder, "bad_channel/Cz"), applied_at(folder, "good_channel/Cz")
    assert any(e["text"].startswith("control_refused/mark_bad_channel") for e in events_of(folder))
    si = np.array([s.si_combined for s in states if bad < s.sample_index <= good])
    assert si.size and np.isfinite(si).all()
    assert pipe.processor.bad_channels == set()
    assert_replays_bit_exact(folder, states)


def test_every_control_in_one_session_replays_bit_exact(tmp_path):
    plan = [(11.0, "nudge_threshold", 0.05), (12.0, "lock_threshold", True), (12.5, "marker", "m"),
            (13.0, "pause", True), (13.5, "pause", False), (14.0, "pause_schedule", True),
            (14.5, "pause_schedule", False), (15.0, "mark_bad_channel", "Cz"), (16.0, "note", "n"),
            (17.0, "lock_threshold", False), (18.0, "extend_block", 1.5), (22.0, "skip_block")]
    pipe, states, folder = run_session(tmp_path, plan, mode="adaptive")
    texts = [e["text"] for e in events_of(folder)]
    for t in ("threshold_nudge/0.05", "threshold_lock", "marker/m", "pause", "resume", "schedule_pause",
              "schedule_resume", "bad_channel/Cz", "note/n", "threshold_unlock", "extend_block/1.5", "skip_block"):
        assert t in texts
    assert_replays_bit_exact(folder, states)


def test_control_rejects_unknown_names_and_wrong_arguments():
    proto = parse_protocol(PROTO.format(mode="percentile"))
    src = SimulatedSource(MuSimulator(), realtime=False)
    pipe, _ = build_session(src, proto, "P01", record=False, lsl=False)
    with pytest.raises(NeurofeedError, match="Unknown control 'jump'"):
        pipe.control("jump")
    with pytest.raises(NeurofeedError, match="'extend_block' takes 1 argument"):
        pipe.control("extend_block")


def test_controls_from_another_thread_apply_between_chunks_and_replay(tmp_path):
    import threading
    import time

    proto = parse_protocol(PROTO.format(mode="adaptive"))
    src = SimulatedSource(MuSimulator(seed=4), realtime=True, duration_s=60)
    pipe, rec = build_session(src, proto, "P01", out_root=tmp_path, lsl=False)
    states, seen = [], threading.Event()

    class Sink:
        def on_state(self, st):
            states.append(st)

        def on_events(self, events):
            if any(e.text == "note/from the console" for e in events):
                seen.set()

    def wait_for(pred, timeout_s=20.0):  # bounded: the pipeline gets there by itself
        end = time.monotonic() + timeout_s
        while not pred():
            assert time.monotonic() < end and pipe.error is None, "the pipeline did not get there"
            time.sleep(0.005)

    pipe.sinks.insert(0, Sink())
    pipe.start()
    try:
        wait_for(lambda: pipe.latest.sample_index >= 250)  # the session is running
        pipe.control("note", "from the console")  # this (main) thread, as the console's key handler
        pipe.control("pause", True)
        assert seen.wait(20.0)
        wait_for(lambda: pipe.latest.paused)
        pipe.control("pause", False)
        wait_for(lambda: not pipe.latest.paused)
    finally:
        pipe.stop()
    rec.close(pipe.processor.summary(), finalize=False)
    ev = events_of(rec.folder)
    note = [e["sample"] for e in ev if e["text"] == "note/from the console"]
    pause = [e["sample"] for e in ev if e["text"] == "pause"]
    assert len(note) == len(pause) == 1 and note[0] <= pause[0]
    assert note[0] % 10 == 0 and pause[0] % 10 == 0  # applied at chunk boundaries (10-sample chunks)
    assert any(e["text"].startswith("stop/") for e in ev)
    assert_replays_bit_exact(rec.folder, states)


def test_set_delay_redesigns_the_estimator_and_replays_bit_exact(tmp_path):
    pipe, states, folder = run_session(tmp_path, [(13.0, "set_delay", 0.02), (16.0, "set_delay", 7.0)])
    (at,) = applied_at(folder, "set_delay/0.02")
    assert pipe.processor.chain.delay_s == 0.02 and pipe.processor.chain.estimator.delay_s == 0.02
    assert any(e["text"].startswith("control_refused/set_delay/") for e in events_of(folder))  # 7 s: refused
    si = np.array([s.si_combined for s in states if s.sample_index > at])
    assert si.size and np.isfinite(si).all()  # no gap, no start-up transient to hold the feedback for
    assert_replays_bit_exact(folder, states)
