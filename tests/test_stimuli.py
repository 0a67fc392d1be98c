"""Built-in point-light stimuli: kinematics, scrambled controls, onsets, drawing, the protocols."""

import numpy as np
import pytest

from neurofeed.core.errors import NeurofeedError
from neurofeed.ui.stimuli import (
    BUILTIN,
    IMAGE_S,
    PointLightHands,
    PointLightWalker,
    Scrambled,
    StimulusPlayer,
    builtin_stimulus,
    check_stimuli,
)
from tests.conftest import PROTOCOLS


def _dist(p, i, j):
    return float(np.hypot(*(p[i] - p[j])))


def test_walker_is_a_rigid_periodic_gait():
    m = PointLightWalker()
    ts = np.linspace(0, 3 * m.period_s, 200)
    tracks = np.stack([m.positions(t) for t in ts])
    assert tracks.shape == (200, 13, 2) and np.isfinite(tracks).all() and np.abs(tracks).max() <= 1.0
    # dots: 0 head, then per side shoulder, elbow, wrist, hip, knee, ankle
    for side in (0, 6):
        thigh = [_dist(p, 4 + side, 5 + side) for p in tracks]
        shank = [_dist(p, 5 + side, 6 + side) for p in tracks]
        forearm = [_dist(p, 2 + side, 3 + side) for p in tracks]
        assert np.allclose(thigh, m.THIGH) and np.allclose(shank, m.SHANK) and np.allclose(forearm, m.FOREARM)
    np.testing.assert_allclose(m.positions(0.3), m.positions(0.3 + m.period_s), atol=1e-12)
    # the legs swing half a cycle apart: the ankles' forward positions are anti-correlated
    left, right = tracks[:, 6, 0], tracks[:, 12, 0]
    assert np.corrcoef(left, right)[0, 1] < -0.8
    assert left.max() - left.min() > 0.3  # a real stride, not a jitter
    np.testing.assert_allclose(m.positions(0.4, trial=1)[:, 0], -m.positions(0.4, trial=0)[:, 0])  # faces the other way


def test_hand_reaches_with_a_minimum_jerk_wrist_and_a_grip_that_opens_then_closes():
    m = PointLightHands()
    ts = np.linspace(0, m.T_REACH, 401)
    tracks = np.stack([m.positions(t, trial=1) for t in ts])
    assert np.abs(tracks).max() <= 1.0
    # the arm's segments keep their lengths (inverse kinematics), in the view's zoom
    assert np.allclose([_dist(p, 0, 1) for p in tracks], m.UPPER_ARM * m.ZOOM)
    assert np.allclose([_dist(p, 1, 2) for p in tracks], m.FOREARM * m.ZOOM)
    wrist = tracks[:, 2]
    target = (m.TARGETS[1][1] - m.CENTRE) * m.ZOOM
    np.testing.assert_allclose(wrist[-1], target, atol=1e-9)  # the hand arrives at the object
    speed = np.hypot(*np.diff(wrist, axis=0).T)
    assert abs(ts[np.argmax(speed)] / m.T_REACH - 0.5) < 0.03  # minimum jerk: bell-shaped, peak mid-reach
    aperture = np.array([_dist(p, 5, 8) for p in tracks])  # index tip – thumb tip
    assert 0.6 < ts[np.argmax(aperture)] / m.T_REACH < 0.8  # maximum grip aperture at ~70 % of the reach
    assert aperture[-1] < 0.6 * aperture.max()  # closed on the object at contact


def test_scrambled_keeps_each_dots_motion_but_not_the_body():
    for model in (PointLightWalker(), PointLightHands()):
        sc = Scrambled(model, seed=3)
        assert sc.n_dots == model.n_dots and sc.name.startswith("scrambled-")
        t0, t1 = 0.2, 0.9
        for i in range(model.n_dots):  # the same local motion, at its own phase
            ph = sc._phase[i]
            own = sc.positions(t1)[i] - sc.positions(t0)[i]
            src = model.positions((t1 + ph) % model.trial_s)[i] - model.positions((t0 + ph) % model.trial_s)[i]
            np.testing.assert_allclose(own, src, atol=1e-9)
        # but the body is gone: segment lengths no longer hold
        ts = np.linspace(0, model.trial_s, 60)
        seg = [_dist(sc.positions(t), 1, 2) for t in ts]
        assert np.std(seg) > 0.01
        tracks = np.stack([sc.positions(t, k) for k in range(3) for t in ts])
        assert np.abs(tracks).max() <= 1.0 + 1e-9  # still inside the box
    assert not np.allclose(Scrambled(PointLightHands(), seed=1).positions(0.5),
                           Scrambled(PointLightHands(), seed=2).positions(0.5))


