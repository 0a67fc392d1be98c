"""Shared by the display tests and their Xvfb driver: a recorder of ``Pipeline.control`` calls,
and stand-ins for the two interfaces other branches deliver (CONTRACTS.md) while this branch
still has the old ones:

- ``Pipeline.control(name, *args)`` (engine branch): when missing, ``pause`` and ``marker`` go
  through the old queued calls and the other names are only recorded;
- ``RingBuffer.read_last(n, out=None, out_ts=None) -> (data, ts)`` (reliability branch): when
  missing, a subclass copies the old read into the reader's arrays.

Where the real interfaces exist (after the merge) they are used as they are and only recorded.
"""

from __future__ import annotations

import inspect
import threading

import numpy as np


class ControlLog:
    """Every ``Pipeline.control`` call of this process, in order: ``[(name, args), ...]``."""

    def __init__(self):
        self.calls: list = []
        self.lock = threading.Lock()

    def add(self, name, args):
        with self.lock:
            self.calls.append((name, tuple(args)))

    def names(self):
        with self.lock:
            return [n for n, _ in self.calls]

    def find(self, name):
        with self.lock:
            return [a for n, a in self.calls if n == name]

    def clear(self):
        with self.lock:
            self.calls.clear()


def install(log: ControlLog, setattr_=setattr):
    """Record ``Pipeline.control`` into ``log`` (and stand in where the interfaces are missing).
    ``setattr_`` is ``monkeypatch.setattr`` in tests (undone afterwards), plain setattr in the driver."""
    import neurofeed.pipeline as pl
    from neurofeed.buffer import RingBuffer

    real = getattr(pl.Pipeline, "control", None)

    def control(self, name, *args):
        log.add(name, args)
        if real is not None:
            return real(self, name, *args)
        if name == "pause":
            self.call(self.engine.set_paused, *args)
        elif name == "marker":
            self.call(self.engine.marker, *args)

    setattr_(pl.Pipeline, "control", control)
    if "out_ts" not in inspect.signature(RingBuffer.read_last).parameters:
        class NewApiRing(RingBuffer):
            def read_last(self, n, out=None, out_ts=None):
                x = np.array(super().read_last(n))
                m = x.shape[1]
                out = np.empty((self.n_channels, m)) if out is None else out
                out_ts = np.empty(m) if out_ts is None else out_ts
                out[:, :m] = x
                out_ts[:m] = np.nan  # no timestamps in the old ring
                return out[:, :m], out_ts[:m]

        setattr_(pl, "RingBuffer", NewApiRing)


def start_xvfb(size="1600x900x24"):
    """Start a private Xvfb server when Xvfb and xdotool are installed and Qt's xcb plugin loads
    with it; returns ``(process, ":N")`` or ``(None, None)`` (the caller then runs offscreen)."""
    import shutil
    import subprocess
    import time
    from pathlib import Path

    exe = shutil.which("Xvfb")
    if not exe or not shutil.which("xdotool"):
        return None, None
    for n in range(120, 160):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen([exe, f":{n}", "-screen", "0", size, "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None and not Path(f"/tmp/.X11-unix/X{n}").exists():
            time.sleep(0.02)  # waiting for a server's socket: there is no event to wait on
        if proc.poll() is None and Path(f"/tmp/.X11-unix/X{n}").exists():
            import os

            from neurofeed.feedback.qt_platform import qt_platform_problem

            old = os.environ.get("DISPLAY")
            os.environ["DISPLAY"] = f":{n}"
            try:
                problem = qt_platform_problem("xcb")
            finally:
                if old is None:
                    del os.environ["DISPLAY"]
                else:
                    os.environ["DISPLAY"] = old
            if problem is None:
                return proc, f":{n}"
        proc.terminate()  # SIGTERM: Xvfb removes its lock file and socket
        proc.wait()
        return None, None
    return None, None
