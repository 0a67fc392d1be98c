"""A whole recorded session driven through the real Qt views (offscreen): every console control
key and the point-light stimulus onsets end up in the BDF's annotations, and the session replays
bit-exact from its journal."""

import copy

import mne
import numpy as np
from PySide6 import QtCore

from neurofeed.analysis.replay import replay_journal
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol
from neurofeed.ui.display import Views

KEYS = [  # key, the event text it leaves in the recording
    (QtCore.Qt.Key_Space, "pause"), (QtCore.Qt.Key_Space, "resume"),
    (QtCore.Qt.Key_P, "schedule_pause"), (QtCore.Qt.Key_P, "schedule_resume"),
    (QtCore.Qt.Key_L, "threshold_lock"), (QtCore.Qt.Key_L, "threshold_unlock"),
    (QtCore.Qt.Key_Up, "threshold_nudge/"), (QtCore.Qt.Key_Down, "threshold_nudge/"),
    (QtCore.Qt.Key_E, "extend_block/"), (QtCore.Qt.Key_M, "marker/"),
    (QtCore.Qt.Key_B, "bad_channel/"), (QtCore.Qt.Key_B, "good_channel/"),
    (QtCore.Qt.Key_N, "note/"), (QtCore.Qt.Key_S, "skip_block"),
]


def _events(pipe):
    return [e.text for e in pipe.engine.events] if hasattr(pipe.engine, "events") else []


def test_every_console_control_and_stimulus_onset_is_recorded_and_replays(tmp_path, qtbot):
    proto = copy.deepcopy(load_protocol("demo"))
    for b in proto.blocks:
        if b.feedback:
            b.stimuli = "builtin:point-light-hands"
    script = SimulationScript.alternating(200, period_s=2, suppress_s=1, factor=0.4, start_s=0.5)
    src = SimulatedSource(MuSimulator(script=script, seed=8), realtime=True)
    pipe, rec = build_session(src, proto, "P05", tmp_path, seconds_scale=0.25, lsl=False)
    views = Views(pipe, tone=None)
    views.ask_note = lambda: "electrode check at C3"  # the note dialog, answered
    qtbot.addWidget(views.participant)
    qtbot.addWidget(views.console)
    pipe.start()
    views.start()
    try:
        # wait for feedback (and so a stimulus) before pressing the keys
        qtbot.waitUntil(lambda: pipe.latest.feedback_on, timeout=60_000)
        for key, _ in KEYS:
            n = pipe.engine.n
            qtbot.keyClick(views.console, key)
            try:
                qtbot.waitUntil(lambda: pipe.engine.n > n or pipe.engine.finished, timeout=10_000)  # a later chunk
            except Exception:
                raise AssertionError((key, pipe.error, pipe.running, pipe.engine.n))
            assert not pipe.engine.finished, (key, pipe.engine.summary()["blocks"][-1])
        qtbot.waitUntil(lambda: pipe.engine.finished, timeout=120_000)
    finally:
        views.timer.stop()
        views.spectra.stop()
        pipe.stop()
    finish_session(pipe, rec)
    raw = mne.io.read_raw_bdf(next(rec.folder.glob("*.bdf")), verbose="error")
    texts = list(raw.annotations.description)
    for _, text in KEYS:
        assert any(t.startswith(text) for t in texts), (text, texts)
    onsets = [t for t in texts if t.startswith("stimulus/point-light-hands")]
    assert onsets, texts
    res = replay_journal(rec.folder)
    assert res["feedback"].shape == res["recorded"].shape
    np.testing.assert_array_equal(res["feedback"], res["recorded"])  # bit-exact, every control included
    replayed = [e.text for e in res["events"]]
    for _, text in KEYS:
        assert any(t.startswith(text) for t in replayed), text
