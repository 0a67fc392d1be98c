"""Yoked sham feedback and blinding: the participant sees a recorded session's feedback, the live SI is kept."""

import json

import numpy as np
import pytest

from neurofeed.analysis.replay import replay_journal
from neurofeed.core.errors import NeurofeedError
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
from neurofeed.live.session import build_session, finish_session
from neurofeed.protocol.schema import load_protocol, parse_protocol
from neurofeed.recording.journal import read_journal
from tests.conftest import PROTOCOLS, run_cli

SCALE = 0.3


class _Keep:
    """A sink keeping every published state (the participant view's input)."""

    def __init__(self):
        self.states = []

    def on_state(self, st):
        self.states.append(st)


def _run(tmp_path, protocol, seed, code, **kw):
    src = SimulatedSource(MuSimulator(script=SimulationScript.alternating(60), seed=seed), realtime=False)
    pipe, rec = build_session(src, protocol, code, tmp_path, seconds_scale=SCALE, lsl=False, **kw)
    keep = _Keep()
    pipe.sinks.append(keep)
    pipe.run()
    finish_session(pipe, rec)
    return rec.folder, keep.states, pipe


@pytest.fixture(scope="module")
def yoked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sham")
    demo = load_protocol(PROTOCOLS / "demo.toml")
    source_folder, _, _ = _run(tmp, demo, seed=3, code="P01")
    sham_proto = parse_protocol(demo.text + '\n[sham]\nmode = "yoked"\n', "demo-sham.toml")
    key = tmp / "trial-key.json"
    folder, states, pipe = _run(tmp, sham_proto, seed=9, code="P02", yoke_from=source_folder, blind_key=key)
    return source_folder, folder, states, key, pipe


def test_participant_view_shows_the_recorded_feedback_at_the_same_block_times(yoked):
    source_folder, folder, states, _, _ = yoked
    src = read_journal(source_folder)
    cols = src.columns
    by_sample = {int(r[cols.index("sample_index")]): r for r in src.feedback}
    on = [st for st in states if st.feedback_on]
    assert len(on) > 200
    for st in on:
        r = by_sample[st.sample_index]  # same chunks, same schedule: the same sample into the same block
        expected = r[cols.index("feedback")] if r[cols.index("feedback_on")] else 0.5
        assert st.feedback == expected, st.sample_index
        assert st.reward == bool(r[cols.index("reward")] and r[cols.index("feedback_on")])
    # the participant's own live feedback differs from what was shown: it is a sham
    assert sum(st.feedback != st.live_feedback for st in on) > len(on) // 4


def test_live_si_is_recorded_and_the_session_replays_bit_exact(yoked):
    from neurofeed.live.sham import unseal

    _, folder, _, key, _ = yoked
    j = read_journal(folder)
    c = j.columns
    assert np.isnan(j.feedback[:, c.index("si_combined")]).all()  # blinded: sealed, not in clear (issue 22)
    rows = unseal(folder, key)["rows"]  # the key file opens them
    si = rows[:, c.index("si_combined")]
    assert np.isfinite(si).sum() > 200  # the live SI of the sham participant
    shown = rows[:, c.index("feedback")]
    live = rows[:, c.index("live_feedback")]
    assert not np.array_equal(shown, live)
    res = replay_journal(folder, unblind=key)
    assert np.array_equal(res["recorded"], res["feedback"], equal_nan=True)


def test_blinded_folder_and_reports(yoked, tmp_path):
    source_folder, folder, _, key, pipe = yoked
    assert pipe.blinded
    for name in ("header.json", "sidecar.json"):
        doc = json.loads((folder / name).read_text())
        assert doc["sham"] == "blinded" and "[sham]" not in doc["protocol_text"] and "yoked" not in json.dumps(doc)
    entry = json.loads(key.read_text())["sessions"][f"{folder.parent.name}/{folder.name}"]
    assert entry["arm"] == "sham" and entry["yoked_from"] == str(source_folder)
    r = run_cli("report", folder, "--out", tmp_path / "r1")
    assert r.returncode == 0 and "arm: blinded" in r.stdout, r.stderr
    assert "arm <b>blinded</b>" in (tmp_path / "r1" / "index.html").read_text()
    r = run_cli("report", folder, "--out", tmp_path / "r2", "--unblind", key)
    assert r.returncode == 0 and f"arm: sham (yoked from {source_folder})" in r.stdout, r.stderr


