"""A failed signal check gates the start; a bad channel restarts the baseline; a baseline without
clean signal is refused (issue 23, "a check that gates the start").

The start: a real ``neurofeed session`` process on the emulated Cyton (BrainFlow's own driver on a
pseudo-terminal) sending real EEG with CP3 at the rail. The baseline: S001's eyes-open rest run
(EEGMMIDB R01) on the Cyton ``mu`` montage through the live :class:`~neurofeed.live.processor.Processor`.
"""

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from neurofeed.core.errors import NeurofeedError
from neurofeed.hardware.signal_check import confirm_start, failed_channels, measure_channels, print_signal_check
from tests.conftest import ROOT

MU = ["Fp1", "FC3", "C3", "CP3", "Cz", "FC4", "C4", "CP4"]  # configs/cyton.toml [montages.mu]
CP3 = MU.index("CP3")


# -- the check's own lines ------------------------------------------------------------------
def test_a_railed_channel_shows_no_impedance_and_the_fail_line_names_only_failures(rng):
    fs, n = 250.0, 1000
    x = 10.0 * rng.standard_normal((3, n))
    x[1] = 187_500.0  # railed
    res = measure_channels(x, fs, ["C3", "CP3", "C4"], range_uv=187_500.0, line_hz=50.0,
                           impedance_kohm={"C3": 8.0, "CP3": 0.0, "C4": 9.0})
    assert res["CP3"].railed and res["CP3"].impedance_kohm is None  # not "0 kΩ", the best value there is
    assert res["C3"].impedance_kohm == 8.0
    from dataclasses import asdict

    result = {"source": "test", "sfreq": fs, "seconds": 4.0, "line_freq": 50.0, "ok": False,
              "channels": {k: asdict(v) for k, v in res.items()}}
    import io

    out = io.StringIO()
    print_signal_check(result, out)
    row = next(line for line in out.getvalue().splitlines() if line.strip().startswith("CP3"))
    assert " railed " in row and " 0 " not in row, row
    assert "fix the channels marked FAIL before starting (CP3)" in out.getvalue()
    result["channels"]["CP3"].update(ok=True, railed=False)
    result["ok"] = True
    out = io.StringIO()
    print_signal_check(result, out)
    assert "FAIL" not in out.getvalue() and "all channels ok" in out.getvalue()


def _failed(names=("CP3",)):
    return {"channels": {n: {"ok": n not in names} for n in MU}, "ok": False}


class _Stdin:
    def __init__(self, tty, answer=""):
        self.tty, self.answer = tty, answer

    def isatty(self):
        return self.tty

    def readline(self):
        return self.answer


def test_confirm_start_asks_refuses_or_is_forced(capsys):
    assert confirm_start({"channels": {"C3": {"ok": True}}, "ok": True}, stdin=_Stdin(False))
    assert confirm_start(None, stdin=_Stdin(False))  # no check run
    assert failed_channels(_failed(("FC3", "CP3"))) == ["FC3", "CP3"]
    assert not confirm_start(_failed(), stdin=_Stdin(True, "\n"))  # the default answer is no
    assert not confirm_start(_failed(), stdin=_Stdin(True, "n\n"))
    assert confirm_start(_failed(), stdin=_Stdin(True, "y\n"))
    assert "Start anyway? [y/N]" in capsys.readouterr().out
    with pytest.raises(NeurofeedError, match="CP3 and there is no terminal to ask.*--force"):
        confirm_start(_failed(), stdin=_Stdin(False))
    said = []
    assert confirm_start(_failed(), force=True, stdin=_Stdin(False), say=said.append)
    assert said == ["--force: starting with CP3 failing the signal check"]
    asked = []
    assert not confirm_start(_failed(), window=True, ask_window=lambda q: asked.append(q) or False)
    assert "CP3" in asked[0]


def test_with_windows_the_question_is_a_qt_dialog_defaulting_to_no(monkeypatch, qtbot):
    from PySide6 import QtWidgets

    seen = []

    def question(parent, title, text, buttons, default):
        seen.append((title, text, default))
        return QtWidgets.QMessageBox.No

    from neurofeed.ui.display import ask_start_anyway

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(question))
    assert not confirm_start(_failed(), window=True, ask_window=ask_start_anyway)
    title, text, default = seen[0]
    assert "CP3" in text and default == QtWidgets.QMessageBox.No


