"""A live terminal view for machines without a display (and for `make run` headless).

On a TTY it takes the windows' keys (:data:`~neurofeed.ui.controls.KEYS`: Space, P, L, ↑/↓,
S, E, [ ], B, D, N, M, Esc): stdin is read in cbreak mode (no echo, no line buffering), without
blocking, and restored on exit, Ctrl-C included.
"""

from __future__ import annotations

import math
import os
import select
import sys
import threading
import time

from .controls import EXTEND_S, KEYMAP, NUDGE_SI, si_text


def _fmt(v, spec="+.2f"):
    return "  —  " if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_state(st, blinded: bool = False) -> str:
    """One status line: block, time left, the SI that decides the reward with the threshold and the
    rule between them, reward, the SI and mu power at each target, gate.

    ``blinded`` (a blinded trial session, neurofeed.live.sham): the live SI, threshold and reward are
    not shown (they would tell a sham arm from a real one)."""
    parts = [f"{st.block_label or '-':<14.14s} {st.block_kind or '':<13.13s}",
             f"left {_fmt(st.block_left_s, '5.1f')} s"]
    if blinded:
        parts.append("SI blinded")
        return " | ".join(parts + (["gate:" + ",".join(st.gate_reasons)] if st.gated else [])
                          + (["SIGNAL LOST"] if st.signal_lost else []))
    parts.append(si_text(st))
    parts.append("REWARD" if st.reward else ("paused" if st.paused else "      "))
    parts.append("per site " + " ".join(f"{name} SI {_fmt(float(si))} {p:.2f} µV²"
                                        for name, p, si in zip(st.targets, st.power_uv2, st.si)))
    if st.gated:
        parts.append("gate:" + ",".join(st.gate_reasons))
    if st.signal_lost:
        parts.append("SIGNAL LOST")
    return " | ".join(parts)


def key_names(data: str) -> list[str]:
    """The key names (:data:`~neurofeed.ui.controls.KEYMAP`'s) in what a terminal sent:
    ``"\\x1b[A"`` is ``up``, a lone ``"\\x1b"`` ``escape``, ``" "`` ``space``, else the character."""
    out, i = [], 0
    arrows = {"A": "up", "B": "down", "C": "right", "D": "left"}
    while i < len(data):
        c = data[i]
        if c == "\x1b" and data[i + 1:i + 2] in ("[", "O") and i + 2 < len(data):
            out.append(arrows.get(data[i + 2], ""))
            i += 3
            continue
        out.append({"\x1b": "escape", " ": "space", "\r": "enter", "\n": "enter"}.get(c, c.lower()))
        i += 1
    return [k for k in out if k]


class TerminalControls:
    """The actions of the shared key map on a pipeline, for the terminal view (the windows' are
    :class:`~neurofeed.ui.display.Views`' methods of the same names).

    ``ask_line(prompt)`` reads a line (a note); ``confirm`` is asked through the next key (y)."""

    def __init__(self, pipeline, ask_line=None):
        self.pipeline = pipeline
        self.names = list(pipeline.source.ch_names)
        self.channel = 0
        self.bad: set = set()
        self.notes = 0
        self.status_note = ""
        self.confirming = False
        self.ask_line = ask_line or (lambda prompt: input(prompt))

    def key(self, name: str) -> None:
        """One key: a pending "end the session?" takes y (anything else cancels); else its action."""
        if self.confirming:
            self.confirming = False
            if name == "y":
                self.pipeline.stop("ended by operator (Esc)")
                self.status_note = "session ended"
            else:
                self.status_note = "not ended"
            return
        action = KEYMAP.get(name)
        if action is not None:
            getattr(self, action)()

    def control(self, name, *args) -> None:
        self.pipeline.control(name, *args)

    def toggle_pause(self):
        self.control("pause", not self.pipeline.latest.paused)
        self.status_note = "feedback " + ("resumed" if self.pipeline.latest.paused else "paused")

    def toggle_schedule(self):
        self.control("pause_schedule", not self.pipeline.latest.schedule_paused)
        self.status_note = "schedule " + ("resumed" if self.pipeline.latest.schedule_paused else "paused")

    def toggle_lock(self):
        self.control("lock_threshold", not self.pipeline.latest.threshold_locked)
        self.status_note = "threshold " + ("unlocked" if self.pipeline.latest.threshold_locked else "locked")

    def _nudge(self, sign):
        self.control("nudge_threshold", sign * NUDGE_SI)
        self.status_note = f"threshold nudged {sign * NUDGE_SI:+g}"

    def nudge_up(self):
        self._nudge(+1)

    def nudge_down(self):
        self._nudge(-1)

    def skip_block(self):
        self.control("skip_block")
        self.status_note = "block skipped"

    def extend_block(self):
        self.control("extend_block", EXTEND_S)
        self.status_note = f"block extended +{EXTEND_S:g} s"

    def _select(self, step):
        self.channel = (self.channel + step) % len(self.names)
        name = self.names[self.channel]
        self.status_note = f"channel {name}{' (bad)' if name in self.bad else ''}: B marks it bad/good"

    def select_previous(self):
        self._select(-1)

    def select_next(self):
        self._select(+1)

    def toggle_bad_channel(self):
        name = self.names[self.channel]
        bad = name not in self.bad
        if bad and name in self.pipeline.processor.chain.targets:
            self.status_note = f"{name} is a target channel: re-seat it rather than marking it bad"
            return
        self.control("mark_bad_channel", name, bad)
        (self.bad.add if bad else self.bad.discard)(name)
        self.status_note = f"{name} marked {'bad' if bad else 'good'}"

    def next_delay(self):
        proc = self.pipeline.processor
        designs = sorted(getattr(proc, "accuracy_curve", None) or {})
        if proc.chain.estimator_name not in ("wcfir", "cfir") or not designs:
            self.status_note = (f"the {proc.chain.estimator_name} estimator has no designed delay"
                                if proc.chain.estimator_name not in ("wcfir", "cfir")
                                else "the delay designs are offered once the baseline has ended")
            return
        now = min(range(len(designs)), key=lambda i: abs(designs[i] - proc.chain.delay_s))
        d = float(designs[(now + 1) % len(designs)])
        self.control("set_delay", d)
        self.status_note = f"delay design {1000 * d:.0f} ms"

    def add_note(self):
        text = (self.ask_line("\nClinician note (saved in the recording; Enter to save, empty to cancel): ")
                or "").strip()
        if text:
            self.control("note", text)
            self.notes += 1
            self.status_note = f"note {self.notes} saved"
        else:
            self.status_note = "note cancelled"

    def marker(self):
        self.control("marker", "operator")
        self.status_note = "marker"

    def rebaseline(self):
        self.control("rebaseline")
        self.status_note = "re-baseline: the baseline is measured again"

    def end_with_confirmation(self):
        self.confirming = True
        self.status_note = "End the session now? The recording is closed safely. y = yes, any other key = no"


