"""LSL outlets (issue 22): clinician notes stay off the network unless --lsl-notes; feedback and
events carry the LSL time of the sample they describe, not the time they were pushed."""

import time

import numpy as np
import pytest

from neurofeed.core.events import Event
from neurofeed.core.state import FeedbackState
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource
from neurofeed.live.session import build_session
from neurofeed.protocol.schema import load_protocol
from tests.conftest import PROTOCOLS, pull_until, wait_until


def _inlet(name):
    import pylsl

    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", name, 1, 10.0)[0], max_buflen=3600)
    inlet.open_stream(30.0)
    return inlet


def _markers_of_a_session_with_a_note(tmp_path, name, **kw):
    src = SimulatedSource(MuSimulator(seed=4), realtime=False)
    pipe, _ = build_session(src, load_protocol(PROTOCOLS / "demo.toml"), "P01", tmp_path, seconds_scale=0.05,
                            record=False, lsl_name=name, **kw)
    out = next(s for s in pipe.sinks if hasattr(s, "markers"))
    inlet = _inlet(f"{name}-events")
    wait_until(out.markers.have_consumers, what="the marker inlet")
    pipe.control("note", "participant mentioned her divorce")  # typed by the clinician during the session
    pipe.run()
    return [m[0] for m in pull_until(inlet, lambda got: any(m[0].startswith("session_end") for m in got))]


def test_a_note_typed_during_a_session_does_not_appear_on_the_lsl_outlet_by_default(tmp_path):
    texts = _markers_of_a_session_with_a_note(tmp_path, "nf-notes-off")
    assert any(t.startswith("block_start/") for t in texts)  # the outlet did stream the session's events
    assert not any("divorce" in t or t.startswith("note/") for t in texts)


def test_lsl_notes_streams_them_when_asked(tmp_path):
    texts = _markers_of_a_session_with_a_note(tmp_path, "nf-notes-on", lsl_notes=True)
    assert "note/participant mentioned her divorce" in texts


def test_feedback_and_events_are_stamped_at_their_sample_not_at_push_time():
    import pylsl

    from neurofeed.live.lsl_outlets import LSLOutlets

    sfreq = 250.0
    out = LSLOutlets(["C3", "C4"], name="nf-stamp", source_id="nf-stamp", sfreq=sfreq)
    fb, ev = _inlet("nf-stamp-feedback"), _inlet("nf-stamp-events")
    wait_until(lambda: out.values.have_consumers() and out.markers.have_consumers(), what="the inlets")
    # the newest sample of this update was taken 0.8 s before it is pushed (a slow Bluetooth link)
    sample_ns = time.perf_counter_ns() - 800_000_000
    st = FeedbackState(targets=("C3", "C4"), sample_index=5001, sample_ns=sample_ns, si=np.zeros(2),
                       power_uv2=np.ones(2))
    pushed_at = pylsl.local_clock()
    out.on_state(st)
    # newest sample: index 5000; an event at sample 4750 is 250 samples (1 s) before it
    out.on_events([Event(4750, 4750 / sfreq, 0.0, "block_start/train/integration")])
    (_, ts_fb), = [(s, t) for s, t in _pull_ts(fb, 1)]
    (_, ts_ev), = [(s, t) for s, t in _pull_ts(ev, 1)]
    assert ts_fb == pytest.approx(out.lsl_time(sample_ns), abs=1e-6)
    assert pushed_at - ts_fb > 0.79  # the sample's time, not the push time
    assert ts_ev == pytest.approx(ts_fb - 1.0, abs=1e-6)


def _pull_ts(inlet, n):
    got = []
    wait_until(lambda: (got.extend(zip(*inlet.pull_chunk(timeout=0.0))) or len(got) >= n), what="the samples")
    return got
