"""Participant view and clinician console (pyqtgraph + PySide6).

A new state is painted in the participant view as soon as it is published: the acquisition
thread emits a queued Qt signal (a pipeline sink that does nothing else), and the GUI thread
repaints the bar synchronously (painted and flushed to the window system before anything else
runs), only where it changed. Right after that frame the console is updated (half of its
plots per state), so its painting falls in the gap before the next state instead of in front of
it. One ``QTimer`` at ~60 Hz animates the stimulus (repainting only where the dots were and
are) and eases the bar. Plot items are created once and updated with ``setData``;
their axes have fixed ranges (relative time) so the axes are not re-laid out every frame. No DSP
runs here: views read the latest ``FeedbackState``, the state history and ring-buffer snapshots
(spectra come from :class:`SpectrumWorker`).

Operator controls (keys, with hints on the console) go to the engine through
``pipeline.control(name, *args)`` (queued and applied in the acquisition thread, journaled).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..dsp.quality import flag_names
from .controls import EXTEND_S, KEY_HINTS, KEYMAP, NUDGE_SI, si_text
from .easing import ease_weight
from .spectra import SpectrumWorker
from .stimuli import StimulusPlayer
from .traces import TraceDisplay, make_traces_panel

TICK_MS = 16  # the one QTimer (~60 Hz): stimulus animation, bar easing, console; new states wake the GUI themselves
STIMULUS_EVERY = 1  # the stimulus is animated every tick
CONSOLE_PARTS = ("traces", "si", "text", "spectrum")
# after each participant frame, one group of console parts (each plot at half the state rate, e.g.
# 12.5 Hz for 25 states/s), at most every CONSOLE_MIN_S; the timer takes over when states stop
CONSOLE_GROUPS = (("traces", "text"), ("si", "spectrum"))
CONSOLE_MIN_S = 1 / 30
CONSOLE_FALLBACK_S = 0.1
TEXT_EVERY_S = 0.25  # console text (status line, quality table) at 4 Hz: text layout is costly
TRACE_S = 5.0  # seconds of EEG in the console
STANDARD = {"bg": "#101820", "bar": "#4a90c2", "reward": "#3cc47c", "thr": "#f2f2f2", "text": "#f2f2f2",
            "stim_bg": "#000000", "dot": "#ffffff"}
GENTLE = {"bg": "#e9e4da", "bar": "#9fb4c7", "reward": "#a8c9a4", "thr": "#6b6b6b", "text": "#3d3d3d",
          "stim_bg": "#26292e", "dot": "#f4f1ea"}



def _qt():
    from PySide6 import QtCore, QtGui, QtWidgets

    return QtCore, QtGui, QtWidgets


class FrameStats:
    """Publication → painted-and-flushed latency of participant frames (ring of the last 2**16, ms)."""

    def __init__(self, capacity=1 << 16):
        self.ms = np.zeros(capacity)
        self.n = 0

    def add(self, ms):
        self.ms[self.n % self.ms.size] = ms
        self.n += 1

    def summary(self):
        if not self.n:
            return None
        v = self.ms[: min(self.n, self.ms.size)]
        return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "frames": int(self.n)}


def window_layout(screens, participant_screen=None):
    """Where the two windows go.

    Parameters
    ----------
    screens : list of (x, y, width, height)
        Available geometry of each screen (pixels), primary first.
    participant_screen : int, optional
        Screen for the participant view (default: the second screen when there are two or more).

    Returns
    -------
    dict
        ``{"participant": (x, y, w, h), "participant_fullscreen": bool, "console": (x, y, w, h),
        "warning": str, "screens": {"participant": i, "console": j}}``: on one screen the console (left, 58 %) and the participant view (right)
        tile side by side; with several, the participant view is full screen on its screen and
        the console on the first other screen.
    """
    warning = ""
    n = len(screens)
    if participant_screen is not None and not 0 <= participant_screen < n:
        warning = (f"--participant-screen {participant_screen}: there {'is' if n == 1 else 'are'} {n} "
                   f"screen{'s' if n != 1 else ''} (0..{n - 1}); the windows are tiled instead.")
        participant_screen = None if n < 2 else 1
    if participant_screen is None and n >= 2:
        participant_screen = 1
    if participant_screen is not None and n >= 2:
        console_screen = 0 if participant_screen != 0 else 1
        x, y, w, h = screens[console_screen]
        return {"participant": tuple(screens[participant_screen]), "participant_fullscreen": True,
                "console": (x, y, w, h), "warning": warning,
                "screens": {"participant": participant_screen, "console": console_screen}}
    x, y, w, h = screens[0] if screens else (0, 0, 1600, 900)
    if participant_screen == 0:  # asked for the only screen: full screen there, the console behind it
        return {"participant": (x, y, w, h), "participant_fullscreen": True, "console": (x, y, w, h),
                "warning": warning, "screens": {"participant": 0, "console": 0}}
    cw = int(w * 0.58)
    return {"participant": (x + cw, y, w - cw, h), "participant_fullscreen": False, "console": (x, y, cw, h),
            "warning": warning, "screens": {"participant": 0, "console": 0}}


def make_participant_view(low_stimulation: bool, stats: FrameStats, base_dir: Path | None = None,
                          on_stimulus=None, easing_s: float = 0.0, reward_fade_s: float = 0.0):
    """The participant's window: a calm thermometer with the threshold line, the cue, the stimulus.

    ``on_stimulus(stimulus_id)`` is called at every stimulus onset (a built-in action or walk,
    or an image from a folder). The bar glides to each new value with time constant ``easing_s``
    and the reward colour blends in and out with ``reward_fade_s`` (the protocol's ``[feedback]``
    settings, in seconds whatever the frame rate: :func:`~neurofeed.ui.easing.ease_weight`;
    0 = at once). The style sets the colours only.
    """
    QtCore, QtGui, QtWidgets = _qt()
    colours = GENTLE if low_stimulation else STANDARD

    class Thermometer(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.value = 0.5
            self.shown = 0.5
            self.reward = False
            self.mix = 0.0  # 0 = bar colour, 1 = reward colour (eased in gentle mode: no flashing)
            self.colours = colours
            self.easing = False
            self.eased_at = None  # time.monotonic() of the last easing step
            self.painted_seq = -1
            self.seq = 0
            self.bar_hidden = False  # no bar at all (a block without the bar, the session's end)
            self.setMinimumSize(160, 300)
            # the widget paints every pixel itself: Qt need not clear it first
            self.setAttribute(QtCore.Qt.WA_OpaquePaintEvent)
            self._bg, self._thr = QtGui.QColor(colours["bg"]), QtGui.QColor(colours["thr"])
            self._bar, self._rew = QtGui.QColor(colours["bar"]), QtGui.QColor(colours["reward"])

        def _frame(self):
            w, h = self.width(), self.height()
            bw, top, bottom = min(160, w * 0.4), h * 0.05, h * 0.95
            return bw, top, bottom, (w - bw) / 2

        def bar_rect(self):
            """The part of the widget that changes with the bar (its fill and the lines across it)."""
            bw, top, bottom, x0 = self._frame()
            fill_top = bottom - (bottom - top) * self.shown
            y = int(min(fill_top, bottom - (bottom - top) * 0.5) - 20)  # the threshold line is inside
            return QtCore.QRect(int(x0) - 24, max(0, y), int(bw) + 49, int(bottom) + 4 - max(0, y))

        def paintEvent(self, _event):
            p = QtGui.QPainter(self)
            p.setRenderHint(QtGui.QPainter.Antialiasing)
            bw, top, bottom, x0 = self._frame()
            p.fillRect(self.rect(), self._bg)
            if self.bar_hidden:  # neither frame nor threshold: nothing to look at but the cue
                p.end()
                self.painted_seq = self.seq
                return
            p.setPen(QtGui.QPen(self._thr, 2))
            p.drawRoundedRect(QtCore.QRectF(x0, top, bw, bottom - top), 18, 18)
            fill_h = (bottom - top) * self.shown
            a, b, m = self._bar, self._rew, self.mix
            col = QtGui.QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * m, a.greenF() + (b.greenF() - a.greenF()) * m,
                                        a.blueF() + (b.blueF() - a.blueF()) * m)
            p.setPen(QtCore.Qt.NoPen)
            p.setBrush(col)
            p.drawRoundedRect(QtCore.QRectF(x0 + 4, bottom - fill_h, bw - 8, max(0.0, fill_h - 4)), 14, 14)
            ythr = bottom - (bottom - top) * 0.5
            p.setPen(QtGui.QPen(self._thr, 3, QtCore.Qt.DashLine))
            p.drawLine(QtCore.QPointF(x0 - 20, ythr), QtCore.QPointF(x0 + bw + 20, ythr))
            p.end()
            self.painted_seq = self.seq

    class StimulusView(QtWidgets.QWidget):
        """Draws the current stimulus: point-light dots, or an image scaled once per size."""

        def __init__(self):
            super().__init__()
            self.player = StimulusPlayer(base_dir)
            self.setMinimumWidth(200)
            self.setAttribute(QtCore.Qt.WA_OpaquePaintEvent)
            self._bg, self._dot = QtGui.QColor(colours["stim_bg"]), QtGui.QColor(colours["dot"])
            self._panel_bg = QtGui.QColor(colours["bg"])
            self._pix_key, self._pix = None, None
            self._dot_region = None  # where the dots were last painted

        def advance(self, now_s: float) -> None:
            """Move the stimulus to ``now_s``, report onsets and paint what changed (now)."""
            onsets = self.player.advance(now_s)
            for sid in onsets:
                if on_stimulus is not None:
                    on_stimulus(sid)
            if self.player.model is not None and not onsets and self._dot_region is not None:
                # only the dots' old and new places are painted and sent to the window system
                old, new = self._dot_region, self._dots_region()
                self._dot_region = new
                self.repaint(old.united(new))
            elif onsets or (self._dot_region is not None and self.player.model is None):
                self._dot_region = self._dots_region() if self.player.model is not None else None
                self.repaint()

        def _geometry(self):
            w, h = self.width(), self.height()
            return 0.45 * min(w, h), w / 2, h / 2, max(3.0, 0.018 * min(w, h))

        def _dots_region(self):
            s, cx, cy, r = self._geometry()
            reg = QtGui.QRegion()
            k = int(r) + 2
            for x, y in self.player.dots:
                reg = reg.united(QtCore.QRect(int(cx + s * x) - k, int(cy - s * y) - k, 2 * k + 1, 2 * k + 1))
            return reg

        def resizeEvent(self, event):
            self._dot_region = None if self.player.model is None else self._dots_region()
            super().resizeEvent(event)

        def paintEvent(self, _event):
            p = QtGui.QPainter(self)
            pl = self.player
            if pl.model is not None and pl.dots is not None:
                p.fillRect(self.rect(), self._bg)
                p.setRenderHint(QtGui.QPainter.Antialiasing)
                s, cx, cy, r = self._geometry()  # the [-1, 1] box fills 90 % of the shorter side
                p.setPen(QtCore.Qt.NoPen)
                p.setBrush(self._dot)
                for x, y in pl.dots:
                    p.drawEllipse(QtCore.QPointF(cx + s * x, cy - s * y), r, r)
            elif pl.image is not None:
                p.fillRect(self.rect(), self._panel_bg)
                key = (pl.image, self.width(), self.height())
                if key != self._pix_key:  # scale once per image and size, not per frame
                    self._pix_key = key
                    self._pix = QtGui.QPixmap(str(pl.image)).scaled(self.size(), QtCore.Qt.KeepAspectRatio,
                                                                    QtCore.Qt.SmoothTransformation)
                x = (self.width() - self._pix.width()) // 2
                y = (self.height() - self._pix.height()) // 2
                p.drawPixmap(x, y, self._pix)
            else:
                p.fillRect(self.rect(), self._panel_bg)
            p.end()

    class ParticipantView(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.setWindowTitle("neurofeed")
            self.setStyleSheet(f"background:{colours['bg']}; color:{colours['text']};")
            lay = QtWidgets.QHBoxLayout(self)
            self.thermo = Thermometer()
            self.stimulus = StimulusView()
            right = QtWidgets.QVBoxLayout()
            self.cue = QtWidgets.QLabel("")
            self.cue.setWordWrap(True)
            self.cue.setAlignment(QtCore.Qt.AlignCenter)
            f = self.cue.font()
            f.setPointSize(22)
            self.cue.setFont(f)
            right.addWidget(self.stimulus, 3)
            right.addWidget(self.cue, 1)
            lay.addWidget(self.thermo, 1)
            lay.addLayout(right, 2)
            self.resize(900, 560)

        def show_state(self, st, now_s: float | None = None):
            th = self.thermo
            target = st.feedback if st.feedback_on and not st.signal_lost else 0.0
            now = time.monotonic() if now_s is None else now_s
            dt = 0.0 if th.eased_at is None else now - th.eased_at
            th.eased_at = now
            # in seconds, not per paint: the glide's delay is easing_s whatever the frame or packet rate
            th.shown += ease_weight(dt, easing_s) * (target - th.shown)
            th.mix += ease_weight(dt, reward_fade_s) * ((1.0 if st.reward else 0.0) - th.mix)
            th.seq = st.seq
            th.easing = abs(target - th.shown) > 1e-3 or abs((1.0 if st.reward else 0.0) - th.mix) > 1e-3
            text = "Paused" if st.paused else ("Signal lost — please wait" if st.signal_lost else st.cue)
            if self.cue.text() != text:
                self.cue.setText(text)
            self.stimulus.player.set_spec(st.stimuli, now)
            # a block without the bar (transfer, rest) after the baseline: no frame, no threshold
            hidden = bool(st.baseline_ready and not (st.feedback_on or st.paused or st.schedule_paused
                                                     or st.signal_lost))
            if hidden != th.bar_hidden:
                th.bar_hidden = hidden
                th.update()  # the whole widget: the frame and the threshold line go or come back

        def show_end(self, now_s: float | None = None):
            """The session is over: a calm "Session complete", no bar, no stimulus, no score."""
            self.thermo.bar_hidden = True
            self.thermo.update()
            self.stimulus.player.set_spec("", time.monotonic() if now_s is None else now_s)
            self.stimulus.update()
            self.cue.setText("Session complete.\nThank you — you can relax now.")

    return ParticipantView()


# the participant's accuracy/delay curve, shown once the baseline has ended
def delay_table(processor) -> str:
    """The participant's delay designs as a small table in plain words (``""`` before the
    baseline's end): the design in use, the fastest and the most exact, each with how late the
    bar follows the rhythm and how closely (r), e.g. ``faster: 40 ms, less exact (r 0.45)``.
    The Delay box lists every design."""
    curve = getattr(processor, "accuracy_curve", None)
    if not curve:
        return ""
    eff = getattr(processor, "effective_delays", None) or {}
    # (lag s, r) per design: the effective delay and r there where measured, else the design's own
    rows = {d: (eff[d][0], eff[d][1]) if d in eff else (d, r) for d, r in curve.items()}
    used = min(rows, key=lambda d: abs(d - processor.chain.delay_s))
    lag0, r0 = rows[used]
    picks = [("in use", used)]
    faster = [d for d in rows if rows[d][0] < lag0 - 0.0005]  # a design the bar follows sooner (> 0.5 ms)
    exact = [d for d in rows if rows[d][1] > r0 + 0.005]  # a design that follows it more closely
    for d in ([min(faster, key=lambda d: rows[d][0])] if faster else []) + \
             ([max(exact, key=lambda d: rows[d][1])] if exact else []):
        if all(d != p for _, p in picks):
            lag, r = rows[d]
            speed = "faster" if lag < lag0 - 0.0005 else ("steadier" if lag > lag0 + 0.0005 else "as fast")
            picks.append((speed + ", " + ("less exact" if r < r0 - 0.005 else
                                          ("more exact" if r > r0 + 0.005 else "as exact")), d))
    cells = "".join(f"<tr><td>{words}:&nbsp;</td><td align='right'>{1000 * rows[d][0]:.0f} ms</td>"
                    f"<td>&nbsp;(r {rows[d][1]:.2f})</td></tr>" for words, d in picks)
    return ("<b>Bar timing</b> (this participant; D or the Delay box to change)"
            f"<table cellspacing='0'>{cells}</table>")


def delay_choices(processor) -> list[tuple[str, float]]:
    """``[(label, designed delay s)]`` for the console's Delay box: each design of the
    participant's curve with its effective delay and r; empty before the baseline's end."""
    curve = getattr(processor, "accuracy_curve", None) or {}
    eff = getattr(processor, "effective_delays", None) or {}
    out = []
    for d, r in curve.items():
        lag = eff.get(d)
        label = (f"{1000 * d:.0f} ms design → {1000 * lag[0]:.0f} ms, r {lag[1]:.2f}" if lag
                 else f"{1000 * d:.0f} ms design, r {r:.2f}")
        out.append((label, float(d)))
    return out


def make_console(pipeline, spectra, stats: FrameStats, history_s: float = 60.0, check: dict | None = None):
    """The clinician console: traces, mu-band spectrum, SI with threshold, block, quality, latency,
    the control keys and the channel selector for marking a channel bad."""
    import pyqtgraph as pg

    QtCore, QtGui, QtWidgets = _qt()
    src = pipeline.source
    chain = pipeline.processor.chain
    names = list(src.ch_names)
    trace_names = list(dict.fromkeys(chain.targets + [n for n in names if n in ("Cz", "FC3", "CP3", "FC4", "CP4")]))
    trace_rows = [names.index(n) for n in trace_names]

    def fixed_plot(title, xr, yr, log_y=False):
        w = pg.PlotWidget(title=title)
        w.setFocusPolicy(QtCore.Qt.NoFocus)  # keys go to the console's controls, never to a plot
        w.setMouseEnabled(False, False)
        w.hideButtons()
        w.setMenuEnabled(False)
        w.setLogMode(False, log_y)
        w.disableAutoRange()
        w.setXRange(*xr, padding=0)
        w.setYRange(*yr, padding=0)
        return w

    class Console(QtWidgets.QWidget):
        def __init__(self):
            super().__init__()
            self.setWindowTitle("neurofeed — clinician console")
            grid = QtWidgets.QGridLayout(self)
            self.info = QtWidgets.QLabel()
            self.info.setTextFormat(QtCore.Qt.RichText)
            self.info.setWordWrap(True)  # a long status wraps; it never widens the window
            grid.addWidget(self.info, 0, 0, 1, 2)
            # display-only conditioning (the session's high-pass + notch), scale per channel, railed/flat lanes
            self.trace_panel = make_traces_panel(TraceDisplay.for_chain(chain, len(trace_rows), TRACE_S), trace_names,
                                                 fixed_plot(f"EEG, last {TRACE_S:g} s", (-TRACE_S, 0), (0, 1)),
                                                 trace_rows, pipeline.ring)
            self.traces, self.trace_items = self.trace_panel.plot, self.trace_panel.items
            grid.addWidget(self.trace_panel, 1, 0)
            self.spec = fixed_plot("Spectrum at targets (µV²/Hz)", (1, min(45, src.sfreq / 2)), (-3, 3), log_y=True)
            self.spec_items = [self.spec.plot(pen=pg.intColor(i, 3)) for i in range(len(chain.targets))]
            lo, hi = chain.band_hz
            self.band = pg.LinearRegionItem((lo, hi), movable=False, brush=(80, 160, 80, 40))
            self.spec.addItem(self.band)
            grid.addWidget(self.spec, 1, 1)
            # a short title: the plot cannot be narrower than its title
            self.si_plot = fixed_plot("SI deciding reward, threshold", (-history_s, 0), (-1, 1))
            self.si_item = self.si_plot.plot(pen=pg.mkPen("#4a90c2", width=2))
            self.thr_item = self.si_plot.plot(pen=pg.mkPen("#f2a03d", width=2, style=QtCore.Qt.DashLine))
            self.si_plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#888")))
            self.si_plot.setLabel("bottom", "s")
            grid.addWidget(self.si_plot, 2, 0)
            # the side column: the check and the quality table (they scroll when their channels do
            # not fit, e.g. 16 channels on a 768-px screen: never a window taller than its screen),
            # then the delay designs and the two boxes, always in view
            self.side = QtWidgets.QWidget()
            side = QtWidgets.QVBoxLayout(self.side)
            side.setContentsMargins(0, 0, 0, 0)
            tables = QtWidgets.QWidget()
            tables_lay = QtWidgets.QVBoxLayout(tables)
            tables_lay.setContentsMargins(0, 0, 0, 0)
            if check is not None:  # the signal check made before the session: the console's first panel
                from ..hardware.signal_check import check_html

                self.check_label = QtWidgets.QLabel(check_html(check))
                self.check_label.setTextFormat(QtCore.Qt.RichText)
                self.check_label.setWordWrap(True)
                tables_lay.addWidget(self.check_label)
            self.quality = QtWidgets.QLabel()
            self.quality.setTextFormat(QtCore.Qt.RichText)
            self.quality.setAlignment(QtCore.Qt.AlignTop)
            tables_lay.addWidget(self.quality, 1)
            scroll = QtWidgets.QScrollArea()
            scroll.setWidget(tables)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QtWidgets.QFrame.NoFrame)
            scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
            scroll.setFocusPolicy(QtCore.Qt.NoFocus)
            scroll.setMinimumWidth(tables.minimumSizeHint().width())
            side.addWidget(scroll, 1)
            self.delays = QtWidgets.QLabel()  # the participant's designs in plain words (after the baseline)
            self.delays.setTextFormat(QtCore.Qt.RichText)
            self.delays.setWordWrap(True)
            side.addWidget(self.delays)
            row = QtWidgets.QHBoxLayout()
            row.addWidget(QtWidgets.QLabel("Channel:"))
            self.channel_box = QtWidgets.QComboBox()
            self.channel_box.addItems(names)
            self.channel_box.setFocusPolicy(QtCore.Qt.NoFocus)  # [ ] and the mouse select; keys stay controls
            row.addWidget(self.channel_box, 1)
            side.addLayout(row)
            row = QtWidgets.QHBoxLayout()
            row.addWidget(QtWidgets.QLabel("Delay:"))
            # the participant's designs (filled at the baseline's end): picking one refits the estimator
            self.delay_box = QtWidgets.QComboBox()
            self.delay_box.setEnabled(False)
            self.delay_box.setFocusPolicy(QtCore.Qt.NoFocus)
            row.addWidget(self.delay_box, 1)
            side.addLayout(row)
            grid.addWidget(self.side, 2, 1)
            # the end of the session: the summary and where the recording is, in place of the plots
            self.end_panel = QtWidgets.QTextBrowser()  # scrolls when a long protocol's summary does not fit
            self.end_panel.setFrameShape(QtWidgets.QFrame.NoFrame)
            self.end_panel.setFocusPolicy(QtCore.Qt.NoFocus)  # Esc stays the console's
            self.end_panel.setStyleSheet("background: transparent;")
            self.end_panel.hide()
            grid.addWidget(self.end_panel, 1, 0, 2, 2)
            self.hints = QtWidgets.QLabel(" · ".join(f"<b>{k}</b> {v}" for k, v in KEY_HINTS))
            self.hints.setTextFormat(QtCore.Qt.RichText)
            self.hints.setWordWrap(True)
            grid.addWidget(self.hints, 3, 0, 1, 2)
            self.bad_channels: set = set()
            self.notes = 0
            self.status_note = ""  # the last operator action, shown in the status line
            self._lat_t, self._lat, self._fr = 0.0, {}, {}
            self._text_t = 0.0
            self._spec_version = -1
            self._si_range = (-1.0, 1.0)
            self.resize(1200, 760)

        def show_end(self, summary_text: str, folder: str | None, close_after_s: float | None):
            """The session has ended: its summary and the recording's folder, until closed."""
            import html

            for w in (self.traces, self.spec, self.si_plot, self.side):
                w.hide()
            where = (f"<p>Recording: <b>{html.escape(folder)}</b><br>Report: <code>neurofeed report "
                     f"{html.escape(folder)}</code> (writes {html.escape(str(Path(folder) / 'report'))})</p>"
                     if folder else "<p>Not recorded.</p>")
            closing = (f"This window closes by itself in {close_after_s:g} s." if close_after_s is not None
                       else "Close this window (or press Esc) when done.")
            self.info.setText("<b>Session complete</b>")
            # pre-wrap: the summary's long lines wrap at the window's edge (they never widen it)
            self.end_panel.setHtml(f"<p style='white-space:pre-wrap; font-family:monospace'>"
                                   f"{html.escape(summary_text.strip())}</p>{where}<p>{closing}</p>")
            self.end_panel.show()
            self.hints.setText("<b>Esc</b> close")

        def delay_index(self, delay_s):
            """Index of the Delay box's item nearest ``delay_s``."""
            ds = [self.delay_box.itemData(i) for i in range(self.delay_box.count())]
            return int(np.argmin([abs(d - delay_s) for d in ds])) if ds else -1

        # one part per call: the frame loop spreads the console over ticks
        def show_part(self, part, st):
            getattr(self, "_show_" + part)(st)

        def show_state(self, st):
            """Everything at once (screenshots, tests)."""
            self._text_t = 0.0
            for part in CONSOLE_PARTS:
                self.show_part(part, st)

        def _show_si(self, st):
            t, si, thr, _ = pipeline.history.ordered()
            ok = np.isfinite(t) & np.isfinite(si) & (t > st.t_s - history_s)
            ok &= not pipeline.blinded  # a blinded session (sham trial) hides the live SI
            self.si_item.setData(t[ok] - st.t_s, si[ok])
            okt = ok & np.isfinite(thr)
            self.thr_item.setData(t[okt] - st.t_s, thr[okt])
            if ok.any():  # widen the fixed range only when the data leave it (no per-frame axis layout)
                lo = min(float(si[ok].min()), float(thr[okt].min()) if okt.any() else 0.0)
                hi = max(float(si[ok].max()), float(thr[okt].max()) if okt.any() else 0.0)
                r0, r1 = self._si_range
                if lo < r0 or hi > r1:
                    self._si_range = (min(r0, math.floor(lo * 2) / 2), max(r1, math.ceil(hi * 2) / 2))
                    self.si_plot.setYRange(*self._si_range, padding=0)

        def _show_traces(self, st):
            self.trace_panel.show(st.quality_flags)

        def _show_spectrum(self, st):
            if spectra.version != self._spec_version and spectra.freqs.size:
                self._spec_version = spectra.version
                for j, item in enumerate(self.spec_items):
                    item.setData(spectra.freqs[1:], np.maximum(spectra.psd[j][1:], 1e-6))

        def _show_text(self, st):
            now = time.monotonic()
            if now - self._text_t < TEXT_EVERY_S:
                return
            self._text_t = now
            self._info(st)

        def _info(self, st):
            def f(v, spec="+.2f"):
                return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)
            now = time.monotonic()
            if now - self._lat_t > 1.0:  # percentiles over the whole run: once a second, not per frame
                self._lat_t = now
                self._lat = pipeline.probe.summary().get("compute_to_publish_ms", {}) if pipeline.probe.n else {}
                self._fr = stats.summary() or {}
            lat, fr = self._lat, self._fr
            rr = "—" if math.isnan(st.reward_rate) else f"{100 * st.reward_rate:.0f} %"
            status = "<b style='color:#c0392b'>SIGNAL LOST</b>" if st.signal_lost else (
                "<b>PAUSED</b>" if st.paused else ("<b style='color:#27ae60'>REWARD</b>" if st.reward else "—"))
            gate = ("<b style='color:#d35400'>GATE: " + ", ".join(st.gate_reasons) + "</b>") if st.gated else "gate off"
            extra = []
            if getattr(st, "schedule_paused", False):
                extra.append("<b>SCHEDULE PAUSED</b>")
            if getattr(st, "threshold_locked", False):
                extra.append("<b>threshold locked</b>")
            if self.bad_channels:
                extra.append("bad: " + ", ".join(sorted(self.bad_channels)))
            if self.status_note:
                extra.append(self.status_note)
            carried = getattr(pipeline.engine, "carried_from", None)
            if carried:  # [baseline] carry = "last": say where the baseline and thresholds came from
                extra.append(f"baseline and thresholds carried over from {Path(carried).name}")
            text = (f"<b>{st.block_label or '—'}</b> ({st.block_kind or '—'}) · block {st.block_index + 1}/{st.n_blocks} · "
                    f"left {f(st.block_left_s, '.0f')} s · session left {f(st.session_left_s, '.0f')} s · "
                    + (f"{si_text(st)} · reward rate {rr} · "
                       if not pipeline.blinded else "SI blinded · ")  # a blinded session (sham trial) hides it
                    + f"{status} · {gate}<br>compute→publish p50 {f(lat.get('p50'), '.2f')} ms, "
                    f"p99 {f(lat.get('p99'), '.2f')} ms · frame p99 {f(fr.get('p99'), '.1f')} ms"
                    + ("<br>" + " · ".join(extra) if extra else ""))
            if text != self.info.text():
                self.info.setText(text)
            table = delay_table(pipeline.processor)
            if table != self.delays.text():
                self.delays.setText(table)
            if not self.delay_box.isEnabled():
                choices = delay_choices(pipeline.processor)
                if choices:  # the baseline has ended: offer the participant's designs
                    for label, d in choices:
                        self.delay_box.addItem(label, d)
                    self.delay_box.setEnabled(True)
            if self.delay_box.isEnabled():  # show the design in use (a refused choice snaps back)
                i = self.delay_index(pipeline.processor.chain.delay_s)
                if i != self.delay_box.currentIndex():
                    self.delay_box.setCurrentIndex(i)
            rows = []
            flags = st.quality_flags
            for i, n in enumerate(names):
                fl = flag_names(int(flags[i])) if i < len(flags) else ()
                colour = "#7f8c8d" if n in self.bad_channels else ("#c0392b" if fl else "#27ae60")
                mark = " <b>(bad)</b>" if n in self.bad_channels else ""
                rows.append(f"<span style='color:{colour}'>{n}</span>{mark}: rms {spectra.rms_uv[i]:.1f} µV, "
                            f"line {spectra.line_rms_uv[i]:.1f} µV {' '.join(fl)}" if i < len(spectra.rms_uv) else n + mark)
            emg = " ".join(f"{v:.1f}" for v in st.emg_rms_uv)
            q = "<b>Signal quality</b><br>" + "<br>".join(rows) + f"<br>EMG rms (µV): {emg}"
            if q != self.quality.text():
                self.quality.setText(q)

    return Console()


