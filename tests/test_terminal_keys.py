"""The headless terminal view takes the windows' keys: a real `neurofeed session --display terminal`
on a pseudo-terminal (its controlling terminal), keys typed into it, the controls found in the
session's journal, and the terminal's settings restored afterwards (after Esc and after Ctrl-C)."""

import fcntl
import os
import subprocess
import sys
import termios
import threading
import time
import types
from pathlib import Path

import numpy as np

from neurofeed.ui.controls import KEYMAP, NUDGE_SI
from neurofeed.ui.terminal import TerminalControls, format_state, key_names
from tests.conftest import ROOT


class _Pty:
    """A session on a pseudo-terminal: what it prints is collected, keys are typed into it."""

    def __init__(self, tmp_path, scale="2"):
        self.master, self.slave = os.openpty()
        self.before = termios.tcgetattr(self.slave)
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env["TERM"] = "xterm"
        exe = Path(sys.executable).parent / "neurofeed"

        def controlling_tty():  # the pty becomes the child's controlling terminal: Ctrl-C is a SIGINT
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [str(exe), "session", "--board", "simulated", "--protocol", "demo", "--participant", "T",
             "--seconds-scale", scale, "--no-lsl", "--display", "terminal", "--out", str(tmp_path / "rec")],
            stdin=self.slave, stdout=self.slave, stderr=self.slave, cwd=ROOT, env=env,
            preexec_fn=controlling_tty)
        self.out = ""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.events = lambda: "".join(p.read_text() for p in (tmp_path / "rec").rglob("events.jsonl"))

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.out += data.decode("utf-8", "replace")

    def wait_for(self, text, start=0, timeout=120):
        """Wait until ``text`` appears in the output after position ``start``; returns its end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # another process's output: polled
            with self.lock:
                i = self.out.find(text, start)
            if i >= 0:
                return i + len(text)
            assert self.proc.poll() is None or text in self.out, self.out[-2000:]
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never came; the output ends: {self.out[-2000:]!r}")

    def type(self, keys, then, start):
        os.write(self.master, keys.encode())
        return self.wait_for(then, start)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        os.close(self.slave)
        os.close(self.master)


def test_the_terminal_view_takes_the_windows_keys(tmp_path):
    t = _Pty(tmp_path)
    try:
        pos = t.wait_for("keys: Space pause feedback")
        pos = t.wait_for("left", pos)  # the status line runs
        assert termios.tcgetattr(t.slave)[3] & termios.ICANON == 0  # cbreak while the session runs
        for keys, note in ((" ", "feedback paused"), (" ", "feedback resumed"), ("m", "marker"),
                           ("l", "threshold locked"), ("\x1b[A", f"threshold nudged +{NUDGE_SI:g}"),
                           ("e", "block extended"), ("]", "channel C3"), ("b", "C3 is a target channel"),
                           ("]", "channel Cz"), ("b", "Cz marked bad"), ("n", "Clinician note"),
                           ("C4 re-gelled\n", "note 1 saved"), ("\x1b", "End the session now?"),
                           ("x", "not ended"), ("\x1b", "End the session now?"), ("y", "Session summary")):
            pos = t.type(keys, note, pos)
        assert t.proc.wait(60) == 0
        events = t.events()
        for text in ('"pause"', '"resume"', "marker/operator", "threshold_lock", "threshold_nudge/",
                     "extend_block/", "bad_channel/Cz", "note/C4 re-gelled", "ended by operator (Esc)"):
            assert text in events, text
        assert "bad_channel/C3" not in events
        assert termios.tcgetattr(t.slave) == t.before  # the terminal as it was
    finally:
        t.close()


def test_ctrl_c_in_the_terminal_view_restores_the_terminal(tmp_path):
    t = _Pty(tmp_path)
    try:
        pos = t.wait_for("keys: Space pause feedback")
        t.wait_for("left", pos)
        os.write(t.master, b"\x03")  # Ctrl-C: SIGINT to the session on its controlling terminal
        assert t.proc.wait(60) == 0
        assert "interrupted (Ctrl-C)" in t.events()
        assert termios.tcgetattr(t.slave) == t.before
    finally:
        t.close()


def test_one_key_map_for_both_views():
    from neurofeed.ui.display import Views

    assert key_names("\x1b[A\x1b[B \x1by]") == ["up", "down", "space", "escape", "y", "]"]
    for action in set(KEYMAP.values()):  # every action of the shared map exists in both views
        assert callable(getattr(Views, action)) and callable(getattr(TerminalControls, action)), action


def test_the_status_line_shows_the_si_that_decides_the_reward_with_its_rule():
    # a down block: reward when the SI is above the threshold; the bar (smoothed) differs and says so
    st = types.SimpleNamespace(block_label="train", block_kind="integration", block_left_s=10.0,
                               targets=("C3", "C4"), power_uv2=np.array([2.0, 3.0]), si=np.array([-0.2, -0.3]),
                               si_combined=-0.25, si_bar=-0.62, threshold=-0.35, direction="down", reward=True,
                               paused=False, gated=False, gate_reasons=(), signal_lost=False)
    line = format_state(st)
    assert "SI -0.25 thr -0.35 (down: reward when SI is above thr)" in line
    assert "bar SI (smoothed) -0.62" in line and "REWARD" in line
    st.direction, st.si_bar = "up", -0.25
    line = format_state(st)
    assert "(up: reward when SI is below thr)" in line and "bar SI" not in line
