"""Views of a dyad session: the terminal line, and the windows (the shared participant view and the
console of both people, :mod:`neurofeed.dyad.windows`, which imports Qt only when they are shown).

The views only read: each pipeline's ``latest`` :class:`~neurofeed.core.state.FeedbackState` and
``history``, and the monitor's ``latest`` :class:`~neurofeed.dyad.monitor.DyadState` and ``rows``. The
coupling is computed in the acquisition threads (:class:`~neurofeed.dyad.monitor.DyadMonitor`); no DSP
runs here.
"""

from __future__ import annotations

import sys
import time

from ..ui.controls import number_text as _f

REFRESH_MS = 33  # both windows redraw at ~30 Hz; the coupling changes over seconds


def format_dyad(codes, sa, sb, d) -> str:
    """One status line: block and time left, each person's SI (bar-smoothed) and gate, the coupling.

    Parameters
    ----------
    codes : (str, str)
    sa, sb : FeedbackState
        The latest state of each person.
    d : DyadState
    """
    parts = [f"{sa.block_label or '-':<12.12s} left {_f(sa.block_left_s, '5.1f')} s"]
    for code, st in zip(codes, (sa, sb)):
        flag = " gate" if st.gated else (" LOST" if st.signal_lost else "")
        parts.append(f"{code} SI {_f(st.si_bar)}{flag}")
    parts.append(f"coupling {_f(d.coupling, '.2f')} (AEC {_f(d.aec, '+.2f')} PLV {_f(d.plv, '.2f')})")
    return " | ".join(parts)


class DyadTerminalView:
    """Prints both people and their coupling a few times a second until the dyad session ends."""

    def __init__(self, session, stream=None, interval_s: float | None = None):
        self.session = session
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.interval_s = interval_s or (0.25 if self.tty else 1.0)
        self.lines = 0

    def line(self) -> str:
        s = self.session
        return format_dyad(s.codes, s.pipelines["a"].latest, s.pipelines["b"].latest, s.monitor.latest)

    def run_until_done(self) -> None:
        s = self.session
        while s.running:
            if s.pipelines["a"].latest.seq and s.pipelines["b"].latest.seq:
                text = self.line()
                self.stream.write(("\r" + text[:200] + "\033[K") if self.tty else text + "\n")
                self.stream.flush()
                self.lines += 1
            s.wait(self.interval_s)
        if self.tty:
            self.stream.write("\n")


def run_dyad_windows(session, participant_screen=None, seconds: float | None = None):
    """Run a dyad session with the shared view and the console until it ends or a window closes.

    ``seconds`` stops it after that long (screenshots, tests)."""
    from PySide6 import QtCore, QtGui

    from ..ui.display import app
    from .windows import DyadConsole, SharedView

    qapp = app()
    fb = session.protocol.feedback
    shared = SharedView(session.codes, fb.style == "low-stimulation", fb.easing_s,
                        session.protocol.dyad.coupling_easing_s)
    console = DyadConsole(session)
    screens = QtGui.QGuiApplication.screens()
    if participant_screen is not None and 0 <= participant_screen < len(screens):
        shared.setGeometry(screens[participant_screen].geometry())
    timer = QtCore.QTimer()
    t_end = None if seconds is None else time.monotonic() + seconds

    def tick():
        if not session.running or (t_end is not None and time.monotonic() > t_end):
            timer.stop()
            qapp.quit()
            return
        sa, sb = session.pipelines["a"].latest, session.pipelines["b"].latest
        shared.show_state(sa, sb, session.monitor.latest)
        console.refresh()

    timer.timeout.connect(tick)
    shared.closeEvent = lambda e: (session.stop("window closed"), e.accept())
    console.closeEvent = lambda e: (session.stop("window closed"), e.accept())
    shared.show()
    console.show()
    session.start()
    timer.start(REFRESH_MS)
    qapp.exec()
    timer.stop()
    # as in ui.display.run_windows: a Quit event posted again after exec() returned would end the
    # next event loop of this process at once
    QtCore.QCoreApplication.removePostedEvents(None, QtCore.QEvent.Type.Quit)
    return shared, console
