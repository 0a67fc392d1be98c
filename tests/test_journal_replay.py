"""Event-sourced journal: external-marker sessions (markers from a real pylsl outlet, stamped
blocks) and participant carry-over replay bit-exact from their journals."""

import json
import time

import numpy as np
import pytest

from neurofeed.analysis.replay import replay_journal
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session
from neurofeed.protocol.schema import parse_protocol
from tests.test_controls import PROTO, assert_replays_bit_exact, events_of

EXTERNAL = PROTO.format(mode="percentile") + '\n[markers]\nmode = "external"\nstream = "nf-test-journal-stim"\n'


def _wait(pred, timeout_s=20.0):
    """Wait for a condition the pipeline reaches by itself (bounded; never a fixed sleep as sync)."""
    end = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < end, "the pipeline did not get there"
        time.sleep(0.005)


def test_external_marker_session_replays_bit_exact_with_stamped_onsets(tmp_path):
    import pylsl

    from neurofeed.hardware.sources.lsl import MarkerInlet

    proto = parse_protocol(EXTERNAL)
    info = pylsl.StreamInfo("nf-test-journal-stim", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, "nf-j-1")
    outlet = pylsl.StreamOutlet(info)
    inlet = MarkerInlet("nf-test-journal-stim")
    inlet.inlet.open_stream(5.0)
    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60, start_s=3), seed=5), realtime=True)
    pipe, rec = build_session(src, proto, "P01", out_root=tmp_path, lsl=False, marker_inlet=inlet)
    first_ts = []
    states = []

    class Sink:
        def on_chunk(self, chunk):
            if not first_ts:
                first_ts.append(chunk.timestamps[0] - chunk.first_sample / src.sfreq)

        def on_state(self, st):
            states.append(st)

    pipe.sinks.insert(0, Sink())
    pipe.start()
    sent = []
    try:
        _wait(lambda: pipe.latest.sample_index >= 250)
        # each marker is stamped 0.3 s before it is pushed: its block must start at the stamp
        for label, until in (("baseline", 2.5), ("train", 1.5), ("end", 0.5), ("train", 0.5)):
            ts = pylsl.local_clock() - 0.3
            outlet.push_sample([label], ts)
            sent.append((label, ts))
            n0 = pipe.latest.sample_index
            _wait(lambda: pipe.latest.sample_index >= n0 + int(until * 250))
    finally:
        pipe.stop()
    assert pipe.error is None
    rec.close(pipe.processor.summary(), finalize=False)
    eng = pipe.engine
    assert [b.label for b in eng.blocks] == ["baseline", "train", "train"]
    assert eng.baseline_uv2 is not None and eng.blocks[1].feedback_samples > 0
    # onsets on the sample clock: the source's time of sample 0 against the LSL clock
    offset = time.time() - pylsl.local_clock()
    starts = [b.start_sample for b in eng.blocks]
    expected = [round((ts + offset - first_ts[0]) * 250) for label, ts in sent if label != "end"]
    assert np.abs(np.array(starts) - np.array(expected)).max() <= 5, (starts, expected)
    marks = [e for e in events_of(rec.folder) if e["text"].startswith("block_marker/")]
    assert len(marks) == 4 and all(e["sample"] >= int(e["text"].split("/")[1]) for e in marks)
    res = assert_replays_bit_exact(rec.folder, states)
    assert [b["label"] for b in res["summary"]["blocks"]] == ["baseline", "train", "train"]


CARRY = PROTO.format(mode="adaptive").replace('[threshold]', '[baseline]\ncarry = "last"\n\n[threshold]')


def _session(tmp_path, seed):
    proto = parse_protocol(CARRY)
    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60, start_s=11), seed=seed),
                          realtime=False, duration_s=40)
    pipe, rec = build_session(src, proto, "P07", out_root=tmp_path, lsl=False)
    states = []

    class Sink:
        def on_state(self, st):
            states.append(st)

    pipe.sinks.insert(0, Sink())
    pipe.run()
    assert pipe.error is None
    summary = pipe.processor.summary()
    rec.close(summary, finalize=False)
    return pipe, rec.folder, states, summary


def test_second_session_carries_the_first_sessions_baseline_and_thresholds(tmp_path, qtbot):
    p1, f1, _, s1 = _session(tmp_path, seed=1)
    assert s1["carried_from"] is None  # nothing to carry the first time
    p2, f2, states, s2 = _session(tmp_path, seed=2)
    assert s2["carried_from"] == str(f1)
    assert s2["baseline_uv2"] == s1["baseline_uv2"]
    first_train = next(s for s in states if s.block_label == "train")
    assert first_train.threshold == pytest.approx(s1["threshold_final"]["up"], abs=1e-12)
    assert all(s.baseline_ready for s in states)  # SI from the first sample, on the carried baseline
    # its own baseline block was still measured and recorded
    assert s2["baseline_measured_uv2"] is not None and s2["baseline_measured_uv2"] != s2["baseline_uv2"]
    evs = events_of(f2)
    texts = [e["text"] for e in evs]
    (carry,) = [e for e in evs if e["text"].startswith("carry/")]
    assert carry["sample"] == 0 and json.loads(carry["text"][len("carry/"):])["source"] == str(f1)
    assert any(t.startswith("baseline_measured/") for t in texts)
    assert json.loads((f2 / "sidecar.json").read_text())["carried_from"] == str(f1)
    from neurofeed.ui.display import Views  # the clinician console says so too

    views = Views(p2, tone=None)
    qtbot.addWidget(views.console)
    views.console.show_state(p2.latest)
    assert f"carried over from {f1.name}" in views.console.info.text()
    assert_replays_bit_exact(f2, states)
    # the carry-over is a journaled input: replay re-feeds it even under a protocol that would not carry
    res = replay_journal(f2, parse_protocol(CARRY.replace('carry = "last"', 'carry = "none"')))
    assert res["summary"]["carried_from"] == str(f1)  # the journaled input is re-fed whatever the protocol says


def test_a_60_hz_session_replays_with_its_own_mains_frequency(tmp_path):
    proto = parse_protocol(PROTO.format(mode="percentile"))
    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60, start_s=11), seed=4, line_hz=60.0),
                          realtime=False, duration_s=30)
    pipe, rec = build_session(src, proto, "P08", out_root=tmp_path, lsl=False, line_freq=60.0)
    pipe.run()
    rec.close(pipe.processor.summary(), finalize=False)
    assert json.loads((rec.folder / "header.json").read_text())["line_freq"] == 60.0
    res = replay_journal(rec.folder)
    np.testing.assert_array_equal(res["feedback"], res["recorded"])  # notched at 60 Hz, as live
