"""The views offscreen with pytest-qt, driven by a real simulated pipeline."""

import numpy as np
import pytest

from PySide6 import QtCore  # noqa: E402

from neurofeed.feedback.display import GENTLE, STANDARD, Views  # noqa: E402
from neurofeed.protocol.schema import load_protocol  # noqa: E402
from neurofeed.session import build_session, finish_session  # noqa: E402
from neurofeed.sources.simulated import MuSimulator, SimulatedSource, SimulationScript  # noqa: E402
from tests.conftest import PROTOCOLS  # noqa: E402


@pytest.fixture
def live(tmp_path, qtbot):
    made = []

    def make(name="demo", scale=0.2):
        proto = load_protocol(PROTOCOLS / f"{name}.toml")
        script = SimulationScript.alternating(120, period_s=2, suppress_s=1, factor=0.4, start_s=0.5)
        src = SimulatedSource(MuSimulator(script=script, seed=4), realtime=True)
        pipe, rec = build_session(src, proto, "P03", tmp_path, seconds_scale=scale, lsl=False)
        views = Views(pipe)
        qtbot.addWidget(views.participant)
        qtbot.addWidget(views.console)
        pipe.start()
        views.start()
        made.append((pipe, rec, views))
        return pipe, rec, views

    yield make
    for pipe, rec, views in made:
        views.timer.stop()
        views.spectra.stop()
        pipe.stop()
        rec.close(finalize=False)


def test_views_build_and_follow_the_pipeline(live, qtbot):
    pipe, _, views = live()
    qtbot.waitUntil(lambda: pipe.engine.baseline_uv2 is not None, timeout=15000)
    qtbot.waitUntil(lambda: views.stats.n > 20, timeout=5000)
    seen = set()
    for _ in range(40):
        qtbot.wait(50)
        seen.add(round(views.participant.thermo.shown, 3))
    assert len(seen) > 5  # the bar moves with the feedback
    # the console shows the block at its frame rate: wait for a frame painted after the block was read
    qtbot.waitUntil(lambda: pipe.latest.block_label in views.console.info.text(), timeout=30000)
    x, y = views.console.si_item.getData()
    assert x is not None and len(x) > 10 and np.isfinite(y).all()
    assert views.spectra.freqs.size > 0  # spectra come from their own thread
    assert views.stats.summary()["p99"] < 100  # frames are painted (the benchmark measures the figure)
    assert "nan" not in views.console.info.text().lower()  # never a NaN on screen


def test_keys_pause_marker_and_escape(live, qtbot):
    pipe, rec, views = live()
    qtbot.waitUntil(lambda: pipe.published > 10, timeout=5000)
    qtbot.keyClick(views.console, QtCore.Qt.Key_Space)
    qtbot.waitUntil(lambda: pipe.engine.paused, timeout=2000)
    qtbot.waitUntil(lambda: pipe.latest.paused, timeout=2000)
    qtbot.waitUntil(lambda: views.participant.cue.text() == "Paused", timeout=2000)
    qtbot.keyClick(views.participant, QtCore.Qt.Key_Space)
    qtbot.waitUntil(lambda: not pipe.engine.paused, timeout=2000)
    qtbot.keyClick(views.console, QtCore.Qt.Key_M)
    qtbot.waitUntil(lambda: any("marker/operator" in line for line in (rec.folder / "events.jsonl").read_text().splitlines()),
                    timeout=3000)
    views.confirm_end = lambda: False  # "No": nothing happens
    qtbot.keyClick(views.console, QtCore.Qt.Key_Escape)
    qtbot.wait(200)
    assert pipe.running
    views.confirm_end = lambda: True
    qtbot.keyClick(views.console, QtCore.Qt.Key_Escape)
    qtbot.waitUntil(lambda: not pipe.running, timeout=3000)
    assert pipe.engine.finished
    summary = finish_session(pipe, rec)
    assert summary["bdf"] and (rec.folder / "sidecar.json").exists()
    texts = (rec.folder / "events.jsonl").read_text()
    assert '"pause"' in texts and '"resume"' in texts and "ended by operator (Esc)" in texts


def test_closing_the_window_stops_the_pipeline(live, qtbot):
    pipe, rec, views = live()
    qtbot.waitUntil(lambda: pipe.published > 5, timeout=5000)
    views.participant.close()
    qtbot.waitUntil(lambda: not pipe.running, timeout=3000)
    assert not views.console.isVisible()
    summary = finish_session(pipe, rec)
    assert summary["bdf"]


def test_low_stimulation_style_is_applied(live, qtbot):
    pipe, _, views = live("autism-gentle-regulation", scale=0.01)
    assert views.low_stimulation
    assert views.participant.thermo.colours == GENTLE
    qtbot.waitUntil(lambda: pipe.engine.baseline_uv2 is not None and pipe.latest.feedback_on, timeout=20000)
    # no flashing: a reward switching on and off moves the colour and the bar by small steps
    import copy

    views.timer.stop()
    th = views.participant.thermo
    st = copy.copy(pipe.latest)
    st.feedback_on, st.signal_lost, st.paused = True, False, False
    for k in range(30):
        st.reward, st.feedback = bool(k % 2), float(k % 2)
        before = (th.mix, th.shown)
        views.participant.show_state(st)
        assert abs(th.mix - before[0]) <= 0.05 + 1e-9 and abs(th.shown - before[1]) <= 0.08 + 1e-9


def test_standard_style_for_other_protocols(live, qtbot):
    import copy

    pipe, _, views = live("empathy-uptraining", scale=0.01)
    assert not views.low_stimulation and views.participant.thermo.colours == STANDARD
    qtbot.waitUntil(lambda: pipe.published > 3, timeout=5000)
    views.timer.stop()
    st = copy.copy(pipe.latest)
    st.feedback_on, st.reward, st.signal_lost, st.paused = True, True, False, False
    views.participant.show_state(st)
    assert views.participant.thermo.mix == 1.0  # the standard view shows reward at once


def test_replay_with_display_follows_the_file_annotations(qtbot):
    from neurofeed.replay import replay_with_display
    from tests.conftest import DATA

    from neurofeed.sources.edf import FileSource

    n_file = FileSource(DATA / "S001R03.edf").data.shape[1]
    summary = replay_with_display(DATA / "S001R03.edf", baseline_label="T0", speed="max")
    labels = {b["label"] for b in summary["blocks"]}
    assert labels == {"T0", "T1", "T2"}
    assert summary["baseline_uv2"] is not None
    assert summary["samples"] == n_file  # the whole file was played