def test_builtin_names_and_one_line_error():
    assert set(BUILTIN) == {"point-light-walker", "point-light-hands", "scrambled-walker", "scrambled-hands"}
    for name in BUILTIN:
        m = builtin_stimulus("builtin:" + name)
        assert m.positions(0.5).shape == (m.n_dots, 2)
    with pytest.raises(NeurofeedError, match="'builtin:point-light-face' is not a built-in stimulus; use one of "
                                             "builtin:point-light-walker"):
        check_stimuli("builtin:point-light-face")
    check_stimuli("stimuli/faces")  # folders are not checked here


def test_player_reports_every_onset_once():
    pl = StimulusPlayer()
    pl.set_spec("builtin:point-light-hands", now_s=100.0)
    assert pl.advance(100.0) == ["point-light-hands/000/reach-near"]
    assert pl.advance(100.0 + 0.5 * PointLightHands.trial_s) == []
    assert pl.dots.shape == (10, 2)
    assert pl.advance(100.0 + 1.01 * PointLightHands.trial_s) == ["point-light-hands/001/reach-far"]
    pl.set_spec("builtin:scrambled-walker", now_s=200.0)
    assert pl.advance(200.0) == ["scrambled-walker/000/facing-right"]
    pl.set_spec("", now_s=210.0)
    assert pl.advance(211.0) == [] and pl.model is None


def test_player_shows_a_folder_of_images_in_turn(tmp_path):
    from PySide6 import QtGui

    folder = tmp_path / "stimuli" / "hands"
    folder.mkdir(parents=True)
    for name in ("b.png", "a.png"):
        img = QtGui.QImage(40, 30, QtGui.QImage.Format_RGB32)
        img.fill(0x336699)
        assert img.save(str(folder / name))
    (folder / "notes.txt").write_text("not an image")
    pl = StimulusPlayer(tmp_path)
    pl.set_spec("stimuli/hands", now_s=0.0)
    assert pl.advance(0.0) == ["image/stimuli/hands/a.png"]
    assert pl.advance(IMAGE_S - 0.1) == []
    assert pl.advance(IMAGE_S + 0.1) == ["image/stimuli/hands/b.png"] and pl.image.name == "b.png"
    pl.set_spec("stimuli/missing", now_s=10.0)
    assert pl.advance(10.0) == [] and "no PNG/JPEG images" in pl.error


def _bright_pixels(img, x0=0):
    a = np.array([[QColor(img.pixel(x, y)).lightness() for x in range(x0, img.width(), 2)]
                  for y in range(0, img.height(), 2)])
    return int((a > 200).sum())


def QColor(rgb):
    from PySide6 import QtGui

    return QtGui.QColor(rgb)


def test_participant_view_draws_the_dots_and_calls_back_at_each_onset(qtbot):
    from neurofeed.core.state import FeedbackState
    from neurofeed.ui.participant import ParticipantView

    onsets = []
    view = ParticipantView(False, None, on_stimulus=onsets.append)
    qtbot.addWidget(view)
    view.resize(900, 560)
    view.show()
    st = FeedbackState(seq=1, stimuli="builtin:point-light-walker", cue="Watch the walker.")
    view.show_state(st, now_s=50.0)
    view.stimulus.advance(50.0)
    view.stimulus.advance(50.3)
    assert onsets == ["point-light-walker/000/facing-right"]
    img = view.stimulus.grab().toImage()
    assert _bright_pixels(img) >= 13 * 4  # 13 white dots on black
    st.stimuli = ""  # a block without stimuli: nothing drawn
    view.show_state(st, now_s=60.0)
    view.stimulus.advance(60.0)
    assert _bright_pixels(view.stimulus.grab().toImage()) == 0


def test_action_observation_protocol_ships_point_light_hands():
    from neurofeed.protocol.schema import load_protocol

    proto = load_protocol(PROTOCOLS / "action-observation-research.toml")
    observe = [b for b in proto.blocks if b.label.startswith("observe")]
    assert observe and all(b.stimuli == "builtin:point-light-hands" for b in observe)
    for path in sorted(PROTOCOLS.glob("*.toml")):  # every shipped stimulus name is a real one
        for b in load_protocol(path).blocks:
            check_stimuli(b.stimuli, where=f"{path.name} [{b.label}] stimuli")


