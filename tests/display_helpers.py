"""Shared by the display tests and their Xvfb driver: a recorder of ``Pipeline.control`` calls
(each call is recorded, then applied as usual), and a private Xvfb server where one is installed.
"""

from __future__ import annotations

import threading


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
    """Record every ``Pipeline.control`` call into ``log``, then apply it as usual. ``setattr_``
    is ``monkeypatch.setattr`` in tests (undone afterwards), plain setattr in the driver."""
    import neurofeed.live.pipeline as pl

    real = pl.Pipeline.control

    def control(self, name, *args):
        log.add(name, args)
        return real(self, name, *args)

    setattr_(pl.Pipeline, "control", control)


def start_xvfb(size="1600x900x24", screens=None):
    """Start a private Xvfb server when Xvfb and xdotool are installed and Qt's xcb plugin loads
    with it; returns ``(process, ":N")`` or ``(None, None)`` (the caller then runs offscreen).
    ``screens`` (e.g. ``["1920x1080x24", "1920x1080x24"]``): one X screen each (Qt sees one
    QScreen per X screen), instead of the one screen of ``size``."""
    import shutil
    import subprocess
    import time

    exe = shutil.which("Xvfb")
    if not exe or not shutil.which("xdotool"):
        return None, None
    import os
    import select

    # -displayfd: Xvfb picks a free display number itself and writes it once it accepts
    # connections (no race with another Xvfb started at the same moment by a parallel run)
    layout = [a for i, sz in enumerate(screens or [size]) for a in ("-screen", str(i), sz)]
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(write_fd), *layout, "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_fd,))
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + 30
    while not number.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([read_fd], [], [], 0.5)  # waits on the server's own answer
        if ready:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
    os.close(read_fd)
    if proc.poll() is None and number.strip().isdigit():
        display = f":{int(number)}"
        from neurofeed.ui.qt_platform import qt_platform_problem

        old = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = display
        try:
            problem = qt_platform_problem("xcb")
        finally:
            if old is None:
                del os.environ["DISPLAY"]
            else:
                os.environ["DISPLAY"] = old
        if problem is None:
            return proc, display
    proc.terminate()  # SIGTERM: Xvfb removes its lock file and socket
    proc.wait()
    return None, None