def test_terminal_console_hides_the_live_si_when_blinded(yoked):
    from neurofeed.ui.terminal import format_state

    st = [s for s in yoked[2] if s.feedback_on][-1]
    assert "SI blinded" in format_state(st, blinded=True) and "SI blinded" not in format_state(st)
    assert f"{st.si_combined:+.2f}" in format_state(st)


def test_sham_options_must_agree_with_the_protocol(tmp_path):
    demo = load_protocol(PROTOCOLS / "demo.toml")
    sham_proto = parse_protocol(demo.text + '\n[sham]\nmode = "yoked"\n', "demo-sham.toml")
    src = SimulatedSource(MuSimulator(seed=1), realtime=False)
    with pytest.raises(NeurofeedError, match="needs --yoke-from"):
        build_session(src, sham_proto, "P01", tmp_path, lsl=False)
    with pytest.raises(NeurofeedError, match=r"gives real feedback"):
        build_session(src, demo, "P01", tmp_path, lsl=False, yoke_from=tmp_path)
    with pytest.raises(NeurofeedError, match="not a neurofeed session folder"):
        build_session(src, sham_proto, "P01", tmp_path, lsl=False, yoke_from=tmp_path)
    with pytest.raises(Exception, match=r"\[sham\] mode is 'fake'"):
        parse_protocol(demo.text + '\n[sham]\nmode = "fake"\n', "x.toml")


def test_participant_view_draws_the_yoked_feedback_not_the_live_one(yoked, qtbot):
    from neurofeed.ui.participant import ParticipantView

    view = ParticipantView(False)
    qtbot.addWidget(view)
    st = next(s for s in yoked[2] if s.feedback_on and abs(s.feedback - s.live_feedback) > 0.2)
    for _ in range(20):
        view.show_state(st)
    assert abs(view.thermo.shown - st.feedback) < 1e-3 and abs(view.thermo.shown - st.live_feedback) > 0.19


def test_yoke_source_must_match_the_schedule_and_scale(yoked, tmp_path):
    source_folder = yoked[0]
    demo = load_protocol(PROTOCOLS / "demo.toml")
    src = SimulatedSource(MuSimulator(seed=1), realtime=False)
    sham = parse_protocol(demo.text + '\n[sham]\nmode = "yoked"\n', "demo-sham.toml")
    with pytest.raises(NeurofeedError, match=r"--seconds-scale 0.3, this session runs at 1;"):
        build_session(src, sham, "P02", tmp_path, lsl=False, yoke_from=source_folder)
    other = parse_protocol(sham.text.replace('label = "rest"', 'label = "pause-1"'), "other.toml")
    with pytest.raises(NeurofeedError, match=r"block 3 is 'rest' there and 'pause-1' here"):
        build_session(src, other, "P02", tmp_path, seconds_scale=SCALE, lsl=False, yoke_from=source_folder)


def test_unblinded_sham_names_its_arm_and_redaction_keeps_a_valid_protocol():
    from neurofeed.live.sham import arm_of
    from neurofeed.protocol.schema import redact_sham

    demo = load_protocol(PROTOCOLS / "demo.toml")
    text = demo.text + '\n[sham]\nmode = "yoked"\n\n[[blocks]]\nlabel = "extra"\nkind = "consolidation"\nduration_s = 5\n'
    red = redact_sham(text)
    assert "[sham]" not in red and "yoked" not in red and 'label = "extra"' in red
    assert parse_protocol(red, "red.toml").sham.mode == "none"
    assert arm_of({"sham": {"mode": "yoked", "yoked_from": "/r/P03/x"}}) == "sham (yoked from /r/P03/x)"
    assert arm_of({"sham": {"mode": "none"}}) == "real" and arm_of({}) == "real"
    assert arm_of({"sham": "blinded"}) == "blinded"