def test_screenshot_shows_a_point_light_stimulus(tmp_path, monkeypatch):
    from PySide6 import QtGui

    from neurofeed.ui.display import screenshot
    from tests.display_helpers import ControlLog, install

    install(ControlLog(), lambda obj, name, value: monkeypatch.setattr(obj, name, value, raising=False))
    part, _ = screenshot(PROTOCOLS / "action-observation-research.toml", tmp_path / "aor.png", seconds=8)
    img = QtGui.QImage(str(part))
    assert img.width() == 900
    # the stimulus panel (right two thirds) shows the hand's white dots on black
    assert _bright_pixels(img.copy(310, 0, 590, 410)) >= 10 * 4


def _content_pixels(img) -> int:
    """Pixels of a grabbed frame that differ from its most common colour (the pane's background)."""
    from PySide6 import QtGui

    img = img.convertToFormat(QtGui.QImage.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint32, img.width() * img.height()).copy()
    values, counts = np.unique(a, return_counts=True)
    return int(a.size - counts.max())


def test_every_shipped_protocol_passes_check_and_every_stimulus_block_shows_its_stimuli(qtbot):
    from neurofeed.core.state import FeedbackState
    from neurofeed.protocol.schema import load_protocol
    from neurofeed.ui.participant import ParticipantView
    from neurofeed.ui.stimuli import check_protocol_stimuli, is_builtin
    from tests.conftest import run_cli

    files = sorted(PROTOCOLS.glob("*.toml"))
    r = run_cli("protocols", "check", *files)
    assert r.returncode == 0 and r.stdout.count("ok   ") == len(files), r.stdout + r.stderr
    view = ParticipantView(False, PROTOCOLS)
    qtbot.addWidget(view)
    view.resize(900, 560)
    view.show()
    shown, frames, with_content, images = set(), 0, 0, 0
    for path in files:
        proto = load_protocol(path)
        check_protocol_stimuli(proto)
        for i, b in enumerate(proto.blocks):
            if not b.stimuli:
                continue
            t0 = 1000.0 * (len(shown) + 1)
            view.show_state(FeedbackState(seq=i + 1, stimuli=b.stimuli, cue=b.cue), now_s=t0)
            for dt in (0.0, 0.5, IMAGE_S + 0.1):  # the first onset, mid-trial, the next image or trial
                view.stimulus.advance(t0 + dt)
                frames += 1
                n = _content_pixels(view.stimulus.grab().toImage())
                with_content += n >= 50
                assert n >= 50, f"{path.name} [{b.label}] {b.stimuli}: blank frame at +{dt} s"
            images += not is_builtin(b.stimuli)
            shown.add(b.stimuli)
            view.show_state(FeedbackState(seq=100 + i, stimuli=""), now_s=t0 + 10)
            view.stimulus.advance(t0 + 10)
            assert _content_pixels(view.stimulus.grab().toImage()) == 0  # no stimulus: an empty pane
    assert with_content == frames and images > 0
    # every image set a shipped protocol names ships with the package, and nothing else sits beside them
    named = {s for s in shown if not is_builtin(s)}
    sets = {f"stimuli/{p.name}" for p in (PROTOCOLS / "stimuli").iterdir() if p.is_dir()}
    assert named == sets


def test_a_protocol_naming_a_missing_or_empty_folder_fails_check_in_one_line(tmp_path):
    from tests.conftest import run_cli

    text = (PROTOCOLS / "empathy-uptraining.toml").read_text()
    assert 'stimuli = "stimuli/emotions-joy"' in text
    bad = tmp_path / "mine.toml"
    bad.write_text(text.replace('stimuli = "stimuli/emotions-joy"', 'stimuli = "my-faces"', 1))
    r = run_cli("protocols", "check", bad)
    assert r.returncode == 2
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1, r.stderr
    assert "[[blocks]] 'emotions-joy'" in line, line  # the block
    assert f"{tmp_path / 'my-faces'} does not exist" in line and "stimuli = 'my-faces'" in line, line
    (tmp_path / "my-faces").mkdir()
    (tmp_path / "my-faces" / "readme.txt").write_text("photos go here")
    r = run_cli("protocols", "check", bad)
    assert r.returncode == 2 and "holds no PNG/JPEG images" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # the session refuses it before it starts, with the same line
    r = run_cli("session", "--board", "simulated", "--protocol", bad, "--participant", "P01", "--headless",
                "--no-lsl", "--out", tmp_path / "rec")
    assert r.returncode == 2 and "holds no PNG/JPEG images" in r.stderr, r.stderr
    assert not (tmp_path / "rec").exists() or not list((tmp_path / "rec").rglob("*.bdf"))
    # a shipped protocol copied into a user folder still finds the shipped image sets
    copy = tmp_path / "user" / "empathy-uptraining.toml"
    copy.parent.mkdir()
    copy.write_text(text)
    assert run_cli("protocols", "check", copy).returncode == 0
