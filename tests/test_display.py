"""The views with pytest-qt (offscreen), driven by a real simulated pipeline; the real X windows
under Xvfb with key presses (xdotool) where those are installed; the Qt platform check."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore  # noqa: E402

from neurofeed.dsp.accuracy import CURVE_DELAYS_S  # noqa: E402
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript  # noqa: E402
from neurofeed.live.session import build_session, finish_session  # noqa: E402
from neurofeed.protocol.schema import load_protocol  # noqa: E402
from neurofeed.ui.display import EXTEND_S, GENTLE, NUDGE_SI, STANDARD, Views, window_layout  # noqa: E402
from tests.conftest import PROTOCOLS, ROOT  # noqa: E402
from tests.display_helpers import ControlLog, install, start_xvfb  # noqa: E402


@pytest.fixture
def controls(monkeypatch):
    log = ControlLog()
    install(log, lambda obj, name, value: monkeypatch.setattr(obj, name, value, raising=False))
    return log


@pytest.fixture
def live(tmp_path, qtbot, controls):
    made = []

    def make(name="demo", scale=0.2, start=True):
        proto = load_protocol(PROTOCOLS / f"{name}.toml")
        script = SimulationScript.alternating(120, period_s=2, suppress_s=1, factor=0.4, start_s=0.5)
        src = SimulatedSource(MuSimulator(script=script, seed=4), realtime=True)
        pipe, rec = build_session(src, proto, "P03", tmp_path, seconds_scale=scale, lsl=False)
        views = Views(pipe, tone=None)
        qtbot.addWidget(views.participant)
        qtbot.addWidget(views.console)
        if start:
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
    assert x.max() <= 0 and x.min() >= -60  # relative time in a fixed window: the axis is not re-laid out
    tx, ty = views.console.trace_items[0].getData()
    assert tx is not None and len(tx) > 10 and np.isfinite(ty).all()
    qtbot.waitUntil(lambda: views.spectra.freqs.size > 0, timeout=3000)  # spectra from their own thread
    assert views.stats.summary()["frames"] > 5  # frames are painted and timed (benchmarks/display.py measures them)
    assert "nan" not in views.console.info.text().lower()  # never a NaN on screen


def test_hints_name_every_control_key(live):
    _, _, views = live(start=False)
    hints = views.console.hints.text()
    for key, what in (("Space", "pause feedback"), ("P", "pause schedule"), ("L", "lock threshold"),
                      ("↑/↓", "threshold"), ("S", "skip block"), ("E", "extend"), ("B", "mark channel bad"), ("N", "note"),
                      ("M", "marker"), ("Esc", "end session")):
        assert f"<b>{key}</b> {what}" in hints


# one test per control: the key on the real (offscreen) console calls Pipeline.control with
# the name and arguments of docs/ARCHITECTURE.md, "Contracts"
@pytest.mark.parametrize("key, name, args", [
    (QtCore.Qt.Key_Space, "pause", (True,)),
    (QtCore.Qt.Key_P, "pause_schedule", (True,)),
    (QtCore.Qt.Key_L, "lock_threshold", (True,)),
    (QtCore.Qt.Key_Up, "nudge_threshold", (NUDGE_SI,)),
    (QtCore.Qt.Key_Down, "nudge_threshold", (-NUDGE_SI,)),
    (QtCore.Qt.Key_S, "skip_block", ()),
    (QtCore.Qt.Key_E, "extend_block", (EXTEND_S,)),
    (QtCore.Qt.Key_M, "marker", ("operator",)),
])
def test_control_key_calls_the_pipeline(live, qtbot, controls, key, name, args):
    pipe, _, views = live()
    qtbot.waitUntil(lambda: pipe.published > 3, timeout=5000)
    controls.clear()
    qtbot.keyClick(views.console, key)
    assert controls.calls == [(name, args)]
    qtbot.keyClick(views.participant, key)  # the same keys work in the participant's window
    assert len(controls.calls) == 2 and controls.calls[1][0] == name


def test_mark_channel_bad_selects_then_toggles(live, qtbot, controls):
    pipe, _, views = live()
    box = views.console.channel_box
    names = [box.itemText(i) for i in range(box.count())]
    targets = pipe.processor.chain.targets
    controls.clear()
    box.setCurrentIndex(names.index(targets[0]))
    qtbot.keyClick(views.console, QtCore.Qt.Key_B)  # a target channel cannot be marked bad
    assert controls.calls == [] and "target channel" in views.console.status_note
    i = next(i for i, n in enumerate(names) if n not in targets and names[(i + 1) % len(names)] not in targets)
    box.setCurrentIndex(i)
    qtbot.keyClick(views.console, QtCore.Qt.Key_BracketRight)  # select the next channel with ]
    chosen = names[(i + 1) % len(names)]
    assert box.currentText() == chosen
    qtbot.keyClick(views.console, QtCore.Qt.Key_B)
    qtbot.keyClick(views.console, QtCore.Qt.Key_B)
    assert controls.calls == [("mark_bad_channel", (chosen, True)), ("mark_bad_channel", (chosen, False))]
    qtbot.keyClick(views.console, QtCore.Qt.Key_B)
    views.console.show_state(pipe.latest)
    assert chosen in views.console.bad_channels and "(bad)" in views.console.quality.text()


def test_delay_box_offers_the_participant_s_designs_after_the_baseline(live, qtbot, controls):
    pipe, _, views = live(scale=0.4)  # a 6-s baseline: long enough to fit and score the curve
    box = views.console.delay_box
    controls.clear()
    qtbot.keyClick(views.console, QtCore.Qt.Key_D)  # during the baseline there is no curve yet
    assert controls.calls == [] and "offered once the baseline has ended" in views.console.status_note
    qtbot.waitUntil(box.isEnabled, timeout=30000)
    designs = [box.itemData(i) for i in range(box.count())]
    chosen = pipe.processor.chain.delay_s  # the demo's "choose": a design within the 50-ms budget
    assert designs == list(CURVE_DELAYS_S) and box.currentIndex() == designs.index(chosen) and chosen <= -0.005
    assert all("design →" in box.itemText(i) and " ms, r " in box.itemText(i) for i in range(box.count()))
    # the participant's curve as a small table in plain words, not a line that widens the console
    qtbot.waitUntil(lambda: "Bar timing" in views.console.delays.text(), timeout=5000)
    table = views.console.delays.text()
    assert "in use:" in table and ("faster" in table or "steadier" in table) and "exact" in table
    assert "r=" not in views.console.info.text() and "->" not in views.console.info.text()
    qtbot.keyClick(views.console, QtCore.Qt.Key_D)  # D: the next design
    views.pick_delay(0)  # a pick in the box
    assert controls.calls == [("set_delay", (designs[designs.index(chosen) + 1],)), ("set_delay", (-0.04,))]
    assert box.currentIndex() == 0 and "delay design -40 ms" in views.console.status_note


def test_note_key_asks_for_text_and_sends_it(live, qtbot, controls):
    _, _, views = live()
    controls.clear()
    views.ask_note = lambda: "C4 re-gelled, impedance better"
    qtbot.keyClick(views.console, QtCore.Qt.Key_N)
    views.ask_note = lambda: ""  # cancelled: nothing is sent
    qtbot.keyClick(views.console, QtCore.Qt.Key_N)
    assert controls.calls == [("note", ("C4 re-gelled, impedance better",))]
    assert views.console.notes == 1


def test_keys_pause_marker_and_escape(live, qtbot, controls):
    pipe, rec, views = live()
    qtbot.waitUntil(lambda: pipe.published > 10, timeout=5000)
    qtbot.keyClick(views.console, QtCore.Qt.Key_Space)
    qtbot.waitUntil(lambda: pipe.latest.paused, timeout=2000)
    qtbot.waitUntil(lambda: views.participant.cue.text() == "Paused", timeout=2000)
    qtbot.keyClick(views.participant, QtCore.Qt.Key_Space)
    qtbot.waitUntil(lambda: not pipe.latest.paused, timeout=2000)
    qtbot.keyClick(views.console, QtCore.Qt.Key_M)
    qtbot.waitUntil(lambda: "marker/operator" in (rec.folder / "events.jsonl").read_text(), timeout=3000)
    views.confirm_end = lambda: False  # "No": nothing happens
    qtbot.keyClick(views.console, QtCore.Qt.Key_Escape)
    assert pipe.running and not views.closing
    views.confirm_end = lambda: True
    qtbot.keyClick(views.console, QtCore.Qt.Key_Escape)
    qtbot.waitUntil(lambda: not pipe.running, timeout=3000)
    assert pipe.engine.finished
    summary = finish_session(pipe, rec)
    assert summary["bdf"] and (rec.folder / "sidecar.json").exists()
    texts = (rec.folder / "events.jsonl").read_text()
    assert '"pause"' in texts and '"resume"' in texts and "ended by operator (Esc)" in texts
    assert [c for c in controls.calls if c[0] == "pause"] == [("pause", (True,)), ("pause", (False,))]


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
    # no flashing: a reward switching on and off moves the colour and the bar by small steps, set
    # in seconds by the protocol (easing_s 0.15, reward_fade_s 0.5), whatever the paint rate
    views.timer.stop()
    th = views.participant.thermo
    fb = pipe.processor.protocol.feedback
    assert (fb.easing_s, fb.reward_fade_s) == (0.15, 0.5)
    st = copy.copy(pipe.latest)
    st.feedback_on, st.signal_lost, st.paused = True, False, False
    now = 100.0
    views.participant.show_state(st, now)
    for dt in (0.04, 0.016):  # 25 and 60 paints a second
        for k in range(30):
            st.reward, st.feedback = bool(k % 2), float(k % 2)
            before = (th.mix, th.shown)
            now += dt
            views.participant.show_state(st, now)
            assert abs(th.mix - before[0]) <= (1 - np.exp(-dt / 0.5)) + 1e-9
            assert abs(th.shown - before[1]) <= (1 - np.exp(-dt / 0.15)) + 1e-9
    # after a second at a steady value the bar is there (e^-1/0.15 of the way left), at any paint rate
    st.feedback = 0.9
    for k in range(60):
        views.participant.show_state(st, 200.0 + k / 60)
    assert th.shown == pytest.approx(0.9, abs=0.01)


def test_standard_style_for_other_protocols(live, qtbot):
    pipe, _, views = live("empathy-uptraining", scale=0.01)
    assert not views.low_stimulation and views.participant.thermo.colours == STANDARD
    qtbot.waitUntil(lambda: pipe.published > 3, timeout=5000)
    views.timer.stop()
    st = copy.copy(pipe.latest)
    st.feedback_on, st.reward, st.signal_lost, st.paused = True, True, False, False
    views.participant.show_state(st)
    assert views.participant.thermo.mix == 1.0  # the standard view shows reward at once


def test_reward_tone_is_played_and_logged_once_per_reward(live, controls, tmp_path):
    from neurofeed.ui.tone import RewardTone

    pipe, _, views = live(start=False)
    views.tone = RewardTone(player=None)  # no audio device here: log-only
    st = copy.copy(pipe.latest)
    st.seq, st.feedback_on, st.paused, st.signal_lost = 1, True, False, False
    for k, reward in enumerate([False, True, True, True, False, True]):
        st.seq, st.reward = k + 1, reward
        pipe.latest = st = copy.copy(st)
        views.frame()
    assert views.tone.played == 2  # at each reward onset, never per frame
    tones = [a for n, a in controls.calls if n == "stimulus" or (n == "marker" and a[0].startswith("stimulus/"))]
    assert [a[-1].split("stimulus/")[-1] for a in tones if a[-1].endswith("tone/reward")] == ["tone/reward"] * 2


def test_tone_true_in_the_protocol_makes_a_tone(tmp_path, qtbot, controls):
    text = (PROTOCOLS / "demo.toml").read_text().replace("[feedback]", "[feedback]\ntone = true", 1)
    assert "tone = true" in text
    (tmp_path / "tone.toml").write_text(text)
    proto = load_protocol(tmp_path / "tone.toml")
    src = SimulatedSource(MuSimulator(seed=1), realtime=False)
    pipe, _ = build_session(src, proto, "P03", tmp_path, record=False, lsl=False)
    views = Views(pipe)
    qtbot.addWidget(views.participant)
    qtbot.addWidget(views.console)
    assert views.tone is not None and views.tone.path.stat().st_size > 1000


def test_tone_wav_fades_in_and_out():
    import wave

    from neurofeed.ui.tone import write_tone_wav

    path = write_tone_wav(Path(os.environ.get("TMPDIR", "/tmp")) / "nf-test-tone.wav", freq_hz=660, dur_s=0.15)
    with wave.open(str(path)) as w:
        assert w.getframerate() == 22050 and w.getnchannels() == 1
        y = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float) / 32767
    assert abs(len(y) / 22050 - 0.15) < 1e-3
    assert abs(y[0]) < 1e-3 and abs(y[-1]) < 0.01  # raised-cosine fades: no click
    assert 0.2 < np.abs(y).max() <= 0.25 + 1e-3  # a gentle level


def test_window_layout_tiles_one_screen_and_uses_a_second():
    one = window_layout([(0, 0, 1920, 1040)])
    (px, py, pw, ph), (cx, cy, cw, chh) = one["participant"], one["console"]
    assert not one["participant_fullscreen"] and cx + cw <= px and pw > 600 and cw > 1000  # side by side
    assert py >= 0 and cy >= 0 and ph > 400 and chh > 400 and max(py + ph, cy + chh) <= 1040  # on the screen
    two = window_layout([(0, 0, 1920, 1040), (1920, 0, 1280, 1024)])
    assert two["participant_fullscreen"] and two["participant"] == (1920, 0, 1280, 1024)
    assert two["console"] == (0, 0, 1920, 1040)
    chosen = window_layout([(0, 0, 1920, 1040), (1920, 0, 1280, 1024)], participant_screen=0)
    assert chosen["participant"] == (0, 0, 1920, 1040) and chosen["console"] == (1920, 0, 1280, 1024)
    bad = window_layout([(0, 0, 1920, 1040)], participant_screen=2)
    assert "--participant-screen 2" in bad["warning"] and not bad["participant_fullscreen"]


def test_views_do_not_overlap_on_one_screen(live):
    _, _, views = live(start=False)
    assert not views.participant.geometry().intersects(views.console.geometry())


def _fake_plugin(tmp_path):
    """A copy of Qt's xcb plugin that cannot load: it needs a library that does not exist
    (its NEEDED entry renamed) and answers to the platform name 'nfx'."""
    import PySide6

    qt = Path(PySide6.__file__).parent / "Qt"
    data = (qt / "plugins" / "platforms" / "libqxcb.so").read_bytes()
    assert data.count(b"libxcb-icccm.so.4") == 1 and data.count(b"dKeys\x81cxcb") == 1
    data = data.replace(b"libxcb-icccm.so.4", b"libxcb-nfmis.so.4").replace(b"dKeys\x81cxcb", b"dKeys\x81cnfx")
    folder = tmp_path / "plugins" / "platforms"
    folder.mkdir(parents=True)
    (folder / "libqnfx.so").write_bytes(data)
    (tmp_path / "lib").symlink_to(qt / "lib")  # the plugin's RUNPATH $ORIGIN/../../lib finds Qt itself
    return folder


def test_a_platform_plugin_that_cannot_load_gives_one_line_and_the_terminal_view(tmp_path, monkeypatch):
    from neurofeed.ui.qt_platform import package_for, qt_platform_problem

    folder = _fake_plugin(tmp_path)
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", str(folder))
    line = qt_platform_problem("nfx")
    # the fake library is named among the missing ones and in the install command (the machine may
    # lack other xcb libraries too: they are listed beside it)
    missing, _, command = line.partition("install with")
    assert "missing " in missing and "libxcb-nfmis4" in missing.split("missing ", 1)[1]
    assert "sudo apt-get install" in command and "libxcb-nfmis4" in command
    assert package_for("libxcb-cursor.so.0") == "libxcb-cursor0" and package_for("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    # the session: one line, then the terminal view; the recording is made (no abort, exit 0)
    env = dict(os.environ, QT_QPA_PLATFORM="nfx", QT_QPA_PLATFORM_PLUGIN_PATH=str(folder), DISPLAY=":0")
    exe = Path(sys.executable).parent / "neurofeed"
    r = subprocess.run([str(exe), "session", "--board", "simulated", "--protocol", "demo", "--participant", "P01",
                        "--seconds-scale", "0.05", "--no-lsl", "--display", "window", "--out", str(tmp_path / "rec")],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("neurofeed:")]
    assert len(lines) == 1 and "libxcb-nfmis4" in lines[0] and "terminal view" in lines[0]
    assert " | SI " in r.stdout and "Session summary" in r.stdout  # the terminal view's status lines
    assert list((tmp_path / "rec").rglob("*.bdf"))


def test_real_windows_take_key_presses(tmp_path, qtbot, controls):
    """Under Xvfb with xdotool (where installed): the real X windows, tiled, take real key
    presses; elsewhere the same keys go to the offscreen windows."""
    xvfb, display = start_xvfb()
    if xvfb is None:  # offscreen: the same sequence through Qt's own key events
        proto = load_protocol(PROTOCOLS / "demo.toml")
        src = SimulatedSource(MuSimulator(seed=4), realtime=True)
        pipe, rec = build_session(src, proto, "P05", tmp_path, seconds_scale=2.0, lsl=False)
        views = Views(pipe, tone=None)
        qtbot.addWidget(views.participant)
        qtbot.addWidget(views.console)
        pipe.start()
        views.start()
        views.confirm_end = lambda: True
        qtbot.waitUntil(lambda: pipe.published > 40, timeout=10000)  # > 1 s recorded: a BDF can be written
        for key in (QtCore.Qt.Key_Space, QtCore.Qt.Key_M, QtCore.Qt.Key_L, QtCore.Qt.Key_Up, QtCore.Qt.Key_E):
            qtbot.keyClick(views.console, key)
        # queued controls are applied before the next chunk: wait for them before ending
        qtbot.waitUntil(lambda: "marker/operator" in (rec.folder / "events.jsonl").read_text(), timeout=5000)
        qtbot.keyClick(views.console, QtCore.Qt.Key_Escape)
        qtbot.waitUntil(lambda: not pipe.running, timeout=5000)
        calls = controls.calls
        finish_session(pipe, rec)
        events = (rec.folder / "events.jsonl").read_text()
        # the offscreen platform's one screen is 800 px wide, less than the two windows' minimum
        # widths: here only check that the tiled layout was applied
        assert views.participant.geometry().x() == views.layout["participant"][0] > views.layout["console"][0]
        geometry = None
    else:
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
        driver = subprocess.Popen([sys.executable, str(ROOT / "tests" / "xvfb_driver.py"), str(tmp_path)], env=env,
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert driver.stdout.readline().strip() == "ready", driver.stderr.read()

            def xdo(*args):
                return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=60).stdout

            win = xdo("search", "--sync", "--name", "clinician console").split()[0]
            xdo("windowfocus", "--sync", win)
            for key in ("space", "m", "l", "Up", "e", "Escape"):
                xdo("key", "--clearmodifiers", key)
            box = xdo("search", "--sync", "--name", "End session").split()[0]  # the confirmation
            xdo("windowfocus", "--sync", box)
            xdo("key", "y")
            driver.wait(timeout=60)
        finally:
            if driver.poll() is None:
                driver.kill()
            xvfb.terminate()  # SIGTERM: Xvfb removes its lock file and socket
            xvfb.wait()
        result = json.loads((tmp_path / "result.json").read_text())
        calls = [(n, tuple(a)) for n, a in result["calls"]]
        events, geometry = result["events"], result["geometry"]
        assert result["frames"]["frames"] > 5 and result["bdf"]
    operator = [c for c in calls if c[0] != "stimulus" and not (c[0] == "marker" and c[1][0].startswith("stimulus/"))]
    assert operator == [("pause", (True,)), ("marker", ("operator",)), ("lock_threshold", (True,)),
                        ("nudge_threshold", (NUDGE_SI,)), ("extend_block", (EXTEND_S,))]
    assert '"pause"' in events and "marker/operator" in events and "ended by operator (Esc)" in events
    if geometry is not None:  # real X windows on a 1600-px screen
        px, py, pw, ph = geometry["participant"]
        cx, cy, cw, chh = geometry["console"]
        assert cx + cw <= px or px + pw <= cx  # side by side on the one screen, not one behind the other


def test_replay_with_display_follows_the_file_annotations(qtbot, controls):
    from neurofeed.analysis.replay import replay_with_display
    from neurofeed.hardware.sources.edf import FileSource
    from tests.conftest import DATA

    n_file = FileSource(DATA / "S001R03.edf").data.shape[1]
    summary = replay_with_display(DATA / "S001R03.edf", baseline_label="T0", speed="max")
    labels = {b["label"] for b in summary["blocks"]}
    assert labels == {"T0", "T1", "T2"}
    assert summary["baseline_uv2"] is not None
    assert summary["samples"] == n_file  # the whole file was played
    # the windows' event loop has ended and left nothing behind: the next event loop of this process
    # (a second session, the next test) runs its timers (a stray Quit event once ended it at once)
    hits = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: hits.append(1))
    timer.start(10)
    qtbot.waitUntil(lambda: len(hits) >= 3, timeout=5000)



def test_the_console_fits_a_1366x768_tile_even_with_a_16_channel_failed_check(tmp_path, qtbot):
    """A Cyton-Daisy's 16 channels in the check panel and the quality table, every one failing with
    its advice: the console still fits its tile of a clinic laptop's screen (the tables scroll)."""
    proto = load_protocol(PROTOCOLS / "demo.toml")
    src = SimulatedSource(MuSimulator(seed=4), realtime=False, duration_s=3)
    pipe, _ = build_session(src, proto, "P03", tmp_path, seconds_scale=0.2, record=False, lsl=False)
    pipe.run()
    check = {"ok": False, "channels": {n: {"ok": False, "offset_uv": 187000.0, "line_noise_uv": 12.3, "rms_uv": 310.0,
                                           "impedance_kohm": None,
                                           "advice": "railed: re-seat the electrode and check its lead"}
                                       for n in src.ch_names}}
    views = Views(pipe, tone=None, check=check)
    qtbot.addWidget(views.participant)
    qtbot.addWidget(views.console)
    views.spectra.compute()
    views.console.show_state(pipe.latest)
    _, _, cw, ch = window_layout([(0, 0, 1366, 768)])["console"]
    hint = views.console.minimumSizeHint()
    assert len(src.ch_names) == 16 and "railed" in views.console.check_label.text()
    assert hint.width() <= cw and hint.height() <= ch, (hint, cw, ch)