@functools.cache
def _state_waker_class():
    QtCore, _, _ = _qt()

    class StateWaker(QtCore.QObject):
        """A pipeline sink (``on_state`` runs in the acquisition thread): one queued signal per
        published state; nothing else happens in that thread."""

        published = QtCore.Signal()

        def on_state(self, _state):
            self.published.emit()

    return StateWaker


class Views:
    """Both views, the frame timer and the operator keys, driving from ``pipeline.latest``.

    Parameters
    ----------
    pipeline : Pipeline
    participant_screen : int, optional
        Screen index for the participant view (full screen there); default: the second screen
        when there are two, else both windows tiled side by side on the one screen.
    tone : RewardTone, optional
        Plays the reward tone where the protocol asks for it (default: one is made when
        ``[feedback] tone = true``).

    Attributes
    ----------
    finish : callable, optional
        Called once at the session's natural end, in the GUI thread; returns the session's summary
        (:func:`~neurofeed.live.session.finish_session`), shown on the console's end screen.
    close_after_s : float, optional
        The end screen closes by itself after this many seconds (None: when the operator closes it).
    """

    def __init__(self, pipeline, participant_screen=None, tone="auto", check: dict | None = None):
        QtCore, QtGui, QtWidgets = _qt()
        self.pipeline = pipeline
        self.stats = FrameStats()
        self.spectra = SpectrumWorker(pipeline)
        fb = pipeline.processor.protocol.feedback
        low = fb.style == "low-stimulation"
        proto_path = pipeline.processor.protocol.path
        self.participant = make_participant_view(low, self.stats, proto_path.parent if proto_path else None,
                                                 on_stimulus=lambda sid: self.stimulus_onset(sid),
                                                 easing_s=fb.easing_s, reward_fade_s=fb.reward_fade_s)
        self.console = make_console(pipeline, self.spectra, self.stats, check=check)
        self.low_stimulation = low
        if tone == "auto":
            from .tone import RewardTone

            tone = RewardTone() if fb.tone else None
        self.tone = tone
        self.closing = False
        self.ended = False  # the end screen is shown
        self.finish = None
        self.summary = None  # what finish returned
        self.close_after_s = None
        if not _QT_KEY_NAMES:
            _QT_KEY_NAMES.update(_qt_key_names())
        self.console.delay_box.activated.connect(self.pick_delay)  # a pick with the mouse
        for w in (self.participant, self.console):
            w.keyPressEvent = self._key
            w.closeEvent = self._close_event
        self.layout = self.place_windows(participant_screen)
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.PreciseTimer)
        self.timer.timeout.connect(self.frame)
        # the acquisition thread wakes the GUI thread at each publication (a queued signal), so a
        # new state is painted at once instead of at the next timer tick
        self._waker = _state_waker_class()()
        self._waker.published.connect(self.on_new_state, QtCore.Qt.QueuedConnection)
        pipeline.sinks.append(self._waker)
        self.on_finished = None
        self._tick = 0
        self._console_t = 0.0
        self._console_i = 0
        self._shown_seq = -1
        self._recorded_seq = -1
        self._was_reward = False

    # layout --------------------------------------------------------------------------------
    def place_windows(self, participant_screen=None) -> dict:
        """Tile the windows on one screen, or the participant view full screen on its own screen."""
        _, QtGui, _ = _qt()
        screens = QtGui.QGuiApplication.screens()
        geo = [s.availableGeometry() for s in screens]
        lay = window_layout([(g.x(), g.y(), g.width(), g.height()) for g in geo], participant_screen)
        if lay["warning"]:
            print(f"neurofeed: {lay['warning']}", file=sys.stderr)
        if screens and any(len(s.virtualSiblings()) < len(screens) for s in screens):
            # separate X screens (a virtual desktop each): a window is put on its screen first, its
            # geometry is then in that screen's own coordinates
            for w, key in ((self.participant, "participant"), (self.console, "console")):
                w.setScreen(screens[lay["screens"][key]])
        self.participant.setGeometry(*lay["participant"])
        x, y, w, h = lay["console"]
        self.console.setGeometry(x, y, w, h)  # its texts wrap and its plots shrink: it never grows past this
        return lay

    # the frame loop ------------------------------------------------------------------------
    def on_new_state(self):
        """The acquisition thread published a state (queued signal): paint it now, then update
        the console (the next state is about one chunk away, so the console's painting, which
        follows in the event loop, does not delay it)."""
        st, now = self.pipeline.latest, time.monotonic()
        self._paint_participant(st, now, False)
        if st.seq and now - self._console_t >= CONSOLE_MIN_S:
            self._update_console(st, now)

    def _update_console(self, st, now):
        self._console_t = now
        for part in CONSOLE_GROUPS[self._console_i % len(CONSOLE_GROUPS)]:
            self.console.show_part(part, st)
        self._console_i += 1

    def frame(self):
        st = self.pipeline.latest
        self._tick += 1
        now = time.monotonic()
        self._paint_participant(st, now, self._tick % STIMULUS_EVERY == 0)
        if self._tick % STIMULUS_EVERY == 0:
            self.participant.stimulus.advance(now)
        if st.seq and now - self._console_t > CONSOLE_FALLBACK_S:  # no new states (signal lost, slow source)
            self._update_console(st, now)
        if not self.pipeline.running and not self.closing and not self.ended:
            if self.pipeline.engine.finished and self.finish is not None:
                self.show_end()  # the natural end: "session complete" and the summary, until closed
                return
            self.closing = True
            if self.on_finished:
                self.on_finished()

    def show_end(self) -> None:
        """The end screen: the participant sees "Session complete"; the console the summary and
        the recording's folder, until it is closed (or ``close_after_s`` have passed)."""
        import io

        from ..live.session import print_summary

        QtCore, _, _ = _qt()
        self.ended = True
        self.timer.stop()
        self.spectra.stop()
        self.pipeline.frame_stats = self.stats.summary()
        self.pipeline.stop("session complete")  # idempotent: the source is closed before the recording
        try:
            self.summary = self.finish()
        except Exception:  # noqa: BLE001 - the windows close; the caller finishes again and reports it
            self.ended = False
            self.closing = True
            if self.on_finished:
                self.on_finished()
            return
        text = io.StringIO()
        print_summary(self.summary, text)
        self.participant.show_end()
        self.console.show_end(text.getvalue(), self.summary.get("recording"), self.close_after_s)
        if self.close_after_s is not None:
            QtCore.QTimer.singleShot(int(1000 * self.close_after_s), self.close_end_screen)

    def close_end_screen(self) -> None:
        """The operator closed the end screen (or its time ran out): both windows go."""
        if self.closing:
            return
        self.closing = True
        for w in (self.participant, self.console):
            w.closeEvent = lambda e: e.accept()
            w.close()
        if self.on_finished:
            self.on_finished()

    def _paint_participant(self, st, now, ease):
        """A new state (or, when ``ease``, the bar still gliding): paint and flush the bar now."""
        part = self.participant
        th = part.thermo
        if (st.seq or st.signal_lost) and (st.seq != self._shown_seq or (ease and th.easing)):
            self._shown_seq = st.seq
            before = th.bar_rect()
            part.show_state(st, now)
            th.repaint(before.united(th.bar_rect()))  # only the bar's old and new extent, flushed now
            if th.painted_seq == st.seq and st.seq != self._recorded_seq and st.published_ns:
                self._recorded_seq = st.seq
                self.stats.add((time.perf_counter_ns() - st.published_ns) / 1e6)
            if self.tone is not None:
                rewarded = st.reward and st.feedback_on and not st.paused
                if rewarded and not self._was_reward:
                    self.tone.play()
                    self.stimulus_onset("tone/reward")  # logged whether or not it was audible
                self._was_reward = rewarded

    # controls ------------------------------------------------------------------------------
    def control(self, name, *args) -> None:
        """Hand an operator control to the engine (queued, journaled; see docs/ARCHITECTURE.md, "Contracts")."""
        self.pipeline.control(name, *args)

    def stimulus_onset(self, stimulus_id: str) -> None:
        """A stimulus appeared on the participant's screen: an event in the recording, the BDF
        annotations and the LSL event outlet (``stimulus/<id>``), through the engine's journal."""
        self.control("stimulus", stimulus_id)

    def toggle_pause(self):
        self.control("pause", not self.pipeline.latest.paused)

    def toggle_schedule(self):
        self.control("pause_schedule", not getattr(self.pipeline.latest, "schedule_paused", False))

    def toggle_lock(self):
        self.control("lock_threshold", not getattr(self.pipeline.latest, "threshold_locked", False))

    def nudge(self, sign: int):
        self.control("nudge_threshold", sign * NUDGE_SI)
        self.console.status_note = f"threshold nudged {sign * NUDGE_SI:+g}"

    def skip_block(self):
        self.control("skip_block")
        self.console.status_note = "block skipped"

    def extend_block(self):
        self.control("extend_block", EXTEND_S)
        self.console.status_note = f"block extended +{EXTEND_S:g} s"

    def select_channel(self, step: int):
        box = self.console.channel_box
        box.setCurrentIndex((box.currentIndex() + step) % box.count())

    def toggle_bad_channel(self):
        name = self.console.channel_box.currentText()
        bad = name not in self.console.bad_channels
        if bad and name in self.pipeline.processor.chain.targets:
            self.console.status_note = f"{name} is a target channel: re-seat it rather than marking it bad"
            return
        self.control("mark_bad_channel", name, bad)
        (self.console.bad_channels.add if bad else self.console.bad_channels.discard)(name)
        after = self.pipeline.processor.engine.baseline_fit is not None  # the baseline was measured with it
        self.console.status_note = f"{name} marked {'bad' if bad else 'good'}" + ("; R re-baselines" if after else "")

    def rebaseline(self):
        """Measure the baseline again now (key R; the running block is cut, journaled)."""
        self.control("rebaseline")
        self.console.status_note = "re-baseline: the baseline is measured again"

    def pick_delay(self, index: int) -> None:
        """Apply the Delay box's item ``index``: the estimator is redesigned at that delay."""
        box = self.console.delay_box
        if not box.isEnabled() or not 0 <= index < box.count():
            name = self.pipeline.processor.chain.estimator_name
            self.console.status_note = (f"the {name} estimator has no designed delay" if name not in ("wcfir", "cfir")
                                        else "the delay designs are offered once the baseline has ended")
            return
        d = float(box.itemData(index))
        if box.currentIndex() != index:
            box.setCurrentIndex(index)
        self.control("set_delay", d)
        self.console.status_note = f"delay design {1000 * d:.0f} ms ({box.itemText(index)})"

    def step_delay(self, step: int) -> None:
        """D: the next design of the participant's curve."""
        box = self.console.delay_box
        self.pick_delay((box.currentIndex() + step) % box.count() if box.count() else -1)

    def add_note(self):
        text = self.ask_note()
        if text:
            self.control("note", text)
            self.console.notes += 1
            self.console.status_note = f"note {self.console.notes} saved"

    def marker(self):
        self.control("marker", "operator")

    # the actions of the shared key map (.controls.KEYS) that take an argument here
    def nudge_up(self):
        self.nudge(+1)

    def nudge_down(self):
        self.nudge(-1)

    def select_previous(self):
        self.select_channel(-1)

    def select_next(self):
        self.select_channel(+1)

    def next_delay(self):
        self.step_delay(+1)

    def _key(self, event):
        QtCore, _, _ = _qt()
        Qt = QtCore.Qt
        if self.ended:  # the end screen: any key closes it (the session is over)
            if event.key() in (Qt.Key_Escape, Qt.Key_Return, Qt.Key_Enter, Qt.Key_Space, Qt.Key_Q):
                self.close_end_screen()
            return
        name = _QT_KEY_NAMES.get(event.key()) or event.text().lower()
        action = KEYMAP.get(name)
        if action is not None:
            getattr(self, action)()
            self.console._text_t = 0.0  # show the effect in the status line at the next text tick

    def end_with_confirmation(self):
        if self.confirm_end():
            self.stop_session("ended by operator (Esc)")

    def ask_note(self) -> str:
        """Ask for a clinician note; tests replace this to answer without a dialog."""
        _, _, QtWidgets = _qt()
        text, ok = QtWidgets.QInputDialog.getText(self.console, "Note", "Clinician note (saved in the recording):")
        return text.strip() if ok else ""

    def confirm_end(self) -> bool:
        """Ask before ending (the default answer is No); tests replace this to answer without a dialog."""
        _, _, QtWidgets = _qt()
        box = QtWidgets.QMessageBox.question(self.console, "End session?",
                                             "End the session now? The recording is closed safely.",
                                             QtWidgets.QMessageBox.Yes | QtWidgets.QMessageBox.No,
                                             QtWidgets.QMessageBox.No)
        return box == QtWidgets.QMessageBox.Yes

    def stop_session(self, why="window closed"):
        self.pipeline.stop(why)
        self.closing = True
        self.timer.stop()
        self.spectra.stop()
        for w in (self.participant, self.console):
            w.closeEvent = lambda e: e.accept()
            w.close()
        if self.on_finished:
            self.on_finished()

    def _close_event(self, event):
        event.accept()
        if self.ended:
            self.close_end_screen()
        elif not self.closing:
            self.stop_session("window closed")

    def start(self):
        self.console.show()
        if self.layout.get("participant_fullscreen"):
            self.participant.showFullScreen()
        else:
            self.participant.show()
        self.spectra.start()
        self.timer.start(TICK_MS)


