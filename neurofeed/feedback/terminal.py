"""A live terminal view for machines without a display (and for `make run` headless)."""

from __future__ import annotations

import math
import sys
import threading
import time


def _fmt(v, spec="+.2f"):
    return "  —  " if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_state(st, blinded: bool = False) -> str:
    """One status line: block, time left, mu power and SI at each target, threshold, reward, gate.

    ``blinded`` (a blinded trial session, neurofeed.sham): the live SI, threshold and reward are
    not shown (they would tell a sham arm from a real one)."""
    parts = [f"{st.block_label or '-':<14.14s} {st.block_kind or '':<13.13s}",
             f"left {_fmt(st.block_left_s, '5.1f')} s"]
    if blinded:
        parts.append("SI blinded")
        return " | ".join(parts + (["gate:" + ",".join(st.gate_reasons)] if st.gated else [])
                          + (["SIGNAL LOST"] if st.signal_lost else []))
    for name, p, si in zip(st.targets, st.power_uv2, st.si):
        parts.append(f"{name} {p:7.2f} µV² SI {_fmt(float(si))}")
    parts.append(f"SI {_fmt(st.si_combined)} thr {_fmt(st.threshold)}")
    parts.append("REWARD" if st.reward else ("paused" if st.paused else "      "))
    if st.gated:
        parts.append("gate:" + ",".join(st.gate_reasons))
    if st.signal_lost:
        parts.append("SIGNAL LOST")
    return " | ".join(parts)


class TerminalView:
    """Prints the latest state a few times per second (reads ``pipeline.latest``; no DSP).

    On a TTY the line is rewritten in place; otherwise one line per second is printed.
    """

    def __init__(self, pipeline, stream=None, interval_s: float | None = None):
        self.pipeline = pipeline
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.interval_s = interval_s or (0.2 if self.tty else 1.0)
        self._stop = threading.Event()
        self.lines = 0

    def run_until_done(self) -> None:
        """Print until the pipeline stops (the session ended, Ctrl-C or an error)."""
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
            time.sleep(self.interval_s)
        if self.tty:
            self.stream.write("\n")
