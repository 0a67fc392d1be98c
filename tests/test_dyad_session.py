"""A dyad session end to end: two simulated headsets, one folder, the coupling, replay and report."""

import json

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

import neurofeed.live.session as session_mod
from neurofeed.core.errors import NeurofeedError
from neurofeed.dyad.monitor import read_dyad_tsv
from neurofeed.dyad.session import build_dyad_session, check_dyad_sources, simulated_partner_drive
from neurofeed.hardware.sources.simulated import MuSimulator, SimulatedSource
from neurofeed.protocol.schema import load_protocol
from neurofeed.recording.journal import read_journal
from tests.conftest import run_cli

DYAD_CMD = ["session", "--board", "simulated", "--partner-board", "simulated", "--participant", "P01",
            "--partner", "P02", "--protocol", "dyadic-resonance", "--headless", "--seconds-scale", "0.05", "--no-lsl"]


@pytest.fixture(scope="module")
def dyad_run(tmp_path_factory):
    """The documented command, in-process, with the simulated headsets unpaced (as fast as they compute)."""
    out = tmp_path_factory.mktemp("dyad")
    orig = session_mod.open_source
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session_mod, "open_source", lambda *a, **k: orig(*a, **{**k, "realtime": False}))
        r = run_cli(*DYAD_CMD, "--out", out)
    folders = list(out.glob("P01+P02/*_dyadic-resonance"))
    return r, folders, out


def test_dyad_command_writes_both_recordings_and_the_coupling(dyad_run):
    r, folders, _ = dyad_run
    assert r.returncode == 0, r.stderr
    assert "coupling:" in r.stdout and "P01" in r.stdout and "P02" in r.stdout
    (folder,) = folders
    info = json.loads((folder / "dyad.json").read_text())
    assert info["roles"] == {"a": "P01", "b": "P02"}
    n = {}
    for code in ("P01", "P02"):
        j = read_journal(folder / code)
        assert j.header["participant"] == code and (folder / code / f"{code}.bdf").exists()
        assert j.sidecar is not None and j.sidecar["baseline_uv2"] is not None  # each person's own baseline
        n[code] = j.data.shape[1]
    expected = int(round(load_protocol("dyadic-resonance").total_duration_s() * 0.05 * 250))
    assert n == {"P01": expected, "P02": expected}  # both ran the whole schedule
    al = info["alignment"]
    assert al["samples"] == {"a": expected, "b": expected} and sum(al["lead_dropped_samples"].values()) < 250
    assert info["ground_truth"]["coupled_windows_s"][0] == [20.0, 40.0]
    rows = read_dyad_tsv(folder / "dyad.tsv")
    assert len(rows) == info["coupling"]["updates"] > 200
    assert np.all(np.diff(rows[:, 0]) > 0) and np.isfinite(rows[-50:, 3]).all()
    assert np.isfinite(rows[-50:, 4:]).all()  # each person's SI beside the coupling