_QT_KEY_NAMES = {}  # Qt key code -> the shared key map's name of a key that has no text


def _qt_key_names() -> dict:
    QtCore, _, _ = _qt()
    Qt = QtCore.Qt
    return {Qt.Key_Space: "space", Qt.Key_Up: "up", Qt.Key_Down: "down", Qt.Key_Escape: "escape",
            Qt.Key_Plus: "+", Qt.Key_Equal: "=", Qt.Key_Minus: "-", Qt.Key_BracketLeft: "[",
            Qt.Key_BracketRight: "]", **{getattr(Qt, f"Key_{c.upper()}"): c for c in "abcdefghijklmnopqrstuvwxyz"}}


def _quiet_offscreen(mode, context, message):
    """Drop the offscreen platform's harmless per-frame 'propagateSizeHints' notice."""
    if "propagateSizeHints" not in message:
        sys.stderr.write(message + "\n")


def app():
    """The QApplication (created once)."""
    import pyqtgraph as pg

    QtCore, _, QtWidgets = _qt()
    QtCore.qInstallMessageHandler(_quiet_offscreen)
    a = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    pg.setConfigOptions(antialias=False)
    return a


_PROBLEM: list = []  # the platform check's answer, once per process


def windows_problem() -> str | None:
    """None when windows can be shown here; else one line saying why and what to install.

    Checked before the QApplication exists (see :mod:`.qt_platform`), once per process."""
    from PySide6 import QtWidgets

    from .qt_platform import qt_platform_problem

    if QtWidgets.QApplication.instance() is not None:
        return None  # Qt already runs in this process
    if not _PROBLEM:
        _PROBLEM.append(qt_platform_problem())
    return _PROBLEM[0]