# -- (a) a real session process on the emulated Cyton with CP3 railed -------------------------
def _emulated_cyton(data_dir, **kw):
    from neurofeed.devtools.cyton_emulator import CytonEmulator, edf_signal, montage_names

    assert montage_names("cyton", "mu") == MU
    x = edf_signal(data_dir / "S001R03.edf", MU, 250.0)[:, : 250 * 60]
    return CytonEmulator(x, **kw)


def _session_cmd(port, out):
    exe = Path(sys.executable).parent / "neurofeed"
    return [str(exe), "session", "--board", "cyton", "--serial-port", port, "--montage", "mu", "--protocol", "demo",
            "--participant", "P23", "--headless", "--no-lsl", "--seconds-scale", "0.05", "--out", str(out)]


def _recorded(out: Path) -> list:
    return sorted(p for p in out.rglob("*") if p.is_file()) if out.exists() else []


def test_a_session_with_a_failing_channel_waits_for_an_answer_on_its_terminal(data_dir, tmp_path):
    out = tmp_path / "recordings"
    with _emulated_cyton(data_dir, speed=4, offsets_uv=30e3, railed_channel=CP3) as emu:
        master, slave = pty.openpty()
        proc = subprocess.Popen(_session_cmd(emu.port, out), stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=ROOT, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
        os.close(slave)
        got = []
        reader = threading.Thread(target=lambda: got.append(proc.stdout.read()), daemon=True)
        buf = b""
        try:
            # the prompt has no newline: read byte by byte until it is there (the process waits on it)
            while b"[y/N]" not in buf:
                ch = proc.stdout.read(1)
                assert ch, f"the session ended without asking: {buf.decode(errors='replace')}"
                buf += ch
            assert proc.poll() is None  # it waits for the answer
            assert _recorded(out) == []  # and nothing is recorded while it waits
            os.write(master, b"n\n")
            reader.start()
            rc = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(master)
        reader.join(timeout=10)
        stderr = proc.stderr.read().decode()
    text = buf.decode(errors="replace")
    assert "FAIL" in text and "CP3" in text.split("fix the channels marked FAIL")[1]
    assert rc != 0 and "Traceback" not in stderr
    assert "not started" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert _recorded(out) == []  # nothing recorded: no session folder at all


def test_without_a_terminal_it_refuses_in_one_line_and_with_force_it_runs(data_dir, tmp_path):
    out = tmp_path / "recordings"
    with _emulated_cyton(data_dir, speed=4, offsets_uv=30e3, railed_channel=CP3) as emu:
        r = subprocess.run(_session_cmd(emu.port, out), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           cwd=ROOT, timeout=180)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "--force" in r.stderr and "CP3" in r.stderr, r.stderr
        assert _recorded(out) == []
        r = subprocess.run(_session_cmd(emu.port, out) + ["--force"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "--force: starting with CP3 failing the signal check" in r.stdout
    assert "Session summary" in r.stdout
    assert any(p.name == "header.json" for p in _recorded(out))


def test_with_windows_the_session_asks_in_a_dialog_before_anything_is_recorded(data_dir, tmp_path, monkeypatch,
                                                                               qtbot, capsys):
    from PySide6 import QtWidgets

    from neurofeed.cli import main

    asked = []

    def question(parent, title, text, buttons, default):
        asked.append(text)
        assert not list(tmp_path.rglob("*"))  # asked before the session folder exists
        return QtWidgets.QMessageBox.No

    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(question))
    with _emulated_cyton(data_dir, speed=4, offsets_uv=30e3, railed_channel=CP3) as emu:
        rc = main(["session", "--board", "cyton", "--serial-port", emu.port, "--montage", "mu", "--protocol", "demo",
                   "--participant", "P23", "--display", "window", "--no-lsl", "--seconds-scale", "0.05",
                   "--out", str(tmp_path)])
    assert rc == 1 and len(asked) == 1 and "CP3" in asked[0]
    assert "not started" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*"))


# -- (b) a neighbour marked bad during the baseline ----------------------------------------
FS = 160.0  # EEGMMIDB's rate


@pytest.fixture(scope="module")
def rest_mu():
    from neurofeed.devtools.cyton_emulator import edf_signal
    from tests.conftest import DATA

    return edf_signal(DATA / "S001R01.edf", MU, FS)  # eyes-open rest, 60 s


def _baseline(names, x, controls=(), stop_after_fit=1):
    """Run the demo protocol (15-s baseline) live-like in 50-ms chunks until ``stop_after_fit``
    baselines were measured (or the session ended); ``controls``: (sample, name, *args)."""
    from neurofeed.live.processor import Processor
    from neurofeed.protocol.schema import load_protocol

    proc = Processor(load_protocol("demo"), FS, names, range_uv=187_500.0, line_hz=60.0)
    todo = sorted(controls, key=lambda c: c[0])
    events, fits, i, step = [], 0, 0, 8
    while i < x.shape[1] and not proc.engine.finished:
        while todo and todo[0][0] <= i:
            _, name, *args = todo.pop(0)
            proc.control(name, *args)
        proc.step(np.ascontiguousarray(x[:, i:i + step]))
        i += step
        new = proc.engine.drain_events()
        events += new
        fits += sum(e.text.startswith(("baseline/", "baseline_measured/")) for e in new)
        if fits >= stop_after_fit:
            break
    return proc, [e.text for e in events], i


def _without(x, name):
    keep = [n for n in MU if n != name]
    return keep, x[[MU.index(n) for n in keep]]


@pytest.mark.parametrize("corruption", ["railed", "alpha"])
def test_a_neighbour_marked_bad_during_the_baseline_restarts_it(rest_mu, corruption):
    # CP3, C3's posterior Laplacian neighbour: at the rail (gates everything), or carrying a
    # 10-Hz, 20-µV artifact the gates pass (it leaks into C3's Laplacian as mu power)
    x = rest_mu.copy()
    if corruption == "railed":
        x[CP3] = 187_500.0
    else:
        x[CP3] += 20.0 * np.sin(2 * np.pi * 10.0 * np.arange(x.shape[1]) / FS)
    mark = int(4.0 * FS)  # 4 s into the 15-s baseline
    proc, events, _ = _baseline(MU, x, [(mark, "mark_bad_channel", "CP3", True)])
    assert "baseline_again/CP3 marked bad" in events
    assert [e for e in events if e.startswith("block_start/")][:2] == ["block_start/baseline/exploration"] * 2
    # the session whose montage has no CP3, started where the mark was made
    names, y = _without(rest_mu, "CP3")
    ref, _, _ = _baseline(names, np.ascontiguousarray(y[:, mark:]))
    got, want = proc.engine.baseline_uv2, ref.engine.baseline_uv2
    assert np.all(np.abs(got / want - 1) <= 0.05), (got, want)
    assert proc.engine.baseline_fit.clean_s >= 10.0
    if corruption == "alpha":
        # never marked, the artifact stays in the baseline: the 5-% comparison above tells them apart
        unmarked, _, _ = _baseline(MU, x)
        assert abs(unmarked.engine.baseline_uv2[0] / want[0] - 1) > 0.05


def test_a_neighbour_marked_bad_after_the_baseline_offers_a_rebaseline(rest_mu):
    x = rest_mu.copy()
    x[CP3] += 20.0 * np.sin(2 * np.pi * 10.0 * np.arange(x.shape[1]) / FS)  # leaks into C3 unnoticed
    mark, again = int(20.0 * FS), int(22.0 * FS)  # in the first feedback block (15–33 s)
    proc, events, end = _baseline(MU, x, [(mark, "mark_bad_channel", "CP3", True), (again, "rebaseline")],
                                  stop_after_fit=2)
    assert "rebaseline_offered/CP3" in events and "rebaseline" in events
    assert "baseline_again/rebaseline" in events
    starts = [e for e in events if e.startswith("block_start/")]
    # the feedback block is cut, a baseline runs, then the rest of the cut block, then the schedule
    assert starts[:4] == ["block_start/baseline/exploration", "block_start/observe-hands/integration",
                          "block_start/baseline/exploration", "block_start/observe-hands/integration"], starts
    names, y = _without(rest_mu, "CP3")
    ref, _, _ = _baseline(names, np.ascontiguousarray(y[:, again:]))
    got, want = proc.engine.baseline_uv2, ref.engine.baseline_uv2
    assert np.all(np.abs(got / want - 1) <= 0.05), (got, want)
    blocks = proc.engine.summary()["blocks"]
    assert [b["label"] for b in blocks][:3] == ["baseline", "observe-hands", "baseline"]
    # the cut block's remainder: 18 s in all, 5 s before the rebaseline
    assert blocks[1]["end_s"] - blocks[1]["start_s"] == pytest.approx(again / FS - 15.0, abs=0.06)


def test_a_rebaseline_replaces_a_carried_over_baseline(rest_mu):
    carried = {"baseline_uv2": {"C3": 100.0, "C4": 100.0}, "thresholds": {"up": 0.1, "down": -0.1},
               "source": "recordings/P01/earlier"}
    proc, events, _ = _baseline(MU, rest_mu, [(0, "carry", carried), (int(16 * FS), "rebaseline")],
                                stop_after_fit=2)
    assert any(e.startswith("baseline_measured/") and e.endswith("kept_carried_baseline") for e in events)
    assert any(e.startswith("baseline/") for e in events)
    assert proc.engine.carried is None and proc.engine.summary()["carried_from"] is None
    assert np.all(proc.engine.baseline_uv2 < 50.0)  # the measured one (a few µV²), not the carried 100


def test_rebaseline_is_refused_once_the_session_ended(rest_mu):
    proc, events, _ = _baseline(MU, rest_mu)
    proc.control("stop", "test")
    proc.control("rebaseline")
    assert any(e.text.startswith("control_refused/rebaseline/") for e in proc.engine.drain_events())


# -- (c) a baseline without clean signal -----------------------------------------------------
def test_a_fully_gated_baseline_is_measured_again_then_the_session_ends_with_the_reason(rest_mu):
    from neurofeed.live.processor import MAX_BASELINE_ATTEMPTS

    x = rest_mu.copy()
    x[CP3] = 187_500.0  # railed all along, never marked bad: every baseline sample is gated
    proc, events, end = _baseline(MU, x, stop_after_fit=1)
    again = [e for e in events if e.startswith("baseline_again/refused: ")]
    assert len(again) == MAX_BASELINE_ATTEMPTS - 1
    assert "0.0 s of clean signal" in again[0] and "[baseline] min_clean_s" in again[0]
    assert "CP3 railed" in again[0]  # the channel that gated it is named
    assert proc.engine.finished and proc.engine.baseline_uv2 is None  # never the gated data
    assert not any(e.startswith("baseline/") for e in events)
    assert events[-1].startswith("session_end/baseline refused: ")
    why = proc.baseline_refused
    assert why and "\n" not in why and f"{MAX_BASELINE_ATTEMPTS} attempts" in why
    assert end == pytest.approx(MAX_BASELINE_ATTEMPTS * 15.0 * FS, abs=8)  # three 15-s baselines, nothing else


def test_a_refused_baseline_that_then_gets_clean_signal_is_kept(rest_mu):
    x = rest_mu.copy()
    x[CP3, : int(15.0 * FS)] = 187_500.0  # railed through the first baseline only
    proc, events, _ = _baseline(MU, x)
    assert sum(e.startswith("baseline_again/refused: ") for e in events) == 1
    assert proc.engine.baseline_fit.clean_s >= 10.0 and not proc.engine.finished


# -- journaled: a session with both kinds of re-measured baseline replays bit-exact ----------
@pytest.mark.parametrize("worker", [False, True])
def test_restarted_baselines_are_journaled_and_replay_bit_exact(tmp_path, worker):
    from tests.test_controls import assert_replays_bit_exact, events_of, run_session

    plan = [(4.0, "mark_bad_channel", "Cz"),  # during the baseline: it starts again (4–14 s)
            (14.5, "mark_bad_channel", "Cz", False),  # after it: a rebaseline is offered
            (15.0, "rebaseline")]
    pipe, states, folder = run_session(tmp_path, plan, refit_in_worker=worker)
    texts = [e["text"] for e in events_of(folder)]
    for t in ("baseline_again/Cz marked bad", "rebaseline_offered/Cz", "rebaseline", "baseline_again/rebaseline"):
        assert t in texts, t
    assert sum(t.startswith("baseline/") for t in texts) == 2
    assert [b.label for b in pipe.engine.blocks][:4] == ["baseline", "baseline", "train", "baseline"]
    assert_replays_bit_exact(folder, states)