def test_dyad_replays_bit_exact_and_recomputes_the_coupling(dyad_run, tmp_path):
    _, (folder,), _ = dyad_run
    r = run_cli("replay", folder, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("bit-exact") == 2 and "largest difference 0" in r.stdout, r.stdout
    again = read_dyad_tsv(tmp_path / folder.name / "dyad.tsv")
    np.testing.assert_allclose(again, read_dyad_tsv(folder / "dyad.tsv"), rtol=1e-5, atol=1e-6)
    assert (tmp_path / folder.name / "P02" / "feedback.tsv").exists()


def test_dyad_report_shows_coupling_and_both_people(dyad_run, tmp_path):
    _, (folder,), _ = dyad_run
    r = run_cli("report", folder, "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "coupling.png" in page and "si.png" in page and "P01/index.html" in page and "P02/index.html" in page
    assert (tmp_path / "rep" / "coupling.png").stat().st_size > 10_000


def test_session_coupling_separates_scripted_on_from_off_windows(tmp_path):
    """Through both people's whole pipelines (spatial filter, conditioning, alignment): AUC >= 0.9."""
    p = load_protocol("dyadic-resonance")
    scale = 0.2  # 144 s of signal: three scripted coupled windows
    a = session_mod.open_source("simulated", protocol=p, seconds_scale=scale, realtime=False, seed=1)
    b = session_mod.open_source("simulated", protocol=p, seconds_scale=scale, realtime=False, seed=2)
    drive = simulated_partner_drive(a, b, p, scale)
    s = build_dyad_session(a, b, p, ("P01", "P02"), tmp_path, scale, lsl=False, drive=drive)
    s.start()
    assert s.wait(300)
    s.finish()
    rows = np.array(s.monitor.rows)
    t, idx = rows[:, 0], rows[:, 3]
    look = np.linspace(-9.9, -0.1, 25)  # the 10-s window wholly inside a coupled / an uncoupled stretch
    on = np.array([drive.coupled(tt + look).all() for tt in t]) & np.isfinite(idx)
    off = np.array([not drive.coupled(tt + look).any() for tt in t]) & np.isfinite(idx)
    assert on.sum() > 100 and off.sum() > 100
    auc = mannwhitneyu(idx[on], idx[off]).statistic / (on.sum() * off.sum())
    assert auc >= 0.9, auc


def test_different_sampling_rates_are_one_line_naming_both():
    a = SimulatedSource(MuSimulator(sfreq=250.0, seed=1), realtime=False)
    b = SimulatedSource(MuSimulator(sfreq=125.0, seed=2), realtime=False)
    with pytest.raises(NeurofeedError) as err:
        check_dyad_sources(a, b)
    msg = str(err.value)
    assert "250 Hz" in msg and "125 Hz" in msg and "\n" not in msg


@pytest.mark.parametrize("args, words", [
    (["--partner", "P02"], "--partner-board"),
    (["--partner-board", "simulated"], "--partner CODE"),
    (["--partner", "P01", "--partner-board", "simulated"], "two participant codes"),
])
def test_dyad_command_errors_are_one_line(args, words, tmp_path):
    r = run_cli("session", "--board", "simulated", "--participant", "P01", "--protocol", "dyadic-resonance",
                "--headless", "--no-lsl", "--out", tmp_path, *args)
    assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_one_person_protocol_refuses_a_partner(tmp_path):
    r = run_cli("session", "--board", "simulated", "--partner-board", "simulated", "--participant", "P01",
                "--partner", "P02", "--protocol", "demo", "--headless", "--no-lsl", "--out", tmp_path)
    assert r.returncode == 2 and "is for one person" in r.stderr, r.stderr


def test_dyad_windows_run_the_session_and_show_both_people(tmp_path, qtbot):
    from neurofeed.dyad.view import DyadTerminalView, format_dyad, run_dyad_windows

    p = load_protocol("dyadic-resonance")
    a = session_mod.open_source("simulated", protocol=p, seconds_scale=0.05, realtime=False, seed=3)
    b = session_mod.open_source("simulated", protocol=p, seconds_scale=0.05, realtime=False, seed=4)
    s = build_dyad_session(a, b, p, ("P01", "P02"), tmp_path, 0.05, lsl=False,
                           drive=simulated_partner_drive(a, b, p, 0.05))
    shared, console = run_dyad_windows(s, seconds=120)  # returns when the session has ended
    assert not s.running and all(pp.engine.finished for pp in s.pipelines.values())
    s.finish()
    d = s.monitor.latest
    assert 0.0 <= d.coupling <= 1.0
    before = shared.coupling
    shared.show_state(s.pipelines["a"].latest, s.pipelines["b"].latest, d)
    assert abs(shared.coupling - d.coupling) < abs(before - d.coupling) or before == d.coupling
    console.refresh()
    x, y = console.items["index"].getData()
    assert len(x) > 100 and np.allclose(y[-1], d.coupling, atol=1e-5)
    assert "P01" in console.info.text() and "P02" in console.info.text()
    line = format_dyad(s.codes, s.pipelines["a"].latest, s.pipelines["b"].latest, d)
    assert line.count(" SI ") == 2 and f"coupling {d.coupling:.2f}" in line
    assert DyadTerminalView(s).line() == line