def settle_for_frames() -> None:
    """Process settings that keep frame times short, called once everything is built.

    - The objects made so far (numba, scipy, Qt, the pipeline: ~140 000) are moved out of the
      cyclic garbage collector's reach (``gc.freeze``): a full collection would walk them all,
      stopping every thread for ~130 ms; Python runs one whenever the surviving objects have
      grown by a quarter, which an hours-long session reaches. After the freeze it takes µs.
    - The GUI thread waits for the GIL at most 1 ms (not Python's default 5 ms) when the
      acquisition or spectrum thread holds it.
    """
    import gc

    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


def run_windows(pipeline, participant_screen=None, seconds=None, check: dict | None = None, finish=None,
                close_after_s: float | None = None) -> Views:
    """Start the pipeline and show both views until the session ends (or ``seconds`` pass).

    With ``finish`` (returns the session's summary, see :attr:`Views.finish`) the natural end
    shows the end screen until it is closed, or for ``close_after_s`` seconds; the summary is
    then ``views.summary`` (None when the session did not reach its end).

    Raises
    ------
    NeurofeedError
        Qt cannot open windows here (one line naming the missing system packages).
    """
    from ..core.errors import NeurofeedError

    problem = windows_problem()
    if problem:
        raise NeurofeedError(problem)
    QtCore, _, _ = _qt()
    qapp = app()
    views = Views(pipeline, participant_screen, check=check)
    views.finish, views.close_after_s = finish, close_after_s
    views.on_finished = qapp.quit
    settle_for_frames()
    pipeline.start()
    views.start()
    if seconds:
        QtCore.QTimer.singleShot(int(seconds * 1000), lambda: views.stop_session("benchmark complete"))
    qapp.exec()
    views.on_finished = None
    views.timer.stop()
    views.spectra.stop()
    # QCoreApplication.quit() posts a Quit event; one posted again after exec() returned would end
    # the next event loop of this process at once (a second session, a test's wait) before it runs
    QtCore.QCoreApplication.removePostedEvents(None, QtCore.QEvent.Type.Quit)
    pipeline.frame_stats = views.stats.summary()
    pipeline.stop("session complete" if pipeline.engine.finished else "window closed")
    return views


