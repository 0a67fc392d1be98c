"""The dyad's windows: the pair's shared participant view and the clinician's console of both people.

This module imports PySide6 and pyqtgraph: :func:`~neurofeed.dyad.view.run_dyad_windows` imports it
when windows are shown (the terminal view runs without Qt). The views only read (see
:mod:`neurofeed.dyad.view`); the colours, the easing and the console's labels are the one
participant view's and console's (:mod:`neurofeed.ui`).
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ..ui.console import rich_label
from ..ui.controls import number_text as _f
from ..ui.easing import EasingClock, eased
from ..ui.palette import colours as palette
from ..ui.participant import blend

__all__ = ["DyadConsole", "SharedView"]


class SharedView(QtWidgets.QWidget):
    """The pair's shared participant view: a calm disc whose size and warmth follow the coupling
    index (0..1), each person's own SI as a small bar beside it, and the cue.

    Parameters
    ----------
    codes : (str, str)
        The two participants' codes, written under their bars.
    low_stimulation : bool
        The gentle colours.
    easing_s, coupling_easing_s : float
        The disc glides to each coupling value with time constant ``coupling_easing_s`` (s,
        ``[dyad]``) and each bar with ``easing_s`` (s, ``[feedback]``), whatever the frame rate.
    """

    def __init__(self, codes, low_stimulation: bool = True, easing_s: float = 0.0, coupling_easing_s: float = 0.65):
        super().__init__()
        self.codes = codes
        self.colours = palette(low_stimulation)
        self.easing_s, self.coupling_easing_s = easing_s, coupling_easing_s
        self.setWindowTitle("neurofeed — together")
        self.coupling = 0.0  # eased value drawn
        self.clock = EasingClock()
        self.si = [0.5, 0.5]  # 0..1 bar heights (each person's shown feedback)
        self.cue = ""
        self.resize(900, 560)

    def show_state(self, sa, sb, d, now_s=None):
        """Glide towards both people's states ``sa``, ``sb`` and the coupling ``d`` at ``now_s``
        (``time.monotonic()``; default now), then repaint."""
        dt = self.clock.step(time.monotonic() if now_s is None else now_s)
        target = d.coupling if d.coupling == d.coupling else 0.0
        self.coupling = eased(self.coupling, target, dt, self.coupling_easing_s)  # nothing flashes
        for i, st in enumerate((sa, sb)):
            v = st.feedback if st.feedback_on and not st.signal_lost else 0.0
            self.si[i] = eased(self.si[i], v, dt, self.easing_s)
        self.cue = "Signal lost — please wait" if (sa.signal_lost or sb.signal_lost) else sa.cue
        self.update()

    def paintEvent(self, _event):
        c = self.colours
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.Antialiasing)
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QtGui.QColor(c["bg"]))
        bar = QtGui.QColor(c["bar"])
        m = min(max(self.coupling, 0.0), 1.0)
        r = min(w, h) * (0.12 + 0.25 * m)
        p.setPen(QtCore.Qt.NoPen)
        p.setBrush(blend(bar, QtGui.QColor(c["reward"]), m))
        p.drawEllipse(QtCore.QPointF(w / 2, h * 0.45), r, r)
        p.setPen(QtGui.QPen(QtGui.QColor(c["thr"]), 2))
        p.setBrush(QtCore.Qt.NoBrush)
        rmax = min(w, h) * 0.37
        p.drawEllipse(QtCore.QPointF(w / 2, h * 0.45), rmax, rmax)
        for i, x in enumerate((w * 0.08, w * 0.92 - 30)):  # each person's own bar, small, at the side
            top, bottom = h * 0.15, h * 0.75
            p.setPen(QtGui.QPen(QtGui.QColor(c["thr"]), 1))
            p.drawRect(QtCore.QRectF(x, top, 30, bottom - top))
            fill = (bottom - top) * min(max(self.si[i], 0.0), 1.0)
            p.fillRect(QtCore.QRectF(x + 2, bottom - fill, 26, fill), bar)
            p.setPen(QtGui.QColor(c["text"]))
            p.drawText(QtCore.QRectF(x - 20, bottom + 6, 70, 20), QtCore.Qt.AlignCenter, self.codes[i])
        p.setPen(QtGui.QColor(c["text"]))
        f = p.font()
        f.setPointSize(18)
        p.setFont(f)
        p.drawText(QtCore.QRectF(0, h * 0.84, w, h * 0.14), QtCore.Qt.AlignCenter | QtCore.Qt.TextWordWrap, self.cue)
        p.end()


class DyadConsole(QtWidgets.QWidget):
    """The clinician's console of a dyad: coupling (index, AEC, PLV) over time and both people's SI.

    Parameters
    ----------
    session : DyadSession
        Read only: its monitor's rows and latest coupling, each person's pipeline.
    history_s : float
        Seconds of history in both plots.
    """

    def __init__(self, session, history_s: float = 120.0):
        super().__init__()
        self.session, self.history_s = session, history_s
        self.setWindowTitle("neurofeed — dyad console")
        lay = QtWidgets.QVBoxLayout(self)
        self.info = rich_label()
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
        """Redraw both plots and the status line from the session's latest rows and states."""
        session, history_s = self.session, self.history_s
        monitor = session.monitor
        rows = monitor.rows[-int(history_s / max(monitor.every / monitor.sfreq, 1e-3)):]
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
        self.info.setText(self._status_text())

    def _status_text(self) -> str:
        """Block and time left, each person's SI, threshold and flags, the coupling (HTML)."""
        session = self.session
        sa, sb = session.pipelines["a"].latest, session.pipelines["b"].latest
        d = session.monitor.latest
        people = " · ".join(f"<b>{code}</b> SI {_f(st.si_bar)} thr {_f(st.threshold)}"
                            f"{' <b style=color:#d35400>gate</b>' if st.gated else ''}"
                            f"{' <b style=color:#c0392b>SIGNAL LOST</b>' if st.signal_lost else ''}"
                            for code, st in zip(session.codes, (sa, sb)))
        return (f"<b>{sa.block_label or '—'}</b> ({sa.block_kind or '—'}) · left "
                f"{_f(sa.block_left_s, '.0f')} s · {people} · coupling <b>{_f(d.coupling, '.2f')}</b> "
                f"(AEC {_f(d.aec)}, PLV {_f(d.plv, '.2f')})")