class _Cbreak:
    """stdin in cbreak mode (keys one by one, no echo; Ctrl-C still interrupts) while inside;
    its settings restored on leaving, whatever ends it."""

    def __init__(self, fd: int):
        self.fd = fd
        self.saved = None

    def __enter__(self):
        import termios
        import tty

        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)
        return self

    def restore(self):
        import termios

        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def __exit__(self, *exc):
        self.restore()
        return False


class TerminalView:
    """Prints the latest state a few times per second (reads ``pipeline.latest``; no DSP) and, when
    stdin is a terminal, takes the operator's keys.

    On a TTY the line is rewritten in place; otherwise one line per second is printed.
    ``keys``: the stream keys are read from (default: stdin when it is a TTY; None: no keys).
    """

    def __init__(self, pipeline, stream=None, interval_s: float | None = None, keys="auto"):
        self.pipeline = pipeline
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.interval_s = interval_s or (0.2 if self.tty else 1.0)
        self._stop = threading.Event()
        self.lines = 0
        if keys == "auto":
            keys = sys.stdin if sys.stdin is not None and sys.stdin.isatty() else None
        self.keys = keys
        self.controls = None
        self._cbreak = None
        if keys is not None:
            self.controls = TerminalControls(pipeline, ask_line=self._ask_line)

    def _ask_line(self, prompt: str) -> str:
        """A line of text (a note): the terminal back in line mode for it, then keys again."""
        import termios
        import tty

        fd = self.keys.fileno()
        self._cbreak.restore()
        try:
            self.stream.write(prompt)
            self.stream.flush()
            return self.keys.readline() if hasattr(self.keys, "readline") else ""
        finally:
            tty.setcbreak(fd, termios.TCSANOW)

    def _wait_for_keys(self, timeout_s: float) -> None:
        """Sleep ``timeout_s``, acting on every key that arrives meanwhile."""
        if self.controls is None:
            time.sleep(timeout_s)
            return
        fd = self.keys.fileno()
        end = time.monotonic() + timeout_s
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return
            data = os.read(fd, 64).decode("utf-8", "replace")
            if not data:  # the terminal went away
                self.controls = None
                return
            for name in key_names(data):
                self.controls.status_note = ""
                self.controls.key(name)
                if self.controls.status_note:  # what the key did, on its own line (the status line goes on)
                    self.stream.write(("\n" if self.tty else "") + self.controls.status_note + "\n")
                    self.stream.flush()
            return  # show the effect at once

    def run_until_done(self) -> None:
        """Print until the pipeline stops (the session ended, Esc, Ctrl-C or an error)."""
        if self.controls is None:
            self._run()
            return
        from .controls import KEY_HINTS

        self.stream.write("keys: " + " · ".join(f"{k} {v}" for k, v in KEY_HINTS) + "\n")
        with _Cbreak(self.keys.fileno()) as cb:  # restored on any exit, KeyboardInterrupt included
            self._cbreak = cb
            self._run()

    def _run(self) -> None:
        p = self.pipeline
        curve_shown = False
        while p.running:
            proc = getattr(p, "processor", None)
            if not curve_shown and getattr(proc, "accuracy_curve", None):  # once, at the baseline's end
                from ..dsp.accuracy import curve_summary

                curve_shown = True
                text = curve_summary(proc.accuracy_curve, proc.effective_delays, proc.chain.delay_s)
                self.stream.write(("\n" if self.tty else "") + text + "\n")
            st = p.latest
            if st.seq:
                line = format_state(st, getattr(p, "blinded", False))
                if self.tty:
                    self.stream.write("\r" + line[:200] + "\033[K")
                else:
                    self.stream.write(line + "\n")
                self.stream.flush()
                self.lines += 1
            self._wait_for_keys(self.interval_s)
        if self.tty:
            self.stream.write("\n")
