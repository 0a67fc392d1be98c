"""Views of a dyad session: the shared participant view, the console of both people, the terminal line.

The views only read: each pipeline's ``latest`` :class:`~neurofeed.core.state.FeedbackState` and
``history``, and the monitor's ``latest`` :class:`~neurofeed.dyad.monitor.DyadState` and ``rows``. The
coupling is computed in the acquisition threads (:class:`~neurofeed.dyad.monitor.DyadMonitor`); no DSP
runs here.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from ..ui.display import GENTLE, STANDARD
from ..ui.easing import ease_weight

REFRESH_MS = 33  # both windows redraw at ~30 Hz; the coupling changes over seconds


def _f(v, spec="+.2f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


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


def make_shared_view(codes, low_stimulation: bool = True, easing_s: float = 0.0, coupling_easing_s: float = 0.65):
    """The pair's shared participant view: a calm disc whose size and warmth follow the coupling
    index (0..1), each person's own SI as a small bar beside it, and the cue.

    The disc glides to each coupling value with time constant ``coupling_easing_s`` (``[dyad]``)
    and each bar with ``easing_s`` (``[feedback]``), in seconds whatever the frame rate."""
    from PySide6 import QtCore, QtGui, QtWidgets
    colours = GENTLE if low_stimulation else STANDARD

    class SharedView(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.setWindowTitle("neurofeed — together")
            self.coupling = 0.0  # eased value drawn
            self.eased_at = None
            self.si = [0.5, 0.5]  # 0..1 bar heights (each person's shown feedback)
            self.cue = ""
            self.resize(900, 560)

        def show_state(self, sa, sb, d, now_s=None):
            now = time.monotonic() if now_s is None else now_s
            dt = 0.0 if self.eased_at is None else now - self.eased_at
            self.eased_at = now
            target = d.coupling if d.coupling == d.coupling else 0.0
            self.coupling += ease_weight(dt, coupling_easing_s) * (target - self.coupling)  # nothing flashes
            for i, st in enumerate((sa, sb)):
                v = st.feedback if st.feedback_on and not st.signal_lost else 0.0
                self.si[i] += ease_weight(dt, easing_s) * (v - self.si[i])
            self.cue = "Signal lost — please wait" if (sa.signal_lost or sb.signal_lost) else sa.cue
            self.update()

        def paintEvent(self, _event):
            p = QtGui.QPainter(self)
            p.setRenderHint(QtGui.QPainter.Antialiasing)
            w, h = self.width(), self.height()
            p.fillRect(self.rect(), QtGui.QColor(colours["bg"]))
            a, b = QtGui.QColor(colours["bar"]), QtGui.QColor(colours["reward"])
            m = min(max(self.coupling, 0.0), 1.0)
            col = QtGui.QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * m, a.greenF() + (b.greenF() - a.greenF()) * m,
                                        a.blueF() + (b.blueF() - a.blueF()) * m)
            r = min(w, h) * (0.12 + 0.25 * m)
            p.setPen(QtCore.Qt.NoPen)
            p.setBrush(col)
            p.drawEllipse(QtCore.QPointF(w / 2, h * 0.45), r, r)
            p.setPen(QtGui.QPen(QtGui.QColor(colours["thr"]), 2))
            p.setBrush(QtCore.Qt.NoBrush)
            rmax = min(w, h) * 0.37
            p.drawEllipse(QtCore.QPointF(w / 2, h * 0.45), rmax, rmax)
            for i, x in enumerate((w * 0.08, w * 0.92 - 30)):  # each person's own bar, small, at the side
                top, bottom = h * 0.15, h * 0.75
                p.setPen(QtGui.QPen(QtGui.QColor(colours["thr"]), 1))
                p.drawRect(QtCore.QRectF(x, top, 30, bottom - top))
                fill = (bottom - top) * min(max(self.si[i], 0.0), 1.0)
                p.fillRect(QtCore.QRectF(x + 2, bottom - fill, 26, fill), a)
                p.setPen(QtGui.QColor(colours["text"]))
                p.drawText(QtCore.QRectF(x - 20, bottom + 6, 70, 20), QtCore.Qt.AlignCenter, codes[i])
            p.setPen(QtGui.QColor(colours["text"]))
            f = p.font()
            f.setPointSize(18)
            p.setFont(f)
            p.drawText(QtCore.QRectF(0, h * 0.84, w, h * 0.14), QtCore.Qt.AlignCenter | QtCore.Qt.TextWordWrap, self.cue)
            p.end()

    return SharedView()


def make_dyad_console(session, history_s: float = 120.0):
    """The clinician's console of a dyad: coupling (index, AEC, PLV) over time and both people's SI."""
    import pyqtgraph as pg
    from PySide6 import QtCore, QtWidgets

    class DyadConsole(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.setWindowTitle("neurofeed — dyad console")
            lay = QtWidgets.QVBoxLayout(self)
            self.info = QtWidgets.QLabel()
            self.info.setTextFormat(QtCore.Qt.RichText)
            lay.addWidget(self.info)
            self.cp = pg.PlotWidget(title=f"coupling over the last {session.monitor.window_s:g} s (0..1)")
            self.cp.addLegend()
            self.items = {k: self.cp.plot(pen=pg.mkPen(c, width=w), name=k)
                          for k, c, w in (("index", "#3cc47c", 2), ("AEC", "#4a90c2", 1), ("PLV", "#f2a03d", 1))}
            self.cp.setYRange(-0.2, 1.0)
            lay.addWidget(self.cp)
            self.sp = pg.PlotWidget(title="SI of each person (log10 power / baseline)")
            self.sp.addLegend()
            self.si_items = [self.sp.plot(pen=pg.mkPen(c, width=2), name=code)
                             for code, c in zip(session.codes, ("#4a90c2", "#d35400"))]
            self.sp.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#888")))
            lay.addWidget(self.sp)
            self.resize(1100, 700)

        def refresh(self):
            rows = session.monitor.rows[-int(history_s / max(session.monitor.every / session.monitor.sfreq, 1e-3)):]
            if rows:
                arr = np.asarray(rows, dtype=float)
                for k, c in (("index", 3), ("AEC", 1), ("PLV", 2)):
                    ok = np.isfinite(arr[:, c])
                    self.items[k].setData(arr[ok, 0], arr[ok, c])
            for item, role in zip(self.si_items, ("a", "b")):
                t, si, _, _ = session.pipelines[role].history.ordered()
                ok = np.isfinite(t) & np.isfinite(si)
                if ok.any():
                    ok &= t > t[ok].max() - history_s
                item.setData(t[ok], si[ok])
            sa, sb = session.pipelines["a"].latest, session.pipelines["b"].latest
            d = session.monitor.latest
            people = " · ".join(f"<b>{code}</b> SI {_f(st.si_bar)} thr {_f(st.threshold)}"
                                f"{' <b style=color:#d35400>gate</b>' if st.gated else ''}"
                                f"{' <b style=color:#c0392b>SIGNAL LOST</b>' if st.signal_lost else ''}"
                                for code, st in zip(session.codes, (sa, sb)))
            self.info.setText(f"<b>{sa.block_label or '—'}</b> ({sa.block_kind or '—'}) · left "
                              f"{_f(sa.block_left_s, '.0f')} s · {people} · coupling <b>{_f(d.coupling, '.2f')}</b> "
                              f"(AEC {_f(d.aec)}, PLV {_f(d.plv, '.2f')})")

    return DyadConsole()


def run_dyad_windows(session, participant_screen=None, seconds: float | None = None):
    """Run a dyad session with the shared view and the console until it ends or a window closes.

    ``seconds`` stops it after that long (screenshots, tests)."""
    from PySide6 import QtCore, QtGui

    from ..ui.display import app
    qapp = app()
    low = session.protocol.feedback.style == "low-stimulation"
    fb = session.protocol.feedback
    shared = make_shared_view(session.codes, low, fb.easing_s, session.protocol.dyad.coupling_easing_s)
    console = make_dyad_console(session)
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
    return shared, console
