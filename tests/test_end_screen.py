"""The session's end through the real views (offscreen): the participant sees a calm "Session
complete" and no bar, the console the summary and the recording's folder until it is closed (or
its time runs out); a block without the bar (the demo's transfer block) shows no bar frame and no
threshold at all."""

import numpy as np
import pytest
from PySide6 import QtCore

from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol
from neurofeed.ui.display import Views
from tests.conftest import PROTOCOLS


def _colours(widget):
    """The distinct colours of what the widget paints (a few thousand sampled pixels)."""
    img = widget.grab().toImage()
    return {img.pixel(x, y) for x in range(0, img.width(), 4) for y in range(0, img.height(), 4)}


@pytest.fixture
def demo(tmp_path, qtbot):
    made = []

    def make(close_after_s=None):
        proto = load_protocol(PROTOCOLS / "demo.toml")
        script = SimulationScript.alternating(120, period_s=2, suppress_s=1, factor=0.4, start_s=0.5)
        src = SimulatedSource(MuSimulator(script=script, seed=4), realtime=True)
        pipe, rec = build_session(src, proto, "P07", tmp_path, seconds_scale=0.2, lsl=False)  # 12 s
        views = Views(pipe, tone=None)
        qtbot.addWidget(views.participant)
        qtbot.addWidget(views.console)
        views.finish = lambda: finish_session(pipe, rec)
        views.close_after_s = close_after_s
        finished = []
        views.on_finished = lambda: finished.append(1)
        pipe.start()
        views.start()
        made.append((pipe, views))
        return pipe, rec, views, finished

    yield make
    for pipe, views in made:
        views.timer.stop()
        views.spectra.stop()
        pipe.stop()


def test_the_demo_ends_on_a_session_complete_screen_and_the_console_summary(demo, qtbot):
    pipe, rec, views, finished = demo()
    th = views.participant.thermo
    # a feedback block: the bar's frame and threshold line are drawn
    # (bounds only stop a hung test: on a busy machine frames come late, so wait on what is painted)
    qtbot.waitUntil(lambda: pipe.latest.feedback_on and pipe.latest.block_label == "observe-hands"
                    and not th.bar_hidden, timeout=120_000)
    assert len(_colours(th)) > 2
    # the transfer block ("without the bar"): nothing but the background where the bar was
    qtbot.waitUntil(lambda: pipe.latest.block_label == "transfer" and th.bar_hidden, timeout=120_000)
    assert len(_colours(th)) == 1
    # the natural end: the end screen stays (no time-out asked) until the operator closes it
    qtbot.waitUntil(lambda: views.ended, timeout=120_000)
    assert "Session complete" in views.participant.cue.text() and th.bar_hidden
    assert "score" not in views.participant.cue.text().lower() and "%" not in views.participant.cue.text()
    assert views.participant.stimulus.player.model is None  # the stimulus has stopped
    qtbot.wait(300)
    assert not finished and views.console.isVisible() and views.participant.isVisible()
    panel = views.console.end_panel
    assert panel.isVisible() and not views.console.traces.isVisible()
    text = panel.toPlainText()
    assert "Session summary" in text and "reward rate" in text and "observe-hands" in text
    assert str(rec.folder) in text and f"neurofeed report {rec.folder}" in text
    assert "Session complete" in views.console.info.text()
    assert views.summary["bdf"] and (rec.folder / "sidecar.json").exists()  # the recording is closed
    assert not pipe.running and "session_end/" in (rec.folder / "events.jsonl").read_text()
    # the console never grows for the summary: its long lines wrap
    assert views.console.width() <= views.layout["console"][2]
    qtbot.keyClick(views.console, QtCore.Qt.Key_Escape)
    assert finished == [1] and not views.console.isVisible() and not views.participant.isVisible()


def test_the_end_screen_closes_by_itself_when_asked(demo, qtbot):
    pipe, rec, views, finished = demo(close_after_s=0.5)
    qtbot.waitUntil(lambda: views.ended, timeout=120_000)
    assert "closes by itself in 0.5 s" in views.console.end_panel.toPlainText()
    qtbot.waitUntil(lambda: finished == [1], timeout=60_000)
    assert not views.console.isVisible() and np.isfinite(views.summary["samples"])