def screenshot(protocol_path, out, seconds: float = 14.5) -> list[Path]:
    """Render both views from a short simulated session offscreen (the console at its tile's size
    on a 1366x768 screen, :func:`window_layout`); returns the PNG paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ..hardware.sources.simulated import MuSimulator, SimulatedSource, SimulationScript
    from ..live.session import build_session
    from ..protocol.schema import load_protocol

    proto = load_protocol(protocol_path)
    sched = proto.schedule()
    first = next(i for i, b in enumerate(sched) if b.feedback)
    middle = sum(b.duration_s for b in sched[:first]) + 0.5 * sched[first].duration_s
    scale = seconds / middle  # the picture is taken in the middle of the first feedback block
    script = SimulationScript.alternating(seconds + 10, period_s=4, suppress_s=2, factor=0.5, start_s=1,
                                          emg_every_s=0, blink_every_s=0)
    src = SimulatedSource(MuSimulator(script=script, seed=11), realtime=False,
                          duration_s=seconds)
    pipe, _ = build_session(src, proto, "SHOT", "/tmp", scale, record=False, lsl=False)
    pipe.run()
    app()
    views = Views(pipe, tone=None)
    views.stimulus_onset = lambda sid: None  # nothing is recorded here
    views.spectra.compute()
    views.participant.resize(900, 560)
    views.console.resize(*window_layout([(0, 0, 1366, 768)])["console"][2:])  # its tile on a clinic laptop
    t0 = time.monotonic()
    for i in range(40):  # let a protocol's easing settle (2 s at 20 paints/s)
        views.participant.show_state(pipe.latest, t0 + 0.05 * i)
        views.console.show_state(pipe.latest)
    views.participant.stimulus.advance(t0 + 0.75)  # mid-action: the hand reaching, the walker mid-stride
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_name(out.stem + "-participant.png"), out.with_name(out.stem + "-console.png")]
    views.participant.grab().save(str(paths[0]))
    views.console.grab().save(str(paths[1]))
    return paths


def ask_start_anyway(question: str) -> bool:
    """The Qt question before a session starts (default No)."""
    _, _, QtWidgets = _qt()
    app()
    box = QtWidgets.QMessageBox
    answer = box.question(None, "Signal check failed", question + "\n\nStart the session anyway?",
                          box.Yes | box.No, box.No)
    return answer == box.Yes
